"""The credential for what only the operator and the engine may do: delete an order, write a
canary. Locally it is a token the sandbox keeps in its state dir (a 0600 file, passed to the
app as `RG_ADMIN_TOKEN_FILE`); elsewhere `RG_ADMIN_TOKEN`. Requests present it as
`Authorization: Bearer <token>`. No credential configured means these endpoints are off (403),
never open."""

from __future__ import annotations

import hmac
import secrets
from pathlib import Path

TOKEN_FILE = "admin-token"


def ensure_token(secrets_dir: Path) -> Path:
    """The sandbox's token file: created once (0600 in a 0700 dir), then kept."""
    secrets_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    secrets_dir.chmod(0o700)
    path = secrets_dir / TOKEN_FILE
    if not path.exists():
        fd = path.open("x")  # never overwrite a token a process already holds
        with fd:
            fd.write(secrets.token_hex(32) + "\n")
    path.chmod(0o600)
    return path


def read_token(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        token = path.read_text().strip()
    except (OSError, UnicodeDecodeError):  # unreadable or garbled: no credential, not a 500
        return None
    return token or None


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def require(authorization: str | None, token: str | None, what: str) -> None:
    """401 without the right bearer token; 403 when no token is configured at all."""
    # imported here: the sandbox and the CLI use this module's token helpers, and importing
    # FastAPI would cost every `regionguard` command a third of a second
    from fastapi import HTTPException

    if token is None:
        raise HTTPException(403, f"{what} is disabled: no admin credential is configured "
                                 "(RG_ADMIN_TOKEN_FILE or RG_ADMIN_TOKEN)")
    given = (authorization or "").removeprefix("Bearer ").strip()
    if not given or not hmac.compare_digest(given.encode(), token.encode()):
        raise HTTPException(401, f"{what} needs the admin credential "
                                 "(Authorization: Bearer <token>)",
                            headers={"WWW-Authenticate": "Bearer"})
