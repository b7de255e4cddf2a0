"""Every check area, each answering for its own guide lines (its module's LINES)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from types import ModuleType

from silver_auth.ops.doctor.checks import (
    alerts,
    backups,
    config,
    docs,
    edge,
    files,
    identity,
    limiter,
    plans,
    sockets,
    steps,
    webhooks,
)
from silver_auth.ops.doctor.context import Doctor
from silver_auth.ops.doctor.report import Finding

AREAS: tuple[ModuleType, ...] = (
    config,
    files,
    sockets,
    edge,
    identity,
    webhooks,
    limiter,
    backups,
    alerts,
    plans,
    docs,
    steps,
)


def area_check(area: ModuleType) -> Callable[[Doctor], Awaitable[list[Finding]]]:
    checker: Callable[[Doctor], Awaitable[list[Finding]]] = area.check
    return checker


def area_lines(area: ModuleType) -> tuple[str, ...]:
    lines: tuple[str, ...] = area.LINES
    return lines
