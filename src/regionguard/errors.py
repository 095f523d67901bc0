"""The error hierarchy, sorted by what the caller does next.

`ConfigError` and `UsageError`: the input is wrong, fix it (exit 2).
`ProviderError`: a backend call failed; a step may retry it within its deadline (exit 1).
`UnsafeOperation`: refused because acting could lose data or make a second primary (exit 3).
`NotAvailable`: the thing asked for is not there yet (nothing is up, a tool is missing) (exit 4).
Every message is one line: what was refused or failed, what was observed, what to do.
"""

from __future__ import annotations


class RegionGuardError(Exception):
    """Base of every error regionguard raises on purpose; the CLI prints it as one line."""

    exit_code = 1


class ConfigError(RegionGuardError):
    """The topology file (or a CLI argument) is invalid."""

    exit_code = 2


class UsageError(RegionGuardError):
    """A command was called in a way that cannot work."""

    exit_code = 2


class ProviderError(RegionGuardError):
    """A backend (PostgreSQL, HAProxy, AWS) did not do what was asked, or did not answer."""

    exit_code = 1


class StepAbandoned(ProviderError):
    """A step that cannot succeed by waiting: ends its retries before the deadline (a provider
    says so when, for example, what it would act on is not its own)."""


class NotFenced(ProviderError):
    """A failover cannot promote: the old primary is neither fenced nor under an expired
    lease, and nobody forced it. Retried within the step (the fence is tried again); when
    the plan fails on it, the automatic path treats it as a refusal, not a failure."""


class UnsafeOperation(RegionGuardError):
    """Refused: acting now could lose acknowledged writes or produce two primaries."""

    exit_code = 3


class NotAvailable(RegionGuardError):
    """Something needed is missing: a sandbox that is not up, a tool that is not installed."""

    exit_code = 4


class PlanConflict(UnsafeOperation):
    """Another plan holds the epoch, or has replaced this plan's record: this runner must stop
    (an automatic caller simply lets the other plan be)."""


class StateError(ProviderError):
    """The state store cannot be read or written (corrupt, unreadable, disk full). Nothing
    was changed; the message says which file and what to do."""
