"""Structured JSON logs with one redaction processor in front of every renderer (G18, G28)."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from silver_auth.core.redaction import redact


def _redact_event(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    return {
        key: redact(value, key) if key not in ("event", "level", "timestamp") else value
        for key, value in event_dict.items()
    }


def configure_logging(level: str = "INFO") -> None:
    logging.basicConfig(format="%(message)s", stream=sys.stderr, level=level.upper())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redact_event,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )


def quiet_apprise() -> None:
    """apprise logs through `logging`, past the redaction processor, and its lines can name a channel's
    URL with its token (G28): they go nowhere. apprise's per-call capture still sees them, which is
    where the alert channels read a failure's reason (scrubbed)."""
    logger = logging.getLogger("apprise")
    logger.propagate = False
    if not any(isinstance(handler, logging.NullHandler) for handler in logger.handlers):
        logger.addHandler(logging.NullHandler())  # else logging's last-resort handler prints warnings
