"""The one alert path. Until alert channels land, an alert is a structured log event (`alert` at warning,
`alert_cleared` at info) that log shipping routes to the on-call channel; each is raised once per
subject until it clears, and never carries a secret (its fields are redacted)."""

from __future__ import annotations

from typing import Any

import structlog

from silver_auth.core.redaction import redact

_raised: dict[tuple[str, str], dict[str, Any]] = {}
"""Alerts standing in this process, by (kind, subject)."""


def _log() -> structlog.typing.FilteringBoundLogger:
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger("silver_auth.alerts")
    return logger


def raise_alert(kind: str, subject: str, message: str, **context: Any) -> bool:
    """Raise `kind` for `subject` (an endpoint id, a key prefix) unless it stands; True if raised now."""
    if (kind, subject) in _raised:
        return False
    fields = redact(context)
    _raised[(kind, subject)] = fields
    _log().warning("alert", kind=kind, subject=subject, message=message, **fields)
    return True


def clear_alert(kind: str, subject: str, message: str) -> bool:
    """The condition is over; True if an alert stood."""
    if _raised.pop((kind, subject), None) is None:
        return False
    _log().info("alert_cleared", kind=kind, subject=subject, message=message)
    return True


def standing() -> list[dict[str, Any]]:
    """The alerts raised and not cleared in this process."""
    return [{"kind": kind, "subject": subject, **fields} for (kind, subject), fields in _raised.items()]
