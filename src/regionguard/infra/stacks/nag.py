"""cdk-nag suppressions, always on one construct (and its children) with a reason; never
stack-wide. Keeping them in one helper makes every exception greppable."""

from __future__ import annotations

from collections.abc import Mapping

from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import IConstruct


def justify(construct: IConstruct, reasons: Mapping[str, str]) -> None:
    NagSuppressions.add_resource_suppressions(
        construct,
        [NagPackSuppression(id=rule, reason=reason) for rule, reason in reasons.items()],
        apply_to_children=True,
    )
