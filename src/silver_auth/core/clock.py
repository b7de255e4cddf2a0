"""One clock for the whole service, so tests can move time instead of sleeping."""

from __future__ import annotations

import time
from datetime import UTC, datetime

_offset = 0.0


def monotonic() -> float:
    return time.monotonic() + _offset


def now() -> datetime:
    return datetime.fromtimestamp(time.time() + _offset, tz=UTC)


def advance(seconds: float) -> None:
    """Move the service clock forward (tests only: expiry, grace periods, cache bounds)."""
    global _offset  # noqa: PLW0603 - a process-wide clock is the point
    _offset += seconds


def reset() -> None:
    global _offset  # noqa: PLW0603
    _offset = 0.0
