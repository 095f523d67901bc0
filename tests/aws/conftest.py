"""Fixtures shared by the AWS tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def synths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Every strategy's synthesized app, built once for the whole session."""
    pytest.importorskip("aws_cdk", reason="the aws extra is not installed")
    from .synth import SYNTHESIZED, Synth

    return {name: Synth(name, tmp_path_factory.mktemp(name)) for name in SYNTHESIZED}


@pytest.fixture
def moto(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """AWS in-process (moto), with test credentials: nothing leaves the machine."""
    from moto import mock_aws

    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    with mock_aws():
        yield
