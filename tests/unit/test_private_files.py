"""The PostgreSQL user's directories under world-writable /var/tmp and the files that hold
passwords: a planted symlink or a directory another user owns is refused in one line, and a
password file is private from its first byte."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from regionguard.errors import ProviderError
from regionguard.providers.local import pgbin
from regionguard.providers.local.postgres.files import write_as_pg

pytestmark = pytest.mark.unit

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="the /var/tmp layout is root's only")


@needs_root
def test_a_planted_symlink_root_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    root = tmp_path / "root"
    root.symlink_to(elsewhere)
    monkeypatch.setattr(pgbin, "VAR_ROOT", root)
    with pytest.raises(ProviderError, match="symlink"):
        pgbin.make_pg_dir(root / "abc" / "data")
    assert list(elsewhere.iterdir()) == []  # nothing created or chowned through it


@needs_root
def test_a_root_owned_by_another_user_is_refused(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "root"
    root.mkdir()
    os.chown(root, 12345, 12345)
    monkeypatch.setattr(pgbin, "VAR_ROOT", root)
    with pytest.raises(ProviderError, match="owned by uid 12345"):
        pgbin.make_pg_dir(root / "abc")


def test_a_password_file_is_private_from_the_start_and_never_written_through_a_symlink(
        tmp_path: Path) -> None:
    existing = tmp_path / "pgpass"
    existing.write_text("old\n")
    existing.chmod(0o644)
    write_as_pg(existing, "*:*:*:postgres:secret\n")
    assert stat.S_IMODE(existing.stat().st_mode) == 0o600
    assert existing.read_text() == "*:*:*:postgres:secret\n"

    target = tmp_path / "target"
    target.write_text("untouched\n")
    planted = tmp_path / "planted"
    planted.symlink_to(target)
    with pytest.raises(ProviderError, match=r"cannot write .*planted.*remove it"):
        write_as_pg(planted, "*:*:*:postgres:secret\n")
    assert target.read_text() == "untouched\n"


def test_a_garbled_password_file_is_one_line_naming_it(tmp_path: Path) -> None:
    from regionguard.providers.local.postgres.files import ensure_passfile

    path = tmp_path / "pgpass"
    path.write_text("")
    with pytest.raises(ProviderError, match=r"pgpass.*not a pgpass line"):
        ensure_passfile(path)
    path.write_bytes(b"\xff\xfe garbage")
    with pytest.raises(ProviderError, match="not a pgpass line"):
        ensure_passfile(path)


def test_a_garbled_admin_token_is_no_credential(tmp_path: Path) -> None:
    from regionguard.app import admin

    path = tmp_path / "admin-token"
    path.write_bytes(b"\xff\xfe\x00")
    assert admin.read_token(path) is None

