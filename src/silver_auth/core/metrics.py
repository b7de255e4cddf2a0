"""Every Prometheus metric of the service, in one registry of its own, and the loopback listener that
serves them (G5: never on the API's port, never behind Caddy).

Labels stay bounded: routes are templates (`/v1/backend/users/{user_id:str}`, `unmatched` when nothing
matched), never raw paths; key prefixes are the short display prefix of a key, never the key.

Several server processes (SILVER_WORKERS > 1) share one listener through prometheus-client's multiprocess
mode: `silver-auth serve` points PROMETHEUS_MULTIPROC_DIR at a fresh directory before the workers start,
each worker writes its values there, and the serving process (not a worker) exposes their sum.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import accumulate
from wsgiref.simple_server import WSGIServer

import structlog
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
    start_http_server,
    values,
)
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from silver_auth.settings import Settings

# No `_created` series beside every counter: twice the series for nothing.
disable_created_metrics()  # type: ignore[no-untyped-call]
REGISTRY = CollectorRegistry(auto_describe=True)
"""The service's metrics only: nothing another library registers on prometheus-client's global one."""
ProcessCollector(registry=REGISTRY)  # CPU, memory, open files of this process (one-process mode)
GCCollector(registry=REGISTRY)

UNMATCHED = "unmatched"
"""The route label of a request no route matched (404): raw paths would be unbounded."""
NO_KEY = "none"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Seconds. The hot routes answer in well under a millisecond, sign-ins take a tenth of a second."""

REQUESTS_NAME, REQUESTS_HELP = (
    "silver_http_requests",
    "HTTP requests answered, by route template, method and status.",
)
DURATION_NAME, DURATION_HELP = (
    "silver_http_request_duration_seconds",
    "Time from a request's arrival to the end of its answer, by route template.",
)


class _RequestMetrics(Collector):
    """The two request metrics, counted in plain Python on the request path and made into metric
    families when scraped: prometheus-client's own counter and histogram (a lock per increment, a loop
    over the buckets) cost as much as the rest of the request's observation put together, on a path
    that answers in tens of microseconds (docs/performance.md). Only the event loop's thread writes;
    a scrape (the listener's thread) reads copies."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str, int], int] = {}
        self.durations: dict[str, list[float]] = {}
        """Per route: a count per bucket (the last one +Inf, not cumulative), then the sum."""

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        self.requests[key] = self.requests.get(key, 0) + 1
        histogram = self.durations.get(route)
        if histogram is None:
            histogram = self.durations[route] = [0] * (len(LATENCY_BUCKETS) + 1) + [0.0]
        histogram[bisect_left(LATENCY_BUCKETS, seconds)] += 1  # the first bound >= seconds: `le`
        histogram[-1] += seconds

    def describe(self) -> Iterator[Metric]:
        yield CounterMetricFamily(REQUESTS_NAME, REQUESTS_HELP, labels=("route", "method", "status"))
        yield HistogramMetricFamily(DURATION_NAME, DURATION_HELP, labels=("route",))

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(REQUESTS_NAME, REQUESTS_HELP, labels=("route", "method", "status"))
        for (route, method, status), count in list(self.requests.items()):
            requests.add_metric((route, method, str(status)), count)
        yield requests
        durations = HistogramMetricFamily(DURATION_NAME, DURATION_HELP, labels=("route",))
        for route, histogram in list(self.durations.items()):
            counts = list(histogram)
            cumulative = list(accumulate(counts[:-1]))
            buckets = [(_BOUNDS[i], cumulative[i]) for i in range(len(_BOUNDS))]
            durations.add_metric((route,), buckets, sum_value=counts[-1])
        yield durations


_BOUNDS = [*(floatToGoString(bound) for bound in LATENCY_BUCKETS), "+Inf"]  # type: ignore[no-untyped-call]
MULTIPROCESS = values.ValueClass is not values.MutexValue
"""prometheus-client's own choice, made at its import from PROMETHEUS_MULTIPROC_DIR: the workers of
`silver-auth serve` write their values to files the serving process sums. There the request metrics
are prometheus-client's objects, whose values go to those files."""
_REQUEST_METRICS = _RequestMetrics()
HTTP_REQUESTS = Counter(
    REQUESTS_NAME,
    REQUESTS_HELP,
    ("route", "method", "status"),
    registry=REGISTRY if MULTIPROCESS else None,
)
HTTP_DURATION = Histogram(
    DURATION_NAME,
    DURATION_HELP,
    ("route",),
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY if MULTIPROCESS else None,
)
if not MULTIPROCESS:
    REGISTRY.register(_REQUEST_METRICS)
_children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}


def _record_in_files(route: str, method: str, status: int, seconds: float) -> None:
    key = (route, method, status)
    children = _children.get(key)
    if children is None:
        children = _children[key] = (
            HTTP_REQUESTS.labels(route, method, str(status)),
            HTTP_DURATION.labels(route),
        )
    children[0].inc()
    children[1].observe(seconds)


_record = _record_in_files if MULTIPROCESS else _REQUEST_METRICS.observe


def record_request(route: str, method: str, status: int, seconds: float) -> None:
    """One answered request (web.access_log): `route` a template or UNMATCHED, never a raw path."""
    _record(route, method if method in METHODS else "OTHER", status, seconds)


RATE_LIMITED = Counter(
    "silver_rate_limited",
    "Requests refused with 429 by the app limiter, by policy and key prefix (G37, G38).",
    ("policy", "key_prefix"),
    registry=REGISTRY,
)
THROTTLE_REFUSALS = Counter(
    "silver_throttle_refusals",
    "Attempts refused by the failure throttle (sign-in, MFA, sign-up), by the exhausted limit's scope.",
    ("scope",),
    registry=REGISTRY,
)
WEBHOOK_ATTEMPTS = Counter(
    "silver_webhook_attempts",
    "Webhook delivery attempts recorded, by outcome (succeeded, http_error, timeout, …) (G34).",
    ("outcome",),
    registry=REGISTRY,
)
# Gauges read from the database by the delivery worker's watch: every process sees the same rows, so
# across processes the most recent reading is the answer.
WEBHOOK_BACKLOG = Gauge(
    "silver_webhook_backlog",
    "Pending webhook deliveries, first attempts and retries (G34).",
    registry=REGISTRY,
    multiprocess_mode="mostrecent",
)
WEBHOOK_RETRYING = Gauge(
    "silver_webhook_retrying",
    "Pending webhook deliveries that have failed at least once (G34).",
    registry=REGISTRY,
    multiprocess_mode="mostrecent",
)
WEBHOOK_OLDEST_PENDING = Gauge(
    "silver_webhook_oldest_pending_seconds",
    "Age of the oldest pending webhook delivery; 0 when none waits (G34).",
    registry=REGISTRY,
    multiprocess_mode="mostrecent",
)
SESSIONS_CREATED = Counter(
    "silver_sessions_created",
    "Sessions started, by kind (console, end_user).",
    ("kind",),
    registry=REGISTRY,
)
SESSIONS_REVOKED = Counter(
    "silver_sessions_revoked",
    "Sessions ended before their expiry, by kind and reason (G29).",
    ("kind", "reason"),
    registry=REGISTRY,
)
ALERT_DELIVERIES = Counter(
    "silver_alert_deliveries",
    "Alert deliveries to the configured channels, by outcome (L2).",
    ("outcome",),
    registry=REGISTRY,
)

METRIC_NAMES = frozenset(
    name
    for metric in (
        _REQUEST_METRICS,
        RATE_LIMITED,
        THROTTLE_REFUSALS,
        WEBHOOK_ATTEMPTS,
        WEBHOOK_BACKLOG,
        WEBHOOK_RETRYING,
        WEBHOOK_OLDEST_PENDING,
        SESSIONS_CREATED,
        SESSIONS_REVOKED,
        ALERT_DELIVERIES,
    )
    for name in (family.name for family in metric.describe())
)
"""The service's own metric families (without `_total`, `_bucket`… sample suffixes)."""


def count_rate_limited(policy: str, key_prefix: str | None) -> None:
    """A 429 from the app limiter. `key_prefix`: the key's display prefix (never the key), or None for a
    caller without a key."""
    RATE_LIMITED.labels(policy, key_prefix or NO_KEY).inc()


def count_throttle_refusal(scope: str) -> None:
    THROTTLE_REFUSALS.labels(scope).inc()


def count_webhook_attempt(outcome: str) -> None:
    WEBHOOK_ATTEMPTS.labels(outcome).inc()


def set_webhook_backlog(backlog: int, retrying: int, oldest_pending_seconds: float) -> None:
    WEBHOOK_BACKLOG.set(backlog)
    WEBHOOK_RETRYING.set(retrying)
    WEBHOOK_OLDEST_PENDING.set(oldest_pending_seconds)


def count_session_created(kind: str) -> None:
    SESSIONS_CREATED.labels(kind).inc()


def count_sessions_revoked(kind: str, reason: str, count: int = 1) -> None:
    if count > 0:
        SESSIONS_REVOKED.labels(kind, reason).inc(count)


def count_alert_delivery(outcome: str) -> None:
    """One alert sent to one channel: `sent` or `failed`, as alerts/ records the delivery (L2)."""
    ALERT_DELIVERIES.labels(outcome).inc()


def exposed_registry(settings: Settings) -> CollectorRegistry:
    """What the listener serves: this process's registry, or in multiprocess mode the sum over the
    workers' files."""
    if settings.prometheus_multiproc_dir is None:
        return REGISTRY
    combined = CollectorRegistry()
    multiprocess.MultiProcessCollector(combined, path=str(settings.prometheus_multiproc_dir))  # type: ignore[no-untyped-call]
    return combined


def exposition(settings: Settings) -> bytes:
    """The Prometheus text exposition the listener serves."""
    return generate_latest(exposed_registry(settings))


def log() -> structlog.typing.FilteringBoundLogger:
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger("silver_auth.metrics")
    return logger


@contextmanager
def metrics_listener(settings: Settings, *, process: str) -> Iterator[WSGIServer | None]:
    """Serve the metrics on SILVER_METRICS_HOST:SILVER_METRICS_PORT while the block runs (a thread of its
    own). Off when the port is 0. A port that cannot be bound is logged, not fatal: the service itself
    must keep answering."""
    if not settings.metrics_enabled:
        yield None
        return
    try:
        server, thread = start_http_server(
            settings.metrics_port, addr=settings.metrics_host, registry=exposed_registry(settings)
        )
    except OSError as exc:
        log().error(
            "metrics_listener_failed",
            host=settings.metrics_host,
            port=settings.metrics_port,
            process=process,
            error=str(exc),
        )
        yield None
        return
    log().info(
        "metrics_listener_started", host=settings.metrics_host, port=server.server_port, process=process
    )
    try:
        yield server
    finally:
        _stop(server, thread)


def _stop(server: WSGIServer, thread: threading.Thread) -> None:
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)
