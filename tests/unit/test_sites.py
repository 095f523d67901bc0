"""The self-managed sites' pure pieces: the lab's topology from the user's, the agent's site
layout, the app's etcd settings, and the one-line refusals an operator meets first."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from regionguard.agent.site import Site
from regionguard.app.settings import AppSettings, SettingsError
from regionguard.cli import app
from regionguard.config import load_topology, parse_topology
from regionguard.errors import ConfigError
from regionguard.lab.layout import LabLayout, lab_topology, toml_text
from regionguard.providers.local.postgres.tls import PgTls, hba

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]


def test_the_lab_runs_the_users_policy_on_its_own_hosts_and_etcd() -> None:
    user = load_topology(REPO / "regionguard.toml")
    layout = LabLayout.of(Path("/srv/lab"), user)
    lab = lab_topology(user, layout)
    # the file the agents read says the same as the model it was written from
    assert parse_topology(tomllib.loads(toml_text(lab))) == lab
    assert (lab.strategy, lab.replication, lab.health) == (user.strategy, user.replication,
                                                          user.health)
    assert lab.arbiter.kind == "etcd" and set(lab.arbiter.members) == {"east", "west",
                                                                      "witness"}
    hosts = {s: lab.site_host(s) for s in lab.sites}
    assert len(set(hosts.values())) == 3 and all(h.startswith("10.77.0.") for h in hosts.values())
    assert {s.namespace for s in layout.sites} == {"rglab-east", "rglab-west",
                                                   "rglab-witness", "rglab-client"}
    assert layout.edge_url == "http://10.77.0.100:8080"
    assert lab.state_dir == Path("/srv/lab/state")


def test_a_site_is_refused_in_one_line_without_etcd_or_outside_the_topology() -> None:
    user = load_topology(REPO / "regionguard.toml")
    with pytest.raises(ConfigError, match=r'arbiter\.kind: an agent needs "etcd"'):
        Site(user, "east")
    lab = lab_topology(user, LabLayout.of(Path("/srv/lab"), user))
    with pytest.raises(ConfigError, match="--site mars: not a site of this topology; choose "
                                          "one of east, west, witness"):
        Site(lab, "mars")
    witness = Site(lab, "witness")
    assert not witness.is_region
    with pytest.raises(ConfigError, match="witness: it runs no database"):
        _ = witness.region
    east = Site(lab, "east")
    assert east.database("west").address == "10.77.0.12"  # every site's, from the topology
    assert east.front_door_url("west") == "http://10.77.0.12:8080"


def test_the_agent_command_refuses_a_file_arbiter_in_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["-c", str(REPO / "regionguard.toml"), "agent", "--site",
                                      "east"])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        'error: arbiter.kind: an agent needs "etcd" (one member per site); the "file" '
        "topology is the sandbox's input, run `regionguard up`"]


def test_only_the_local_worlds_person_commands_act_on_the_sandboxs_sites(
        tmp_path: Path) -> None:
    """While `regionguard up`'s sites exist, a person's commands in the local world act on
    their topology; the other worlds, and what runs from the file itself (an agent), never."""
    from regionguard import worlds
    from regionguard.cli.common import CliState

    config = tmp_path / "topology.toml"
    config.write_text((REPO / "regionguard.toml").read_text().replace(
        'state_dir = ".regionguard"', f'state_dir = "{tmp_path / "state"}"'))
    user = load_topology(config)
    sites = tmp_path / "state" / "sites"
    sites.mkdir(parents=True)
    (sites / "regionguard.toml").write_text(
        toml_text(lab_topology(user, LabLayout.of(sites, user, loopback=True))))
    local = CliState(config, worlds.get("local"))
    assert local.topology().arbiter.kind == "etcd" and local.sandbox_sites() == sites
    assert local.user_topology().arbiter.kind == "file"
    for other in ("aws", "aws-emulated"):
        assert CliState(config, worlds.get(other)).topology().arbiter.kind == "file"
    agent = CliRunner().invoke(app, ["-c", str(config), "agent", "--site", "east"])
    assert agent.exit_code == 2 and "an agent needs" in agent.stderr, agent.output
    (sites / "regionguard.toml").write_text("app = [")  # a broken file: one line, the way out
    broken = CliRunner().invoke(app, ["-c", str(config), "status"])
    assert broken.exit_code == 2, broken.output
    assert broken.stderr.strip().count("\n") == 0 and "`regionguard down`" in broken.stderr


def test_the_apps_etcd_arbiter_comes_from_the_environment() -> None:
    env = {"RG_REGION": "east", "RG_DSNS": '{"east": "host=x"}', "RG_APP": "orders",
           "RG_ARBITER_ETCD": "east=http://10.0.0.1:2379,witness=http://10.0.0.3:2379"}
    settings = AppSettings.from_env(env)
    assert list(settings.arbiter_etcd) == ["east", "witness"]  # this site's member first
    assert settings.arbiter_app == "orders"
    with pytest.raises(SettingsError, match="RG_ARBITER_ETCD must be name=value pairs"):
        AppSettings.from_env({**env, "RG_ARBITER_ETCD": "http://10.0.0.1:2379"})


def test_lab_commands_need_root_and_say_so_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """The namespaced lab needs root and says so, pointing to the loopback lab (any user)."""
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    result = CliRunner().invoke(app, ["-c", str(REPO / "regionguard.toml"), "lab", "up",
                                      "--lab", "/nonexistent/lab"])
    assert result.exit_code == 4
    assert len(result.stderr.strip().splitlines()) == 1
    assert "needs root" in result.stderr and "--loopback" in result.stderr
    assert not Path("/nonexistent/lab").exists()


def test_etcd_tls_settings_are_refused_in_one_line_when_half_given_or_over_http() -> None:
    user = load_topology(REPO / "regionguard.toml")
    data = lab_topology(user, LabLayout.of(Path("/srv/lab"), user)).model_dump(mode="json")
    data.pop("tls")
    data["arbiter"]["members"] = {k: v.replace("https://", "http://")
                                  for k, v in data["arbiter"]["members"].items()}
    assert Site(parse_topology(data), "east").etcd_tls is None
    data["arbiter"]["cert_file"] = "/etc/regionguard/etcd-client.pem"
    with pytest.raises(ConfigError, match=r"arbiter\.cert_file and arbiter\.key_file: give both"):
        parse_topology(data)
    data["arbiter"]["key_file"] = "/etc/regionguard/etcd-client-key.pem"
    with pytest.raises(ConfigError, match=r"arbiter\.members\.east: http://10\.77\.0\.11:2379 is "
                                          r"plain http while TLS files are set"):
        parse_topology(data)
    data["arbiter"]["members"] = {k: v.replace("http://", "https://")
                                  for k, v in data["arbiter"]["members"].items()}
    assert Site(parse_topology(data), "east").etcd_tls is not None


def test_the_lab_runs_tls_between_its_sites_each_with_its_own_certificate() -> None:
    """etcd (client and peer) and PostgreSQL across sites: verify-full against the lab's CA,
    each site presenting its own certificate ({site} in the paths)."""
    user = load_topology(REPO / "regionguard.toml")
    lab = lab_topology(user, LabLayout.of(Path("/srv/lab"), user))
    assert all(url.startswith("https://") for url in lab.arbiter.members.values())
    east, witness = Site(lab, "east"), Site(lab, "witness")
    assert east.etcd_tls is not None and witness.etcd_tls is not None
    assert (east.etcd_tls.ca_file, east.etcd_tls.cert_file, east.etcd_tls.key_file) == (
        "/srv/lab/tls/ca.pem", "/srv/lab/tls/east.pem", "/srv/lab/tls/east-key.pem")
    assert witness.etcd_tls.cert_file == "/srv/lab/tls/witness.pem"
    dsn = dict(part.split("=", 1) for part in witness.database("east").dsn().split())
    assert dsn["sslmode"] == "verify-full" and dsn["host"] == "10.77.0.11"
    assert dsn["sslrootcert"].startswith(str(witness.data_root))  # the witness's own copy
    assert "sslmode=verify-full" in east.database("west").replication_conninfo("east")


def test_tls_between_sites_is_refused_in_one_line_without_etcd_or_over_http() -> None:
    user = load_topology(REPO / "regionguard.toml")
    data = lab_topology(user, LabLayout.of(Path("/srv/lab"), user)).model_dump(mode="json")
    plain = {**data, "arbiter": {**data["arbiter"], "members": {
        k: v.replace("https://", "http://") for k, v in data["arbiter"]["members"].items()}}}
    with pytest.raises(ConfigError, match=r"arbiter\.members\.east: http://10\.77\.0\.11:2379 is "
                                          r"plain http while \[tls\] is set"):
        parse_topology(plain)
    sandbox_input = tomllib.loads((REPO / "regionguard.toml").read_text())
    sandbox_input["tls"] = data["tls"]
    with pytest.raises(ConfigError, match=r'tls: TLS between sites needs the sites\' world'):
        parse_topology(sandbox_input)


def test_a_database_takes_tls_only_from_other_hosts_when_the_sites_use_it() -> None:
    def lines(text: str) -> list[list[str]]:
        return [ln.split() for ln in text.splitlines() if ln and not ln.startswith("#")]

    with_tls = lines(hba(PgTls(Path("/x")), ("10.0.2.10", "127.0.0.2")))
    assert [ln[0] for ln in with_tls if "samenet" in ln] == ["hostssl", "hostssl"]
    # a peer in another data centre is on no subnet of this host: let in by its address
    assert [ln[:2] for ln in with_tls if "10.0.2.10/32" in ln] == [["hostssl", "all"],
                                                                   ["hostssl", "replication"]]
    assert not [ln for ln in with_tls if "127.0.0.2/32" in ln]  # loopback has its own lines
    assert [ln[0] for ln in with_tls if "127.0.0.0/8" in ln] == ["host", "host"]
    assert all(ln[0] != "hostssl" for ln in lines(hba(None)))
    assert PgTls(Path("/x")).server_settings()["ssl"] == "on"


def test_a_loopback_layout_puts_the_sites_on_127_77_0_and_checks_every_port_they_take() -> None:
    user = load_topology(REPO / "regionguard.toml")
    layout = LabLayout.of(Path("/srv/lab"), user, loopback=True)
    assert [(s.name, s.address) for s in layout.sites] == [
        ("east", "127.77.0.11"), ("west", "127.77.0.12"), ("witness", "127.77.0.13"),
        ("client", "127.77.0.100")]
    taken = layout.listen_addresses()
    slots = max(r.capacity for r in user.regions.values())
    assert {("127.77.0.11", 8100 + n) for n in range(slots)} <= set(taken)
    assert ("127.77.0.13", 2379) in taken and ("127.77.0.100", 8080) in taken
    assert ("127.77.0.13", 8008) in taken  # every agent's endpoint, the topology's port
    moved = user.model_copy(update={"arbiter": user.arbiter.model_copy(
        update={"agent_port": 9009})})
    assert ("127.77.0.12", 9009) in LabLayout.of(Path("/srv/lab"), moved,
                                                 loopback=True).listen_addresses()
    topology = lab_topology(user, layout)
    assert LabLayout.of_lab(Path("/srv/lab"), topology).loopback  # known again by its hosts
    assert not LabLayout.of_lab(Path("/srv/lab"), lab_topology(
        user, LabLayout.of(Path("/srv/lab"), user))).loopback
