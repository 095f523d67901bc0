"""The engine's `verify`: a canary write and read-back through a front door (never user data),
authenticated with the admin token the apps read from `token_file`."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx

from regionguard.app import admin
from regionguard.orchestrator.ports import VerifyResult


def canary_write(front_door_url: str, token_file: Path, timeout_s: float) -> VerifyResult:
    """Which region wrote the canary, at which epoch; ok=False with the reason otherwise."""
    token = f"verify-{uuid.uuid4().hex}"
    credential = admin.read_token(token_file)
    started = time.monotonic()
    try:
        response = httpx.post(f"{front_door_url}/_regionguard/canary", json={"token": token},
                              timeout=timeout_s, trust_env=False,
                              headers=admin.bearer(credential) if credential else None)
    except httpx.HTTPError as exc:
        return VerifyResult(False, None, None, time.monotonic() - started, str(exc))
    elapsed = time.monotonic() - started
    if response.status_code != 200:
        return VerifyResult(False, None, None, elapsed,
                            f"HTTP {response.status_code}: {response.text[:200]}")
    body = response.json()
    return VerifyResult(True, body.get("region"), body.get("epoch"), elapsed)
