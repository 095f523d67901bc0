"""Directories only this sandbox's owner may touch, checked rather than trusted.

/var/tmp and /tmp are writable by every user: a directory there that another user created, or
a symlink planted where regionguard will write, would hand them our data or our admin socket.
So a directory we use is refused unless it is a real directory owned by an expected user.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

from regionguard.errors import ProviderError


def checked_dir(path: Path, owners: Iterable[int]) -> Path:
    """`path` exists as a real directory owned by one of `owners`, or a one-line refusal."""
    try:
        info = os.lstat(path)
    except OSError as exc:
        raise ProviderError(f"cannot check {path}: {exc.strerror}") from None
    allowed = set(owners)
    if stat.S_ISLNK(info.st_mode):
        raise ProviderError(f"refusing {path}: it is a symlink (it could point anywhere); "
                            "remove it, or use another state_dir")
    if not stat.S_ISDIR(info.st_mode):
        raise ProviderError(f"refusing {path}: not a directory; remove it")
    if info.st_uid not in allowed:
        raise ProviderError(f"refusing {path}: owned by uid {info.st_uid}, not "
                            f"{' or '.join(str(u) for u in sorted(allowed))}; another user "
                            "created it: remove it, or use another state_dir")
    return path
