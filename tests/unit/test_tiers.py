"""Every test carries exactly one tier marker: tests/conftest.py fails collection otherwise, in one
line naming the test."""

from __future__ import annotations

import pytest

pytest_plugins = ("pytester",)
pytestmark = pytest.mark.unit

CONFTEST = "from tests.conftest import pytest_collection_modifyitems  # noqa: F401\n"
INI = "[pytest]\nmarkers =\n    unit\n    aws\n    iac\n"


def test_a_test_without_a_tier_or_with_two_fails_collection(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makeini(INI)
    pytester.makepyfile(test_some="""
        import pytest

        def test_untiered():
            pass

        @pytest.mark.aws
        @pytest.mark.iac
        def test_two_tiers():
            pass

        @pytest.mark.unit
        def test_tiered():
            pass
    """)
    result = pytester.runpytest("-m", "unit")  # deselection does not hide a missing tier
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.errlines if line.startswith("ERROR:")]
    assert errors == ["ERROR: each test needs exactly one tier marker of unit, local, aws, "
                      "emulated, iac, lab: test_some.py::test_untiered has none; "
                      "test_some.py::test_two_tiers has aws, iac"]


def test_one_tier_per_test_collects_and_unit_tests_get_the_tighter_timeout(
        pytester: pytest.Pytester) -> None:
    pytest.importorskip("pytest_timeout", reason="pytest-timeout (the dev extra) is not installed")
    pytester.makeconftest(CONFTEST)
    pytester.makeini(INI)
    pytester.makepyfile(test_some="""
        import pytest

        pytestmark = pytest.mark.unit

        def test_unit(request):
            assert request.node.get_closest_marker("timeout").args == (30,)

        @pytest.mark.timeout(5)
        def test_own_timeout(request):
            assert request.node.get_closest_marker("timeout").args == (5,)
    """)
    pytester.runpytest().assert_outcomes(passed=2)
