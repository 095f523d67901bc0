"""The AWS providers' error boundary: what boto3 raises becomes a one-line `ProviderError`
naming the operation, in one place, so nothing of botocore reaches the engine, the guard loop
or the CLI.

A `ClientError` is AWS's answer (a code to act on); a `BotoCoreError` is no answer at all (a
connect or read timeout, a refused connection: the Region may be dead); `NoReplicaAnswered` is
no answer from any arbiter replica. All become `ProviderError`, which a step retries within its
deadline, so an unreachable endpoint never kills an invocation and leaves a plan half-run.

Two ways through it:
- `@aws_boundary` on a provider class converts whatever escapes a public method (the common
  case: a failed call is a failed step);
- `expected(...)` and `best_effort()` are for the few calls where an error *is* the answer (an
  instance that is not there, a promotion already under way, a fact that cannot be looked at):
  the caller reads the `Answer` and decides, and every other error is converted as above.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from regionguard.errors import ProviderError, RegionGuardError
from regionguard.providers.aws.clients import NoReplicaAnswered

AWS_ERRORS = (ClientError, BotoCoreError, NoReplicaAnswered)
C = TypeVar("C", bound=type)


def error_code(exc: BaseException) -> str:
    """AWS's error code (`DBInstanceNotFound`), or the kind of failure when AWS did not answer."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "ClientError"))
    return type(exc).__name__


def describe(exc: BaseException) -> str:
    """One line: the error code and AWS's message, or the kind of transport failure."""
    if isinstance(exc, ClientError):
        message = exc.response.get("Error", {}).get("Message", "")
        return f"{error_code(exc)}: {message}".rstrip(": ").splitlines()[0]
    if isinstance(exc, NoReplicaAnswered):
        return f"no replica answered ({exc})"
    return f"{type(exc).__name__}: {exc}".splitlines()[0]


def provider_error(what: str, exc: BaseException) -> ProviderError:
    """The one translation: `what` failed, and how (AWS's operation too, when it answered).
    The caller raises it `from exc`."""
    operation = getattr(exc, "operation_name", None) if isinstance(exc, ClientError) else None
    how = f"{operation}: {describe(exc)}" if operation else describe(exc)
    return ProviderError(f"{what}: {how}")


def _guarded(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
    signature = inspect.signature(method)

    @functools.wraps(method)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except RegionGuardError:
            raise  # converted already (by `expected`, or a provider's own refusal)
        except AWS_ERRORS as exc:
            try:  # most provider calls are about one region: say which
                region = signature.bind(*args, **kwargs).arguments.get("region")
            except TypeError:
                region = None
            what = f"{region}: {name}" if isinstance(region, str) else name
            raise provider_error(what, exc) from exc

    return guarded


def aws_boundary(cls: C) -> C:
    """Wrap every public method of an AWS provider class: an AWS error escaping it becomes
    `ProviderError("<region>: <Class>.<method>: <Operation>: <Code>: <message>")`. A
    `RegionGuardError` passes untouched, so an error is converted once however deep it began."""
    for attr, value in list(vars(cls).items()):
        if inspect.isfunction(value) and not attr.startswith("_"):
            setattr(cls, attr, _guarded(f"{cls.__name__}.{attr}", value))
    return cls


@dataclass(slots=True)
class Answer:
    """What AWS said instead of a result, when the caller expected it might: `code` is None
    while the call succeeded."""

    code: str | None = None
    detail: str = ""

    def __bool__(self) -> bool:
        return self.code is not None


class _Answering:
    """The context of `expected` and `best_effort`: an error that is an answer is recorded in
    the `Answer` and suppressed (`__exit__` says so to the type checker too: code after the
    block runs when it came); any other AWS error becomes `ProviderError` about `what`."""

    def __init__(self, what: str | None, is_answer: Callable[[BaseException], bool]) -> None:
        self.what = what
        self.is_answer = is_answer
        self.answer = Answer()

    def __enter__(self) -> Answer:
        return self.answer

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> bool:
        if exc is None or not isinstance(exc, AWS_ERRORS):
            return False
        if not self.is_answer(exc):
            raise provider_error(self.what or "AWS", exc) from exc
        self.answer.code, self.answer.detail = error_code(exc), describe(exc)
        return True


def expected(what: str, *codes: str, any_code: bool = False) -> _Answering:
    """For a call where one of AWS's error `codes` is an answer, not a failure (with
    `any_code`: whatever AWS answered, as long as it answered). The yielded `Answer` is set
    when it came; every other error becomes `ProviderError` about `what`."""

    def is_answer(exc: BaseException) -> bool:
        return isinstance(exc, ClientError) and (any_code or error_code(exc) in codes)

    return _Answering(what, is_answer)


def best_effort() -> _Answering:
    """For a call whose failure, of any kind, is itself the answer (a fact that could not be
    looked at, a fence that could not be made, a lag that is unknown): it never raises an AWS
    error; the yielded `Answer` says what went wrong."""
    return _Answering(None, lambda _exc: True)
