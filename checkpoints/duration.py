"""`parse_duration("30d")`: the `--older-than` argument of `godwit checkpoints --prune`."""

from __future__ import annotations

import re
from datetime import timedelta

from .errors import InvalidDuration

_UNITS = {
    "s": "seconds",
    "sec": "seconds",
    "second": "seconds",
    "seconds": "seconds",
    "m": "minutes",
    "min": "minutes",
    "minute": "minutes",
    "minutes": "minutes",
    "h": "hours",
    "hour": "hours",
    "hours": "hours",
    "d": "days",
    "day": "days",
    "days": "days",
    "w": "weeks",
    "week": "weeks",
    "weeks": "weeks",
}
_PART = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]+)\s*")


def parse_duration(text: str) -> timedelta:
    """Read "30d", "12h", "90m", "45s", "2w" or a sum such as "1d12h" into a timedelta."""
    s = text.strip()
    if not s:
        raise InvalidDuration(f"empty duration {text!r}")
    total = timedelta()
    pos = 0
    while pos < len(s):
        m = _PART.match(s, pos)
        if not m or m.group(2).lower() not in _UNITS:
            raise InvalidDuration(
                f"cannot read duration {text!r}: use a number and a unit, "
                "e.g. 30d, 12h, 90m, 45s, 2w"
            )
        total += timedelta(**{_UNITS[m.group(2).lower()]: float(m.group(1))})
        pos = m.end()
    return total
