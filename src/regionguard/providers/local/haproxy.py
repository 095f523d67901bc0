"""Where HAProxy is: each site's front door and the sandbox's edge run it (agent/dataplane.py,
lab/site_init.py); this says where the binary is, or how to install it, in one line."""

from __future__ import annotations

import shutil
from pathlib import Path

from regionguard.errors import NotAvailable

INSTALL_HINT = "install it with `apt-get install haproxy` (or run `make run`, which does)"


def haproxy_binary() -> str:
    found = shutil.which("haproxy") or next(
        (p for p in ("/usr/sbin/haproxy", "/usr/local/sbin/haproxy") if Path(p).exists()), None
    )
    if not found:
        raise NotAvailable(f"HAProxy not found; {INSTALL_HINT}")
    return found
