"""Topology variants for the AWS tests, derived from the repo's example file."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from regionguard.config import Topology, parse_topology

REPO = Path(__file__).resolve().parents[2]
BASE: dict[str, Any] = tomllib.loads((REPO / "regionguard.toml").read_text())


def merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for k, v in b.items():
        out[k] = merge(a[k], v) if isinstance(v, dict) and isinstance(a.get(k), dict) else v
    return out


def standby(n: int) -> dict[str, Any]:
    return {"east": {"standby_capacity": n}, "west": {"standby_capacity": n}}


VARIANTS: dict[str, dict[str, Any]] = {
    "pilot-light": {},
    # the app's name below its zone's apex, so its failover records can be CNAMEs with their
    # own TTL (the other variants keep the default alias)
    "warm-standby": {"strategy": "warm-standby", "regions": standby(1),
                     "aws": {"compute": "lambda", "database": "aurora-global",
                             "hosted_zone_name": "example.com", "dns_record": "cname"}},
    "active-active": {"strategy": "active-active", "regions": standby(2),
                      "aws": {"compute": "lambda", "database": "rds", "rds_proxy": True}},
    "backup-restore": {"strategy": "backup-restore"},
    # seed 000: the pilot light on RDS MySQL Multi-AZ with a cross-region replica
    "pilot-light-mysql": {"aws": {"engine": "mysql"}},
}


def topology(name: str, **extra: Any) -> Topology:
    return parse_topology(merge(merge(BASE, VARIANTS[name]), extra))
