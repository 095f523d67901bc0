"""The randomized fault campaign, in sync and in async replication (pilot light): drills,
failovers, RTO p50/p95/max, acknowledged writes, lost acknowledged writes, split brain and
anomalies per mode, for the README's table.

About 8 s per drill on 2 cores (a drill whose new primary also dies waits out its step
deadlines: ~60 s). Run: .venv/bin/python -m benchmarks.campaign [--drills 100 --seed 1]
Reports go to --out (default a temp dir): one folder per mode.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from benchmarks.common import temp_sandbox
from benchmarks.drills import ASYNC
from regionguard.drill.campaign import CampaignSettings, run_campaign
from regionguard.drill.campaign_report import write_reports
from regionguard.worlds.local_target import SandboxTarget


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--drills", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--modes", default="sync,async")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="rg-campaign-"))
    print(f"{args.drills} drills per mode from seed {args.seed}; reports in {out}")
    print(f"{'mode':<7}{'drills':>7}{'failovers':>10}{'RTO p50':>9}{'p95':>7}{'max':>7}"
          f"{'acked':>8}{'lost':>6}{'split':>6}{'anomalies':>10}{'unavail':>8}{'minutes':>8}")
    for mode in args.modes.split(","):
        with temp_sandbox(**(ASYNC if mode == "async" else {})) as (sandbox, config):
            sandbox.up()
            sandbox.start_supervisor(config)
            settings = CampaignSettings(args.drills, args.seed, out / mode, config)
            result = run_campaign(SandboxTarget(sandbox), settings, lambda _: None)
            _, html, data = write_reports(result)
            rto = data["rto_s"]
            print(f"{mode:<7}{data['drills']:>7}{data['failovers']:>10}{rto['p50']:>9}"
                  f"{rto['p95']:>7}{rto['max']:>7}{data['acked_writes']:>8}"
                  f"{data['lost_acked']:>6}{data['split_brain']:>6}"
                  f"{len(data['anomalies']):>10}{len(data['unavailable']):>8}"
                  f"{data['campaign']['duration_s'] / 60:>8.1f}",
                  flush=True)
            if result.stopped_early:
                print(f"  stopped early: {result.stopped_early} (see {html})")


if __name__ == "__main__":
    main()
