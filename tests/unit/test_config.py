"""Topology validation: each bad input gives one line naming file and field, and exit code 2."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from regionguard.cli import app
from regionguard.config import Role, Strategy, load_topology, parse_topology

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = (REPO / "regionguard.toml").read_text()


def run_validate(path: Path) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["validate", str(path)])
    return result.exit_code, result.output


def test_example_topology_is_valid_and_is_the_documented_default() -> None:
    topo = load_topology(REPO / "regionguard.toml")
    assert topo.app == "orders"
    assert topo.strategy is Strategy.PILOT_LIGHT
    assert topo.home_primary == "east"
    assert topo.regions["west"].home_role is Role.STANDBY
    assert topo.health.interval_s == 0.25 and topo.health.quorum == 2
    assert topo.desired_processes("west", Role.STANDBY) == 0
    assert topo.desired_processes("west", Role.PRIMARY) == 2


def test_validate_accepts_the_example(tmp_path: Path) -> None:
    path = tmp_path / "ok.toml"
    path.write_text(EXAMPLE)
    code, output = run_validate(path)
    assert code == 0, output
    assert "ok" in output


BAD_INPUTS = {
    "unknown-key": (EXAMPLE.replace('app = "orders"', 'app = "orders"\ncolour = "blue"'),
                    "colour: unknown key"),
    "unknown-nested-key": (EXAMPLE.replace("quorum = 2", "quorum = 2\nretries = 3"),
                           "health.retries: unknown key"),
    "two-primaries": (EXAMPLE.replace('home_role = "standby"', 'home_role = "primary"'),
                      "exactly one region must have home_role"),
    "no-standby": (EXAMPLE[: EXAMPLE.index("[regions.west]")] + EXAMPLE[EXAMPLE.index("[aws]"):],
                   "regions: need exactly two regions (one primary, one standby), found 1"),
    "negative-interval": (EXAMPLE.replace("interval_s = 0.25", "interval_s = -1"),
                          "health.interval_s: Input should be greater than 0"),
    "timeout-not-below-interval": (EXAMPLE.replace("timeout_s = 0.2", "timeout_s = 0.3"),
                                   "timeout_s (0.3) must be below interval_s (0.25)"),
    "unknown-strategy": (EXAMPLE.replace('strategy = "pilot-light"', 'strategy = "hot-spare"'),
                         "strategy: Input should be"),
    "unreadable-toml": (EXAMPLE.replace('app = "orders"', 'app = "orders'), "invalid TOML"),
    "role-typo": (EXAMPLE.replace('home_role = "standby"', 'home_role = "secondary"'),
                  "regions.west.home_role"),
    "capacity-vs-strategy": (EXAMPLE.replace("standby_capacity = 0\nlocal",
                                             "standby_capacity = 1\nlocal", 1),
                             "regions.west.standby_capacity: 1 does not fit strategy"),
    "async-with-rpo-0": (EXAMPLE.replace('replication = "sync"', 'replication = "async"'),
                         "failover.rpo_target_s"),
    "aurora-on-a-burstable-class": (
        EXAMPLE.replace('database = "rds" ', 'database = "aurora-global"\n'
                        'db_instance_class = "db.t4g.medium" '),
        "aws.db_instance_class db.t4g.medium cannot run Aurora Global Database"),
    "sync-across-aws-regions": (
        EXAMPLE.replace('database = "rds" ', 'replication = "sync" '),
        'aws.replication: "sync" is not possible across AWS Regions'),
    "cname-at-the-zone-apex": (
        EXAMPLE.replace('database = "rds" ', 'dns_record = "cname" '),
        "aws.dns_record: a CNAME cannot sit at a zone's apex"),
    "zone-not-a-parent": (
        EXAMPLE.replace('database = "rds" ', 'hosted_zone_name = "example.org" '),
        "aws.hosted_zone_name: example.org is not a parent of aws.domain app.example.com"),
    "db-class-typo": (EXAMPLE.replace('database = "rds" ', 'db_instance_class = "t4g.medium" '),
                      "aws.db_instance_class: String should match pattern"),
    "cors-origin-without-scheme": (
        EXAMPLE.replace('database = "rds" ', 'cors_origins = ["shop.example"]\ndatabase = "rds" '),
        "aws.cors_origins.0: String should match pattern"),
    "non-loopback-address": (EXAMPLE.replace('address = "127.0.0.1"', 'address = "10.0.0.1"', 1),
                             "regions.east.local.address"),
}


# the self-managed sites: three hosts, one etcd member each (the lab's addresses)
SITES = (EXAMPLE.replace('home_role = "primary"', 'home_role = "primary"\nhost = "10.77.0.11"')
         .replace('home_role = "standby"', 'home_role = "standby"\nhost = "10.77.0.12"')
         + '\n[witness]\nname = "witness"\nhost = "10.77.0.13"\n\n[arbiter]\nkind = "etcd"\n'
         'lease_ttl_s = 4\nmembers = { east = "http://10.77.0.11:2379", '
         'west = "http://10.77.0.12:2379", witness = "http://10.77.0.13:2379" }\n')
BAD_INPUTS |= {
    "etcd-of-two-members": (SITES.replace(', witness = "http://10.77.0.13:2379"', ''),
                            "arbiter.members: 2 member(s); etcd needs a majority"),
    "etcd-without-a-witness": (SITES.replace('[witness]\nname = "witness"\nhost = "10.77.0.13"',
                                             ''), "witness: missing"),
    "two-sites-on-one-host": (SITES.replace('host = "10.77.0.12"', 'host = "10.77.0.11"')
                              .replace("10.77.0.12:2379", "10.77.0.11:2379"),
                              "regions.west.host: 10.77.0.11 is also east's host"),
    "a-ttl-the-timings-cannot-honour": (
        SITES.replace("lease_ttl_s = 4", "lease_ttl_s = 2"),
        "arbiter.lease_ttl_s: 2 s cannot be honoured"),
    "a-witness-that-is-a-region": (SITES.replace('name = "witness"', 'name = "west"'),
                                   "witness.name: 'west' is also a region"),
    "a-member-off-its-site": (SITES.replace("10.77.0.12:2379", "10.77.0.13:2380"),
                              "arbiter.members.west: http://10.77.0.13:2380 is not on west's host"),
    "an-agent-port-on-the-front-door": (
        SITES.replace("lease_ttl_s = 4", "lease_ttl_s = 4\nagent_port = 8080"),
        "arbiter.agent_port: 8080 is also regions.east.ports.front_door"),
}


def test_the_sites_topology_is_valid_and_names_every_site() -> None:
    topo = parse_topology(tomllib.loads(SITES))
    assert topo.sites == ("east", "west", "witness")
    assert [topo.site_host(s) for s in topo.sites] == ["10.77.0.11", "10.77.0.12", "10.77.0.13"]
    assert topo.arbiter.shortest_ttl_s() <= topo.arbiter.lease_ttl_s == 4
    # the loopback sandbox may put every site on one address
    loopback = (SITES.replace("10.77.0.11", "127.0.0.1")
                .replace("10.77.0.12:2379", "127.0.0.1:2479").replace("10.77.0.12", "127.0.0.1")
                .replace("10.77.0.13:2379", "127.0.0.1:2579")
                .replace("10.77.0.13", "127.0.0.1"))
    assert parse_topology(tomllib.loads(loopback)).site_host("west") == "127.0.0.1"


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_topology_gives_one_line_naming_file_and_field(tmp_path: Path, case: str) -> None:
    text, expected = BAD_INPUTS[case]
    assert text != EXAMPLE, "the replacement did not apply; the case tests nothing"
    path = tmp_path / f"{case}.toml"
    path.write_text(text)
    code, output = run_validate(path)
    assert code == 2
    lines = [ln for ln in output.splitlines() if ln.strip()]
    assert len(lines) == 1, output
    assert str(path) in lines[0]
    assert expected in lines[0]
    assert "Traceback" not in output


def test_missing_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    code, output = run_validate(tmp_path / "absent.toml")
    assert code == 2
    assert "file not found" in output and len(output.strip().splitlines()) == 1


def test_an_unknown_world_is_refused_in_one_line() -> None:
    result = CliRunner().invoke(app, ["--world", "mars", "status"])
    assert result.exit_code == 2
    assert "--world: 'mars' is not a world" in result.output


def test_the_db_class_defaults_per_engine() -> None:
    import tomllib

    from regionguard.config import parse_topology

    data = tomllib.loads(EXAMPLE)
    assert parse_topology(data).aws.db_instance_class == "db.t4g.medium"  # type: ignore[union-attr]
    data["aws"]["database"] = "aurora-global"
    assert parse_topology(data).aws.db_instance_class == "db.r6g.large"  # type: ignore[union-attr]


def test_the_aws_world_replicates_asynchronously_with_its_own_rpo_target() -> None:
    """The sites' file says sync (their standby is synchronous); the AWS world plans the
    same topology as asynchronous with aws.rpo_target_s, so its lag check runs."""
    from regionguard.config import Replication
    from regionguard.infra.view import aws_view

    topo = parse_topology(tomllib.loads(EXAMPLE.replace('database = "rds" ',
                                                        "rpo_target_s = 12.5 ")))
    assert topo.replication is Replication.SYNC
    aws = aws_view(topo).topology
    assert aws.replication is Replication.ASYNC and aws.failover.rpo_target_s == 12.5
