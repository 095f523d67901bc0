"""Fixtures shared by the AWS tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def synths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Every strategy's synthesized app, built once for the whole session."""
    pytest.importorskip("aws_cdk", reason="the aws extra is not installed")
    from .synth import SYNTHESIZED, Synth

    return {name: Synth(name, tmp_path_factory.mktemp(name)) for name in SYNTHESIZED}
