"""The journal's vocabulary: every event name and outcome the engine writes, as enums.

The journal is the audit trail a person reads after a failover and the only source of the RTO
breakdown, the metrics and the reports, so its words are a contract: a typo in an event name
would silently drop a line from every reader. Both enums are `StrEnum`s, so the JSON lines are
the same strings as before and a reader may compare with either.
"""

from __future__ import annotations

from enum import StrEnum


class Event(StrEnum):
    # plans and their steps
    PLAN = "plan"  # outcome: started, resumed, done, failed, interrupted, superseded
    STEP = "step"  # outcome: started, done, failed, unfinished
    OBSERVATION = "observation"  # what a plan was built from
    VERDICT = "verdict"  # the DOWN verdict behind an automatic plan
    RPO_WARNING = "rpo_warning"  # what a plan accepts knowingly
    REASSERT = "reassert"  # a resumed plan re-asserts promote / scale
    ROLLBACK = "rollback"  # a planned swap gives writes back to its source
    UNFINISHED_RETRY = "unfinished_retry"  # a best-effort step done once its region is back
    DEADLINE_EXCEEDED = "deadline_exceeded"
    LEASE_WAIT = "lease_wait"  # waiting out the old writer's lease
    UNFENCED = "unfenced"  # what the fence could not do
    FENCE_PART_FAILED = "fence_part_failed"
    FORCED_PROMOTE = "forced_promote"  # promoted over an unfenced primary, by --force
    HANDOVER = "handover"  # the write lease handed to the target while it promotes (AWS)
    SYNC_CONFIRMED = "sync_confirmed"  # the standby confirmed sync; the degrade record went
    REPORT = "report"  # an execution report could not be written
    UNGRACEFUL = "ungraceful"  # who asked for an ungraceful switchover
    # detection and the automatic loop
    VERDICT_CHANGE = "verdict_change"
    OBSERVATION_REJECTED = "observation_rejected"  # a report from the future
    ALERT = "alert"
    DEGRADE_SYNC = "degrade_sync"
    RESTORE_SYNC = "restore_sync"
    SYNC_CHANGE_FAILED = "sync_change_failed"
    HELD_BACK = "held_back"  # anti-flap
    APPROVAL = "approval"  # outcome: requested, approved, rejected, expired, withdrawn
    READINESS = "readiness"
    # drills
    DRILL = "drill"
    CAMPAIGN = "campaign"
    FAULT = "fault"


class Outcome(StrEnum):
    STARTED = "started"
    RESUMED = "resumed"
    DONE = "done"
    FAILED = "failed"
    INTERRUPTED = "interrupted"  # past promote: the next drive resumes it
    SUPERSEDED = "superseded"  # another runner or plan owns the record now
    UNFINISHED = "unfinished"  # a best-effort step that could not be done
    REFUSED = "refused"
