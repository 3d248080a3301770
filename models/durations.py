"""Human-friendly durations ("90s", "20m", "2h", "3d") for policy files and the command line."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")


def parse_duration(text: str) -> timedelta:
    """Parse "1h30m", "20m", "45s" or "3d"; raise ValueError with the accepted forms otherwise."""
    compact = text.strip().lower().replace(" ", "")
    parts = _PART.findall(compact)
    if not compact or "".join(n + u for n, u in parts) != compact:
        raise ValueError(f"{text!r} is not a duration; use forms like 45s, 20m, 2h, 3d or 1h30m")
    total = timedelta()
    try:
        for number, unit in parts:
            total += timedelta(**{_UNITS[unit]: float(number)})
    except OverflowError:
        raise ValueError(f"{text!r} is too long a duration") from None
    return total


def format_duration(value: timedelta) -> str:
    """Render a duration the way a person says it: "2h 5m", "30s"."""
    seconds = int(value.total_seconds())
    if seconds == 0:
        return "0s"
    pieces = []
    for label, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        amount, seconds = divmod(seconds, size)
        if amount:
            pieces.append(f"{amount}{label}")
    return " ".join(pieces)


def _coerce(value: Any) -> Any:
    is_iso = isinstance(value, str) and value[:1] in ("P", "p", "-")  # pydantic's own format
    if isinstance(value, str) and value and not is_iso and value[-1].lower() in _UNITS:
        return parse_duration(value)
    return value


Duration = Annotated[timedelta, BeforeValidator(_coerce)]
"""A timedelta that also accepts "20m"-style strings (and ISO 8601 / seconds, as pydantic does)."""
