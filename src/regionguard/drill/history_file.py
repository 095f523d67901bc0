"""One drill's history on disk: the client's requests, the rows they left, the fences, the
timelines. The lab's drills write one per drill (lab/drill.py); the checker reads it back to
judge it again, or with an anomaly injected (tests/anomalies.py)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from regionguard.drill import history
from regionguard.drill.load import Request


@dataclass
class DrillHistory:
    """Everything the checker reads for one drill; a history file holds exactly this."""

    requests: list[Request]
    rows: list[history.Row] | None  # None: the database could not be read
    fences: list[history.Fence]
    loss_allowed_from: list[str]
    timelines: history.Timelines | None = None  # the surviving primary's (property 6)
    sync: bool = False
    discarded: list[str] = field(default_factory=list)  # an old primary's, before its rewind

    def check(self) -> history.Verdict:
        return history.check(self.requests, self.rows, self.fences, self.loss_allowed_from,
                             self.timelines, self.sync, self.discarded)


def write_history(path: Path, h: DrillHistory) -> None:
    """One JSON object per line: the drill's whole client history, the rows it left, the
    journal's fences: what an anomaly's excerpt came from, and enough to re-check it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        f.write(json.dumps({"type": "meta", "loss_allowed_from": h.loss_allowed_from,
                            "rows_read": h.rows is not None, "sync": h.sync,
                            "discarded": h.discarded}) + "\n")
        if h.timelines is not None:
            f.write(json.dumps({"type": "timelines", **asdict(h.timelines)}) + "\n")
        for fence in h.fences:
            f.write(json.dumps({"type": "fence", **asdict(fence)}) + "\n")
        for r in h.requests:
            f.write(json.dumps({"type": "request", **history.entry(r)}) + "\n")
        for row in h.rows or []:
            f.write(json.dumps({"type": "row", **asdict(row)}) + "\n")


def read_history(path: Path) -> DrillHistory:
    """A history file back (to re-check it, or to inject an anomaly into it)."""
    h = DrillHistory([], [], [], [])
    rows: list[history.Row] = []
    rows_read = True
    for line in path.read_text().splitlines():
        item = json.loads(line)
        kind = item.pop("type")
        if kind == "meta":
            h.loss_allowed_from = list(item["loss_allowed_from"])
            rows_read = bool(item.get("rows_read", True))
            h.sync = bool(item.get("sync", False))
            h.discarded = list(item.get("discarded", []))
        elif kind == "timelines":
            h.timelines = history.Timelines(
                int(item["current"]), {int(k): v for k, v in item["switched_at"].items()},
                item.get("region"))
        elif kind == "fence":
            h.fences.append(history.Fence(**item))
        elif kind == "row":
            rows.append(history.Row(**item))
        else:
            item.pop("end_ns", None)
            h.requests.append(Request(**item))
    h.rows = rows if rows_read else None
    return h
