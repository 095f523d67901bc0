"""The app's wheelhouse: every wheel pinned by version and sha256 (pip --require-hashes)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.unit


def test_the_wheelhouse_requirements_pin_every_wheel_by_hash(tmp_path: Path) -> None:
    import hashlib

    from regionguard.infra.artifacts import write_requirements

    wheels = {"regionguard-0.1.0-py3-none-any.whl": b"ours",
              "psycopg_binary-3.2.9-cp311-cp311-manylinux_2_17_x86_64.whl": b"theirs"}
    for name, body in wheels.items():
        (tmp_path / name).write_bytes(body)
    lines = write_requirements(tmp_path).read_text().splitlines()
    assert lines == [
        f"psycopg-binary==3.2.9 --hash=sha256:{hashlib.sha256(b'theirs').hexdigest()}",
        f"regionguard==0.1.0 --hash=sha256:{hashlib.sha256(b'ours').hexdigest()}"]
