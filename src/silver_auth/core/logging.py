"""Structured logs with one redaction processor in front of every renderer (G18, G28): JSON lines for
log shippers (production's default), readable lines for a developer's terminal (development's)."""

from __future__ import annotations

import asyncio
import atexit
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


_CLEAN_TEXTS: set[tuple[str, str]] = set()
"""Short (field, text) pairs redact() left as they were, remembered: most fields of most lines repeat
(route, method, actor, address), and a line per request is written. A text redact() changed is never
kept (no secret stays here). Bounded: emptied when full."""
_REMEMBERED_TEXTS = 4096
_REMEMBERED_LENGTH = 100


def _redact_text_field(key: str, value: str) -> str:
    pair = (key, value)
    if pair in _CLEAN_TEXTS:
        return value
    clean: str = redact(value, key)
    if clean == value and len(value) <= _REMEMBERED_LENGTH:
        if len(_CLEAN_TEXTS) >= _REMEMBERED_TEXTS:
            _CLEAN_TEXTS.clear()
        _CLEAN_TEXTS.add(pair)
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


_LOGGED_AT = "_logged_at"
"""When an event rendered later (the access log's) was logged: the timestamp processor uses it."""


class _UtcTimestamp:
    """`timestamp`: ISO 8601 in UTC with microseconds (`2026-12-01T18:37:15.151188Z`), as structlog's
    TimeStamper(fmt="iso", utc=True) writes it, the seconds formatted once per second."""

    def __init__(self) -> None:
        self._second: tuple[int, str] = (-1, "")

    def __call__(self, _: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        now: float = event_dict.pop(_LOGGED_AT, None) or time.time()
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


class _Stderr:
    """structlog's PrintLogger, but writing to whatever `sys.stderr` is when the line is written, not
    when logging was configured: a test's capture (capfd) swaps it between setting up and running the
    test, and a logger keeping the old one would write into a closed file, or to nobody."""

    def msg(self, message: str) -> None:
        stream = sys.stderr
        try:
            stream.write(message + "\n")  # one write: lines of two threads never interleave
            stream.flush()
        except (OSError, ValueError):  # stderr closed (a shutdown, a finished capture): a log line
            pass  # that cannot be written must not stop the task that wrote it (the sealer, a worker)

    log = debug = info = warn = warning = error = err = critical = exception = fatal = failure = msg


def _stderr_logger(*_: Any) -> _Stderr:
    return _Stderr()


class _AccessLog:
    """The access log: one `request` event per request, through the configured processors (redaction
    included) to stderr. In a server (`batched`), the events of one turn of the event loop are rendered
    and written together at its end: a write (a system call) per line cost more than the rest of the
    line, and rendering a turn's events in one go keeps that code warm (docs/performance.md). Outside a
    running loop, past LIMIT events, or when not batched, an event is written at once; at shutdown and
    at exit, whatever waits."""

    LIMIT = 256

    def __init__(self) -> None:
        self.processors: list[structlog.typing.Processor] = []
        self.level = logging.CRITICAL + 1  # nothing until logging is configured
        self.batched = True
        self.waiting: list[tuple[str, dict[str, Any]]] = []
        atexit.register(self.flush)

    def configure(
        self, processors: list[structlog.typing.Processor], level: int, *, batched: bool | None
    ) -> None:
        self.flush()
        self.processors, self.level = processors, level
        if batched is not None:
            self.batched = batched

    def enabled_for(self, level: int) -> bool:
        return level >= self.level

    def write(self, level: int, fields: dict[str, Any]) -> None:
        """One `request` event: `fields` become the event (and are consumed)."""
        fields["event"] = REQUEST_EVENT
        fields[_LOGGED_AT] = time.time()  # stamped when logged, however late it is rendered
        self.waiting.append((_LEVEL_NAMES[level], fields))
        if not self.batched or len(self.waiting) >= self.LIMIT:
            self.flush()
        elif len(self.waiting) == 1:
            try:
                asyncio.get_running_loop().call_soon(self.flush)
            except RuntimeError:  # no loop in this thread: now
                self.flush()

    def flush(self) -> None:
        waiting, self.waiting = self.waiting, []
        lines = [
            line for line in (self._render(name, fields) for name, fields in waiting) if line is not None
        ]
        if lines:
            _Stderr().msg("\n".join(lines))

    def _render(self, name: str, event: Any) -> str | None:
        """The processors are structlog's own list (what changes it, such as structlog.testing's
        capture_logs, changes this too); a processor may drop the event, as structlog lets it."""
        try:
            for processor in self.processors:
                event = processor(None, name, event)
        except structlog.DropEvent:
            return None
        return str(event)


_LEVEL_NAMES = {logging.INFO: "info", logging.WARNING: "warning", logging.ERROR: "error"}
_ACCESS = _AccessLog()


def flush_access_log() -> None:
    """Write the access-log events still waiting for the end of the loop's turn (at shutdown)."""
    _ACCESS.flush()


def access_log() -> _AccessLog:
    return _ACCESS


def configure_logging(
    level: str = "INFO", log_format: Literal["json", "console"] = "json", *, batched: bool | None = None
) -> None:
    """`batched`: the access log writes a loop turn's lines at its end (a server's default), or each
    at once (tests, which read the output right after a request); None keeps the current choice."""
    threshold = logging.getLevelName(level.upper())
    logging.basicConfig(format="%(message)s", stream=sys.stderr, level=threshold)
    for chatty in ("httpx", "httpcore"):  # a line per webhook or alert sent, with its full URL (G28)
        logging.getLogger(chatty).setLevel(max(logging.WARNING, threshold))
    # No merge_contextvars: nothing binds structlog's context variables, and it walks every context
    # variable of the task on every line. The request id has a variable and a processor of its own.
    processors: list[structlog.typing.Processor] = [
        _add_request_id,
        structlog.processors.add_log_level,
        _UtcTimestamp(),
        _redact_event,
        _render_json if log_format == "json" else _console_renderer(),
    ]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(threshold),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=True,
    )
    _ACCESS.configure(processors, threshold, batched=batched)


def quiet_apprise() -> None:
    """apprise logs through `logging`, past the redaction processor, and its lines can name a channel's
    URL with its token (G28): they go nowhere. apprise's per-call capture still sees them, which is
    where the alert channels read a failure's reason (scrubbed)."""
    logger = logging.getLogger("apprise")
    logger.propagate = False
    if not any(isinstance(handler, logging.NullHandler) for handler in logger.handlers):
        logger.addHandler(logging.NullHandler())  # else logging's last-resort handler prints warnings
