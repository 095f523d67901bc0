"""Front-door overhead and `up` wall time.

Prints `up` time, then requests/s and p50/p99 latency of GET /orders/{id} through HAProxy vs
straight to the one app process behind it (capacity 1, so both paths reach the same process).
Run: .venv/bin/python -m benchmarks.frontdoor [--requests N] [--concurrency C]
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from benchmarks.common import percentile, temp_sandbox
from regionguard.providers.local.status import sandbox_status


def measure(url: str, requests: int, concurrency: int) -> tuple[float, list[float]]:
    per_worker = requests // concurrency

    def worker(_: int) -> list[float]:
        lat = []
        with httpx.Client(timeout=5) as client:
            for _ in range(per_worker):
                t0 = time.perf_counter()
                r = client.get(url)
                lat.append(time.perf_counter() - t0)
                assert r.status_code == 200, r.text
        return lat

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        latencies = [x for lat in pool.map(worker, range(concurrency)) for x in lat]
    return len(latencies) / (time.perf_counter() - started), latencies


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    with temp_sandbox(**{"capacity = 2": "capacity = 1"}) as (sandbox, _):
        t0 = time.perf_counter()
        front = sandbox.up()
        up_s = time.perf_counter() - t0
        print(f"up (fresh sandbox, 2 regions): {up_s:.2f} s")
        order = httpx.post(f"{front}/orders", json={
            "request_id": "bench-1", "customer": "b", "item": "i", "quantity": 1}).json()
        direct = sandbox_status(sandbox)["regions"][0]["compute"]["urls"][0]
        path = f"/orders/{order['id']}"
        measure(front + path, 400, args.concurrency)  # warm both paths
        measure(direct + path, 400, args.concurrency)
        runs = (("sequential", 1), (f"{args.concurrency} concurrent", args.concurrency))
        for label, conc in runs:
            n = args.requests if conc > 1 else args.requests // 4
            rps_f, lat_f = measure(front + path, n, conc)
            rps_d, lat_d = measure(direct + path, n, conc)
            p50f, p50d = percentile(lat_f, 50) * 1000, percentile(lat_d, 50) * 1000
            p99f, p99d = percentile(lat_f, 99) * 1000, percentile(lat_d, 99) * 1000
            print(f"GET /orders/{{id}} {label}:")
            print(f"  front door : {rps_f:7.0f} req/s  p50 {p50f:.2f} ms  p99 {p99f:.2f} ms")
            print(f"  direct     : {rps_d:7.0f} req/s  p50 {p50d:.2f} ms  p99 {p99d:.2f} ms")
            print(f"  overhead   : p50 +{p50f - p50d:.2f} ms, throughput ratio "
                  f"{rps_f / rps_d:.2f}")


if __name__ == "__main__":
    main()
