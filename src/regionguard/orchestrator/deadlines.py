"""How long each plan step may take, per world: a sandbox promotes in 0.2 s, RDS in minutes.

A step's deadline bounds all its retries; the executor measures it on the world's clock. Each
world's wiring (`build_ports`) picks its deadlines; the planners copy them into every step.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Deadlines:
    """Seconds each step may take, per world: a sandbox promotes in 0.2 s, RDS in minutes.

    A step's deadline bounds all its retries; the executor measures it on the world's clock."""

    scale: float = 10.0
    fence: float = 15.0
    promote: float = 30.0
    await_ready: float = 30.0
    route: float = 10.0
    verify: float = 10.0
    retire: float = 15.0
    cut: float = 5.0
    stop_writes: float = 30.0
    wait_replayed: float = 30.0
    rejoin: float = 180.0
    catch_up: float = 60.0
    restore: float = 60.0  # backup & restore only (AWS: a restore takes tens of minutes)
    # a promote target whose database stays down this long is given up on (nothing restarts a
    # dead standby while the plan holds the lock); None: wait out the deadline (RDS reports an
    # instance mid-promotion as not available)
    promote_target_down: float | None = 2.0


LOCAL_DEADLINES = Deadlines()
# AWS: RDS promotion takes "several minutes or longer, depending on the size of the read
# replica", an instance boots and passes its load balancer's checks in minutes, and `route`
# includes waiting out the old region's write lease. Each is generous: a plan that overruns a
# Lambda's 15 minutes is resumed by the next scheduled run, not restarted.
AWS_DEADLINES = Deadlines(scale=120.0, fence=120.0, promote=1800.0, await_ready=1200.0,
                          route=300.0, verify=300.0, retire=60.0, cut=60.0,
                          stop_writes=300.0, wait_replayed=600.0, rejoin=3600.0,
                          catch_up=1800.0, promote_target_down=None, restore=5400.0)
