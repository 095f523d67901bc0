"""What PostgreSQL's `fsync = on` costs the sandbox: commit latency and throughput of a sync
pair (the sandbox's settings: a synchronous standby, `remote_apply`), with fsync on and off.

The sandbox runs with fsync on, so its RPO figures hold against a power cut, not only against
process kills; this prints what that costs on this machine. Each setting gets a fresh
primary and standby; commits are single-row inserts, one client and then 8.
Run: .venv/bin/python -m benchmarks.durability [--commits N]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchmarks.common import percentile
from regionguard.providers.local import pgbin
from regionguard.providers.local.netutil import free_port
from regionguard.providers.local.postgres import PostgresCluster

CREATE = "CREATE TABLE IF NOT EXISTS bench (id bigserial PRIMARY KEY, v text NOT NULL)"


def commits(primary: PostgresCluster, n: int, clients: int) -> tuple[float, list[float]]:
    def worker(_: int) -> list[float]:
        latencies = []
        with primary.connect() as conn:
            for _ in range(n // clients):
                t0 = time.perf_counter()
                conn.execute("INSERT INTO bench (v) VALUES ('x')")
                latencies.append(time.perf_counter() - t0)
        return latencies

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        latencies = [x for lat in pool.map(worker, range(clients)) for x in lat]
    return len(latencies) / (time.perf_counter() - started), latencies


def run(fsync: bool, n: int) -> None:
    state = Path(tempfile.mkdtemp(prefix="rg-durability-"))
    root = pgbin.data_root(state)
    primary = PostgresCluster("east", root / "east", "127.0.0.1", free_port(), "bench", fsync)
    standby = PostgresCluster("west", root / "west", "127.0.0.1", free_port(), "bench", fsync)
    try:
        t0 = time.perf_counter()
        primary.create_primary()
        primary.set_sync_standby("west")
        standby.create_standby(primary)
        pair_s = time.perf_counter() - t0
        with primary.connect() as conn:
            conn.execute(CREATE)
        commits(primary, 200, 1)  # warm up
        label = "on " if fsync else "off"
        print(f"fsync {label}: primary + sync standby created in {pair_s:.2f} s")
        for clients in (1, 8):
            rate, lat = commits(primary, n, clients)
            print(f"  {clients} client(s): {rate:7.0f} commits/s  p50 "
                  f"{percentile(lat, 50) * 1000:.2f} ms  p99 {percentile(lat, 99) * 1000:.2f} ms")
    finally:
        for cluster in (standby, primary):
            cluster.remove()
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(state, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--commits", type=int, default=2000)
    args = parser.parse_args()
    for fsync in (False, True):
        run(fsync, args.commits)


if __name__ == "__main__":
    main()
