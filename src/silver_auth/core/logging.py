"""Structured logs with one redaction processor in front of every renderer (G18, G28): JSON lines for
log shippers (production's default), readable lines for a developer's terminal (development's)."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import MutableMapping
from contextvars import ContextVar
from typing import Any, Literal

import msgspec
import structlog

from silver_auth.core.redaction import redact

REQUEST_EVENT = "request"
"""The access log's one event per request (web.access_log)."""
_UNREDACTED = frozenset({"event", "level", "timestamp"})
REQUEST_ID: ContextVar[str | None] = ContextVar("silver_auth.request_id", default=None)
"""The request id of the request being served (web.access_log sets it): on every line it logs."""


def _add_request_id(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    request_id = REQUEST_ID.get()
    if request_id is not None:
        event_dict.setdefault("request_id", request_id)
    return event_dict


_PLAIN = frozenset({int, float, bool, type(None)})
"""Values redact() returns as they are, under any key: skipped without a call (a line per request)."""


_REDACTED_TEXTS: dict[tuple[str, str], str] = {}
"""redact() of short texts by field, remembered: most fields of most lines repeat (route, method, actor,
address), and a line per request is written. Bounded: emptied when full."""
_REMEMBERED_TEXTS = 4096
_REMEMBERED_LENGTH = 100


def _redact_text_field(key: str, value: str) -> str:
    pair = (key, value)
    clean: str | None = _REDACTED_TEXTS.get(pair)
    if clean is None:
        clean = redact(value, key)
        if len(value) <= _REMEMBERED_LENGTH:
            if len(_REDACTED_TEXTS) >= _REMEMBERED_TEXTS:
                _REDACTED_TEXTS.clear()
            _REDACTED_TEXTS[pair] = clean
    return clean


def _redact_event(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    clean = {}
    for key, value in event_dict.items():
        kind = type(value)
        if key in _UNREDACTED or kind in _PLAIN:
            clean[key] = value
        elif kind is str:
            clean[key] = _redact_text_field(key, value)
        else:
            clean[key] = redact(value, key)
    return clean


class _UtcTimestamp:
    """`timestamp`: ISO 8601 in UTC with microseconds (`2026-12-01T18:37:15.151188Z`), as structlog's
    TimeStamper(fmt="iso", utc=True) writes it, the seconds formatted once per second."""

    def __init__(self) -> None:
        self._second: tuple[int, str] = (-1, "")

    def __call__(self, _: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        now = time.time()
        second, formatted = self._second
        if int(now) != second:
            second = int(now)
            formatted = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = (second, formatted)  # one assignment: a thread never reads half of it
        event_dict["timestamp"] = f"{formatted}.{min(int((now - second) * 1e6), 999_999):06d}Z"
        return event_dict


_json = msgspec.json.Encoder(enc_hook=str)


def _render_json(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> str:
    """One JSON object a line; msgspec for speed (one line per request), `str()` for anything it does not
    know."""
    return _json.encode(event_dict).decode()


def _console_renderer() -> structlog.typing.Processor:
    """The access log as one short line (`GET /v1/backend/project 200 1.2ms req=… ip=… actor=…`), every
    other event as structlog's key=value line."""
    others = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())

    def render(logger: Any, name: str, event_dict: MutableMapping[str, Any]) -> str:
        if event_dict.get("event") != REQUEST_EVENT:
            return str(others(logger, name, event_dict))
        line = (
            f"{event_dict.get('timestamp', '')} {event_dict.get('method')} {event_dict.get('route')} "
            f"{event_dict.get('status')} {event_dict.get('duration_ms')}ms "
            f"req={event_dict.get('request_id')} ip={event_dict.get('client_ip') or '-'} "
            f"actor={event_dict.get('actor') or '-'}"
        )
        rest = {
            key: value for key, value in event_dict.items() if key not in _ACCESS_FIELDS and value is not None
        }
        return line + "".join(f" {key}={value}" for key, value in rest.items())

    return render


_ACCESS_FIELDS = frozenset(
    {"event", "level", "timestamp", "logger", "method", "route", "status", "duration_ms"}
    | {"request_id", "client_ip", "actor"}
)


_access: structlog.typing.FilteringBoundLogger = structlog.get_logger("silver_auth.access")


def access_logger() -> structlog.typing.FilteringBoundLogger:
    """The access log's logger, as the last configure_logging made it (not cached before it: tests
    configure logging again for each app they serve)."""
    return _access


def configure_logging(level: str = "INFO", log_format: Literal["json", "console"] = "json") -> None:
    global _access  # noqa: PLW0603 - the one logger rebuilt on every configuration
    logging.basicConfig(format="%(message)s", stream=sys.stderr, level=level.upper())
    for chatty in ("httpx", "httpcore"):  # a line per webhook or alert sent, with its full URL (G28)
        logging.getLogger(chatty).setLevel(max(logging.WARNING, logging.getLevelName(level.upper())))
    renderer = _render_json if log_format == "json" else _console_renderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            _add_request_id,
            structlog.processors.add_log_level,
            _UtcTimestamp(),
            _redact_event,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    _access = structlog.get_logger("silver_auth.access").bind()
