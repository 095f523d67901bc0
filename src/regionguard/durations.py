"""Durations as people write them ("500ms", "30s", "2m", "12h", "7d", or plain seconds).

One parser for the topology file (`readiness.max_drill_age`, the arbiter's and the health
policy's durations), so every field accepts the same spellings. It imports nothing of regionguard:
the config models and the CLI both import it without a cycle. It raises `ValueError` without
naming the option or field; each caller prefixes its own, so the error stays one line that
says where the bad value came from.
"""

from __future__ import annotations

import re

_DURATION = re.compile(r"^(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h|d)?$")
_SECONDS_PER_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86_400.0, None: 1.0}


def parse_duration(text: str) -> float:
    """Seconds in `text`; raises ValueError saying what is wrong with it. Ranges (positive,
    at most a day) are each caller's rule for its own option or field, not the parser's."""
    match = _DURATION.match(text.strip().lower())
    if match is None:
        raise ValueError(f"{text!r} is not a duration; use e.g. 500ms, 30s, 2m, 12h, 7d or a "
                         "number of seconds")
    return float(match.group(1)) * _SECONDS_PER_UNIT[match.group(2)]
