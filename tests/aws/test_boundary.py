"""The AWS error boundary: what botocore raises leaves a provider as one `ProviderError` line
naming the operation (and the region), converted once; the few expected error codes are
answers the caller reads, never exceptions."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from regionguard.errors import ProviderError, UnsafeOperation
from regionguard.providers.aws.boundary import aws_boundary, best_effort, expected
from regionguard.providers.aws.clients import NoReplicaAnswered

pytestmark = pytest.mark.unit  # pure: botocore's exceptions, no moto


def client_error(code: str, message: str = "it says no", operation: str = "DoThing"
                 ) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


UNREACHABLE = EndpointConnectionError(endpoint_url="https://rds.us-west-2.amazonaws.com/")


@aws_boundary
class Flaky:
    def scale(self, region: str, count: int) -> None:
        raise client_error("Throttling", "Rate exceeded\nsecond line", "UpdateAutoScalingGroup")

    def status(self, region: str) -> None:
        raise UNREACHABLE

    def verify(self) -> None:
        raise NoReplicaAnswered(["us-east-1: ConnectTimeoutError", "us-west-2: refused"])

    def refuse(self, region: str) -> None:
        raise UnsafeOperation("refusing: a provider's own answer")

    def outer(self, region: str) -> None:
        self.scale(region, 1)

    @staticmethod
    def pure(x: int) -> int:
        return x + 1


def test_an_aws_error_leaves_a_provider_as_one_line_naming_region_method_and_operation() -> None:
    with pytest.raises(ProviderError) as caught:
        Flaky().scale("west", count=2)
    assert str(caught.value) == ("west: Flaky.scale: UpdateAutoScalingGroup: Throttling: "
                                 "Rate exceeded")
    assert isinstance(caught.value.__cause__, ClientError)
    with pytest.raises(ProviderError, match=r"^east: Flaky.status: EndpointConnectionError: "
                                            r"Could not connect"):
        Flaky().status("east")
    with pytest.raises(ProviderError, match=r"^Flaky.verify: no replica answered \(us-east-1"):
        Flaky().verify()


def test_an_error_is_converted_once_and_a_refusal_passes_untouched() -> None:
    with pytest.raises(ProviderError) as caught:
        Flaky().outer("west")
    assert str(caught.value).startswith("west: Flaky.scale: ")  # not wrapped again by outer
    with pytest.raises(UnsafeOperation, match=r"^refusing: a provider's own answer$"):
        Flaky().refuse("west")
    assert Flaky.pure(1) == 2  # a static method stays one


def test_an_expected_code_is_an_answer_and_any_other_error_a_provider_error() -> None:
    with expected("west: promote_read_replica", "InvalidDBInstanceState") as answer:
        raise client_error("InvalidDBInstanceState", "already being promoted")
    assert answer and answer.code == "InvalidDBInstanceState"
    assert answer.detail == "InvalidDBInstanceState: already being promoted"
    with expected("west: promote_read_replica", "InvalidDBInstanceState") as answer:
        pass
    assert not answer and answer.code is None
    with pytest.raises(ProviderError, match=r"^west: promote_read_replica: DoThing: "
                                            r"AccessDenied: it says no$"), \
            expected("west: promote_read_replica", "InvalidDBInstanceState"):
        raise client_error("AccessDenied")
    with expected("snapshots", any_code=True) as answer:
        raise client_error("InvalidParameterValue")
    assert answer.code == "InvalidParameterValue"
    with pytest.raises(ProviderError, match=r"^snapshots: EndpointConnectionError"), \
            expected("snapshots", any_code=True):
        raise UNREACHABLE  # no answer at all is never an answer


def test_best_effort_turns_every_aws_failure_into_an_answer_and_nothing_else() -> None:
    with best_effort() as failed:
        raise UNREACHABLE
    assert failed.code == "EndpointConnectionError"
    with best_effort() as failed:
        raise client_error("ValidationError", "no such group")
    assert failed.detail == "ValidationError: no such group"
    with pytest.raises(KeyError), best_effort():
        raise KeyError("a bug is not an AWS answer")
