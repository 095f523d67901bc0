"""AWS errors at the provider boundary, sorted by what the engine does next.

A `ClientError` is AWS's answer (a code to act on); a `BotoCoreError` is no answer at all (a
connect or read timeout, a refused connection: the Region may be dead). Both become
`ProviderError`, which a step retries within its deadline, so an unreachable endpoint never
kills an invocation and leaves a plan half-run.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import BotoCoreError, ClientError

from regionguard.errors import ProviderError

AWS_ERRORS = (ClientError, BotoCoreError)


def error_code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "ClientError"))
    return type(exc).__name__


def describe(exc: BaseException) -> str:
    """One line: the error code and AWS's message, or the kind of transport failure."""
    if isinstance(exc, ClientError):
        message = exc.response.get("Error", {}).get("Message", "")
        return f"{error_code(exc)}: {message}".rstrip(": ")
    return f"{type(exc).__name__}: {exc}".splitlines()[0]


@contextmanager
def provider_errors(what: str) -> Iterator[None]:
    """Turn any AWS failure inside the block into a one-line `ProviderError` about `what`."""
    try:
        yield
    except AWS_ERRORS as exc:
        raise ProviderError(f"{what}: {describe(exc)}") from exc
