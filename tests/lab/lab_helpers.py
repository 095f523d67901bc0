"""A lab for the tests (the sample topology on the lab's sites), and the check that `lab down`
left nothing of it."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from regionguard.config import load_topology
from regionguard.lab import netns
from regionguard.lab.hosts import namespace_leftovers as leftovers
from regionguard.lab.lab import Lab, down_anything
from regionguard.lab.layout import sample_topology


def lab_needs() -> None:
    if os.geteuid() != 0:
        pytest.skip("the lab needs root")  # CI and these machines run as root
    for tool in ("ip", "nft", "unshare", "etcd", "haproxy"):
        if not shutil.which(tool) and not Path(f"/usr/bin/{tool}").exists():
            pytest.fail(f"the lab needs {tool}; `make setup` installs it")


@contextlib.contextmanager
def running_lab(tmp_path: Path, replication: str = "sync") -> Iterator[Lab]:
    lab_needs()
    assert not leftovers(), f"a lab is left over: {leftovers()}"
    config = tmp_path / "topology.toml"
    config.write_text(sample_topology(replication))
    lab = Lab.create(tmp_path / "lab", load_topology(config))
    pids: list[int] = []
    try:
        lab.up(timeout_s=90)
        pids = [p.pid for s in lab.layout.sites for p in lab.processes(s.name)]
        assert len(pids) > 10, pids  # etcd, agents, databases, apps, front doors, the edge
        yield lab
    finally:
        result = down_anything(tmp_path / "lab")
        assert not result["survivors"] and not result["namespaces_left"], result
    assert_nothing_left(tmp_path / "lab", pids)


def assert_nothing_left(root: Path, pids: list[int]) -> None:
    """`lab down` left no namespace, process, link, nftables table (they live in the
    namespaces) or file of the lab."""
    assert not leftovers()
    alive = [pid for pid in pids if psutil.pid_exists(pid)
             and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
    assert not alive, f"processes of the lab left running: {alive}"
    links = netns.run("ip", "-o", "link")
    assert "p-east" not in links and "rgbr0" not in links, links
    assert not root.exists()
