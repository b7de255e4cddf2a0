"""The delivery worker: claims due deliveries, signs and sends them, records every attempt, retries on the
configured schedule, and disables receivers that are gone (410) or keep failing.

At least once: a claim only moves a delivery's due time past a lease, which the worker renews while the
delivery waits in its queue; a worker that dies lets its claims come due again. On Postgres claims use
FOR UPDATE SKIP LOCKED, so workers on several machines never claim the same delivery; SQLite runs one.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx
import structlog
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from silver_auth import __version__
from silver_auth.alerts.service import clear_alert, raise_alert
from silver_auth.audit.service import Actor, AuditAction
from silver_auth.core import clock
from silver_auth.core.crypto import Sealer, SealError
from silver_auth.core.errors import WebhookUrlRefused
from silver_auth.core.ids import new_id
from silver_auth.core.metrics import count_webhook_attempt
from silver_auth.core.redaction import redact_text
from silver_auth.db.engine import create_engine, create_sessionmaker
from silver_auth.db.session import transaction, write_lock
from silver_auth.db.wakeup import first_of
from silver_auth.projects.service import org_of_project
from silver_auth.settings import Settings
from silver_auth.webhooks.dispatch import sequence_batch
from silver_auth.webhooks.metrics import watch
from silver_auth.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent
from silver_auth.webhooks.outbox import worker_wakers
from silver_auth.webhooks.service import record_endpoint_event, secret_context
from silver_auth.webhooks.signer import headers as signature_headers
from silver_auth.webhooks.targets import Resolver, checked_addresses, parse_target, system_resolver

SYSTEM = Actor("system")
USER_AGENT = f"SEQN-Auth-Webhooks/{__version__}"
EXCERPT_CHARS = 300
CLAIM_BATCH = 200
PER_ENDPOINT_QUEUE = 100
"""Deliveries one worker holds for one endpoint at a time: a slow receiver ties up no more than this."""
IDLE_POLL = 1.0
EXTERNAL_POLL = 0.25
"""The poll of a worker in its own process, which no commit wakes: a new event waits at most this long."""
"""Seconds between looks for due retries when nothing wakes the worker."""
GATHER = 0.05
"""Seconds a busy worker lets finished sends gather before it records them and claims more: one
transaction for a batch of attempts, not one per delivery. Unrecorded sends are at-least-once safe:
their claims still hold, and a worker that dies before recording them sends them again."""
WATCH_EVERY = 60.0
STOP_TIMEOUT = 5.0
"""Seconds a stopping worker waits for sends in flight; what is left comes due after its lease."""


def log() -> structlog.typing.FilteringBoundLogger:
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger("silver_auth.webhooks")
    return logger


@dataclass(slots=True)
class Claimed:
    delivery_id: str
    event_id: str
    endpoint_id: str
    project_id: str
    environment: str
    url: str
    attempts: int
    body: str
    secrets: list[str]


@dataclass(slots=True)
class Outcome:
    claimed: Claimed
    at: datetime
    outcome: str
    """`succeeded`, `http_error`, `gone`, `timeout`, `network_error`, `refused_address`, `released`."""
    status_code: int | None = None
    duration_ms: int = 0
    error_class: str | None = None
    excerpt: str | None = None


@dataclass(slots=True)
class _State:
    outstanding: dict[str, Claimed] = field(default_factory=dict)
    """Claimed and not yet recorded, by delivery id."""
    per_endpoint: defaultdict[str, int] = field(default_factory=lambda: defaultdict(int))
    finished: list[Outcome] = field(default_factory=list)
    gone: set[str] = field(default_factory=set)
    """Endpoints disabled while their deliveries were queued here: the rest are released unsent."""


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return redact_text(lines[0])[:200] if lines else ""


class DeliveryWorker:
    """One worker: `run_forever()` in the app or `silver-auth worker`; `run_until_idle()` for one pass."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        sealer: Sealer,
        settings: Settings,
        *,
        resolver: Resolver = system_resolver,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.sessionmaker, self.sealer, self.settings = sessionmaker, sealer, settings
        self.resolver = resolver
        self.schedule = settings.webhook_retry_schedule
        self.lease = timedelta(seconds=settings.webhook_lease_seconds)
        self._transport = transport
        self._timeouts = httpx.Timeout(settings.webhook_timeout_seconds).as_dict()
        self._state = _State()
        self._finished = asyncio.Event()
        self._global = asyncio.Semaphore(settings.webhook_worker_concurrency)
        self._endpoint_slots: defaultdict[str, asyncio.Semaphore] = defaultdict(
            lambda: asyncio.Semaphore(settings.webhook_endpoint_concurrency)
        )
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()
        self._last_renewal = time.monotonic()
        self._last_watch = 0.0

    # --- sequencing and claiming --------------------------------------------------------------------

    async def sequence(self) -> int:
        total = 0
        while True:
            async with transaction(self.sessionmaker) as db:
                count = await sequence_batch(db, first_delay=self.schedule[0])
            total += count
            if count == 0:
                return total

    async def _claim(self) -> list[Claimed]:
        room = 4 * self.settings.webhook_worker_concurrency - len(self._state.outstanding)
        if room <= 0:
            return []
        busy = [e for e, n in self._state.per_endpoint.items() if n >= PER_ENDPOINT_QUEUE]
        now = clock.now()
        async with transaction(self.sessionmaker) as db:
            due = (
                select(WebhookDelivery.id)
                .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
                .where(
                    WebhookDelivery.status == "pending",
                    WebhookDelivery.next_attempt_at <= now,
                    WebhookEndpoint.enabled.is_(True),
                )
            )
            if busy:
                due = due.where(WebhookDelivery.endpoint_id.not_in(busy))
            if await db.scalar(due.limit(1)) is None:  # nothing due: no lock taken
                return []
            postgres = db.get_bind().dialect.name == "postgresql"
            if not postgres:
                await write_lock(db)
            query = due.order_by(WebhookDelivery.position).limit(min(room, CLAIM_BATCH))
            if postgres:
                query = query.with_for_update(of=WebhookDelivery, skip_locked=True)
            ids = list((await db.scalars(query)).all())
            if not ids:
                return []
            await db.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id.in_(ids))
                .values(next_attempt_at=now + self.lease)
            )
            rows = (
                await db.execute(
                    select(WebhookDelivery, WebhookEvent.payload, WebhookEndpoint)
                    .join(WebhookEvent, WebhookEvent.id == WebhookDelivery.event_id)
                    .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
                    .where(WebhookDelivery.id.in_(ids))
                    .order_by(WebhookDelivery.position)
                )
            ).all()
        claimed: list[Claimed] = []
        for delivery, payload, endpoint in rows:
            try:
                active = self._secrets(endpoint, now)
            except SealError:
                log().error("webhook_secret_unreadable", endpoint_id=endpoint.id)
                active = []
            claimed.append(
                Claimed(
                    delivery_id=delivery.id,
                    event_id=delivery.event_id,
                    endpoint_id=endpoint.id,
                    project_id=endpoint.project_id,
                    environment=endpoint.environment,
                    url=endpoint.url,
                    attempts=delivery.attempts,
                    body=payload,
                    secrets=active,
                )
            )
        return claimed

    def _secrets(self, endpoint: WebhookEndpoint, at: datetime) -> list[str]:
        """The current secret, and the previous one during a rotation's overlap."""
        context = secret_context(endpoint.id)
        found = [self.sealer.unseal(endpoint.secret_sealed, context)]
        if endpoint.previous_secret_sealed and endpoint.previous_until and at < endpoint.previous_until:
            found.append(self.sealer.unseal(endpoint.previous_secret_sealed, context))
        return found

    # --- sending ------------------------------------------------------------------------------------

    def _start(self, client: httpx.AsyncBaseTransport, claimed: Iterable[Claimed]) -> None:
        for item in claimed:
            self._state.outstanding[item.delivery_id] = item
            self._state.per_endpoint[item.endpoint_id] += 1
            task = asyncio.create_task(self._send_in_turn(client, item), name=f"webhook-{item.delivery_id}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _send_in_turn(self, client: httpx.AsyncBaseTransport, item: Claimed) -> None:
        # Semaphores wake waiters first come, first served: with one slot per endpoint, claim order
        # (event position) is send order.
        async with self._endpoint_slots[item.endpoint_id], self._global:
            if item.endpoint_id in self._state.gone:
                outcome = Outcome(item, clock.now(), "released")
            else:
                outcome = await self.send(client, item)
                if outcome.outcome == "gone":  # the rest queued for it here go back unsent
                    self._state.gone.add(item.endpoint_id)
        self._state.finished.append(outcome)
        self._finished.set()

    async def send(self, client: httpx.AsyncBaseTransport, item: Claimed) -> Outcome:
        """One signed POST to the checked address; never follows a redirect."""
        at = clock.now()
        started = time.perf_counter()

        def took() -> int:
            return int((time.perf_counter() - started) * 1000)

        if not item.secrets:
            return Outcome(item, at, "network_error", error_class="SecretUnreadable")
        try:
            target = parse_target(item.url, item.environment)
            addresses = await checked_addresses(target, self.resolver)
        except WebhookUrlRefused as refused:
            return Outcome(
                item,
                at,
                "refused_address",
                duration_ms=took(),
                error_class="RefusedAddress",
                excerpt=refused.detail[:EXCERPT_CHARS],
            )
        url = httpx.URL(item.url)
        request_headers = {
            **signature_headers(item.secrets, item.event_id, at, item.body),
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "host": url.netloc.decode("ascii"),
        }
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        try:
            # One deadline for the whole attempt: httpx's timeouts are per phase and per read, so a
            # receiver dribbling its answer would otherwise hold the slot far longer.
            async with asyncio.timeout(self.settings.webhook_timeout_seconds):
                response, excerpt = await self._post(
                    client, url, addresses, request_headers, extensions, item
                )
        except (TimeoutError, httpx.TimeoutException) as exc:
            return Outcome(item, at, "timeout", duration_ms=took(), error_class=type(exc).__name__)
        except (httpx.HTTPError, OSError) as exc:
            return Outcome(
                item,
                at,
                "network_error",
                duration_ms=took(),
                error_class=type(exc).__name__,
                excerpt=_first_line(exc)[:EXCERPT_CHARS] or None,
            )
        code = response.status_code
        outcome = "succeeded" if 200 <= code < 300 else ("gone" if code == 410 else "http_error")
        return Outcome(item, at, outcome, status_code=code, duration_ms=took(), excerpt=excerpt)

    async def _post(
        self,
        client: httpx.AsyncBaseTransport,
        url: httpx.URL,
        addresses: list[str],
        request_headers: dict[str, str],
        extensions: dict[str, str],
        item: Claimed,
    ) -> tuple[httpx.Response, str | None]:
        """POST to the checked addresses in the resolver's order (G30: never a new lookup), moving to the
        next only when a connection cannot be made, as a browser's happy-eyeballs fallback would."""
        body = item.body.encode()
        for index, address in enumerate(addresses):
            request = httpx.Request(
                "POST",
                url.copy_with(host=address),
                content=body,
                headers=request_headers,
                extensions={**extensions, "timeout": self._timeouts},
            )
            try:
                # The transport itself, not a client: no cookies, auth or redirects to handle (a
                # redirect is an answer like any other non-2xx), and a third less work per delivery.
                response = await client.handle_async_request(request)
            except httpx.ConnectError:
                if index == len(addresses) - 1:
                    raise
                continue
            try:
                return response, await self._excerpt(response)
            finally:
                await response.aclose()
        raise httpx.ConnectError("no address to connect to")

    async def _excerpt(self, response: httpx.Response) -> str | None:
        """The first bytes of the answer, at most the configured cap read, redacted: never the whole body."""
        cap = self.settings.webhook_response_cap_bytes
        read = b""
        async for chunk in response.stream:  # type: ignore[union-attr]
            read += chunk
            if len(read) >= cap:
                break
        text = redact_text(read[:cap].decode("utf-8", "replace"))[:EXCERPT_CHARS].strip()
        return text or None

    # --- recording ----------------------------------------------------------------------------------

    async def flush(self) -> int:
        """Record every finished attempt in one transaction: attempts, delivery states, endpoint health."""
        finished, self._state.finished = self._state.finished, []
        self._finished.clear()
        if not finished:
            return 0
        for outcome in finished:
            item = outcome.claimed
            self._state.outstanding.pop(item.delivery_id, None)
            self._state.per_endpoint[item.endpoint_id] -= 1
            if self._state.per_endpoint[item.endpoint_id] <= 0:
                del self._state.per_endpoint[item.endpoint_id]
        now = clock.now()
        disabled: dict[str, tuple[WebhookEndpoint, str]] = {}
        async with transaction(self.sessionmaker) as db:
            live = set(
                (
                    await db.scalars(
                        select(WebhookDelivery.id).where(
                            WebhookDelivery.id.in_([o.claimed.delivery_id for o in finished])
                        )
                    )
                ).all()
            )
            endpoint_ids = {o.claimed.endpoint_id for o in finished}
            endpoints = {
                e.id: e
                for e in (
                    await db.scalars(select(WebhookEndpoint).where(WebhookEndpoint.id.in_(endpoint_ids)))
                ).all()
            }
            attempts: list[dict[str, object]] = []
            changes: list[dict[str, object]] = []
            for outcome in finished:
                item = outcome.claimed
                if item.delivery_id not in live:  # its endpoint was deleted meanwhile
                    continue
                if outcome.outcome == "released":
                    changes.append({"id": item.delivery_id, "next_attempt_at": now})
                    continue
                attempts.append(_attempt_row(outcome))
                changes.append(_delivery_change(outcome, now, self.schedule))
                endpoint = endpoints.get(item.endpoint_id)
                if endpoint is not None:
                    reason = self._health(endpoint, outcome, now)
                    if reason:
                        disabled.setdefault(endpoint.id, (endpoint, reason))
            if attempts:
                await db.execute(insert(WebhookAttempt), attempts)
            if changes:
                await db.execute(update(WebhookDelivery), changes)
            for endpoint, reason in disabled.values():
                await self._disable(db, endpoint, reason)
        for attempt in attempts:  # recorded: committed with the rows (G34)
            count_webhook_attempt(str(attempt["outcome"]))
        return len(attempts)

    def _health(self, endpoint: WebhookEndpoint, outcome: Outcome, now: datetime) -> str | None:
        """Track the endpoint's run of failures; a reason to disable it, if it must go."""
        if not endpoint.enabled:
            return None
        if outcome.outcome == "succeeded":
            if endpoint.failing_since is not None:
                endpoint.failing_since = None
                clear_alert("webhook_endpoint_failing", endpoint.id, "the endpoint answers again")
            return None
        if outcome.outcome == "gone":
            return "the receiver answered 410 Gone"
        if endpoint.failing_since is None:
            endpoint.failing_since = outcome.at
            return None
        limit = timedelta(hours=self.settings.webhook_disable_after_hours)
        if now - endpoint.failing_since >= limit:
            return f"every attempt failed for {self.settings.webhook_disable_after_hours:g} hours"
        return None

    async def _disable(self, db: AsyncSession, endpoint: WebhookEndpoint, reason: str) -> None:
        endpoint.enabled = False
        endpoint.disabled_reason = reason
        endpoint.updated_at = clock.now()
        self._state.gone.add(endpoint.id)
        await record_endpoint_event(
            db, AuditAction.WEBHOOK_ENDPOINT_DISABLED, endpoint, actor=SYSTEM, metadata={"reason": reason}
        )
        raise_alert(
            "webhook_endpoint_disabled",
            endpoint.id,
            f"webhook endpoint disabled: {reason}; re-enable it once the receiver is fixed, then replay",
            project_id=endpoint.project_id,
            org_id=await org_of_project(db, endpoint.project_id),
        )

    async def renew(self) -> None:
        """Keep the claims of deliveries still waiting in this worker's queues from coming due elsewhere."""
        waiting = list(self._state.outstanding)
        self._last_renewal = time.monotonic()
        if not waiting:
            return
        async with transaction(self.sessionmaker) as db:
            await db.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id.in_(waiting), WebhookDelivery.status == "pending")
                .values(next_attempt_at=clock.now() + self.lease)
            )

    # --- loops --------------------------------------------------------------------------------------

    def client(self) -> httpx.AsyncBaseTransport:
        """The HTTP transport: certificates verified, no proxy or netrc from the environment."""
        if self._transport is not None:
            return self._transport
        return httpx.AsyncHTTPTransport(
            trust_env=False,
            limits=httpx.Limits(max_connections=self.settings.webhook_worker_concurrency),
        )

    async def run_until_idle(self) -> int:
        """Sequence, then deliver everything due now, until nothing is left due (tests, `worker --once`)."""
        sent = 0
        async with self.client() as client:
            while True:
                await self.sequence()
                claimed = await self._claim()
                if not claimed and not self._tasks:
                    break
                self._start(client, claimed)
                if self._tasks:
                    await asyncio.wait(set(self._tasks))
                sent += await self.flush()
        return sent

    def stop(self) -> None:
        """End `run_forever` between two steps, never inside a database call (a cancelled SQLite
        transaction can keep the write lock from everyone else until its connection is collected)."""
        self._stopping.set()

    async def run_forever(self, wake: asyncio.Event | None = None) -> None:
        """Until cancelled: woken by commits (in the app) and every IDLE_POLL seconds, or, in a process of
        its own, every EXTERNAL_POLL seconds."""
        poll = IDLE_POLL if wake is not None else EXTERNAL_POLL
        wake = wake if wake is not None else asyncio.Event()
        failures = 0
        last_look = -poll
        async with self.client() as client:
            try:
                while not self._stopping.is_set():
                    committed = wake.is_set()
                    wake.clear()
                    try:
                        await self.flush()
                        # New events only come with a commit here or elsewhere (the poll); claims are
                        # looked for on every turn, as sends finishing make room for more.
                        if committed or time.monotonic() - last_look >= poll:
                            last_look = time.monotonic()
                            await self.sequence()
                        self._start(client, await self._claim())
                        if time.monotonic() - self._last_renewal > self.lease.total_seconds() / 3:
                            await self.renew()
                        if time.monotonic() - self._last_watch > WATCH_EVERY:
                            self._last_watch = time.monotonic()
                            await watch(self.sessionmaker, self.settings)
                    except Exception as exc:  # the loop must not die: log, back off, go on
                        task = asyncio.current_task()
                        if task is not None and task.cancelling():
                            raise asyncio.CancelledError from exc
                        failures += 1
                        log().error(
                            "webhook_worker_failed",
                            attempt=failures,
                            error_type=type(exc).__name__,
                            error=_first_line(exc),
                        )
                        await asyncio.sleep(min(30.0, 2.0 ** min(failures, 5)))
                        continue
                    failures = 0
                    with suppress(TimeoutError):
                        async with asyncio.timeout(poll):
                            await first_of(wake, self._finished, self._stopping)
                    if self._tasks:  # sends still in flight: let more of them finish first
                        await asyncio.sleep(GATHER)
            finally:
                if self._tasks and self._stopping.is_set():  # a clean stop lets sends in flight finish
                    await asyncio.wait(set(self._tasks), timeout=STOP_TIMEOUT)
                for task in list(self._tasks):
                    task.cancel()
                with suppress(Exception):
                    await asyncio.gather(*self._tasks, return_exceptions=True)
                with suppress(Exception):  # what finished is recorded; the rest comes due after its lease
                    await self.flush()


def _attempt_row(outcome: Outcome) -> dict[str, object]:
    item = outcome.claimed
    return {
        "id": new_id("what"),
        "delivery_id": item.delivery_id,
        "endpoint_id": item.endpoint_id,
        "at": outcome.at,
        "outcome": outcome.outcome,
        "status_code": outcome.status_code,
        "duration_ms": outcome.duration_ms,
        "error_class": outcome.error_class,
        "response_excerpt": outcome.excerpt,
    }


def _delivery_change(outcome: Outcome, now: datetime, schedule: list[float]) -> dict[str, object]:
    """Succeeded; failed for good (410, or the schedule is used up: a dead letter, replayable); or due
    again after the schedule's next delay."""
    made = outcome.claimed.attempts + 1
    change: dict[str, object] = {
        "id": outcome.claimed.delivery_id,
        "attempts": made,
        "last_attempt_at": outcome.at,
        "last_status_code": outcome.status_code,
    }
    if outcome.outcome == "succeeded":
        change["status"] = "succeeded"
    elif outcome.outcome == "gone" or made >= len(schedule):
        change["status"] = "failed"
    else:
        change["next_attempt_at"] = now + timedelta(seconds=schedule[made])
    return change


@asynccontextmanager
async def worker_running(
    settings: Settings,
    sealer: Sealer,
    *,
    wake_on: AsyncEngine | None = None,
    resolver: Resolver = system_resolver,
) -> AsyncIterator[DeliveryWorker]:
    """A worker on an engine of its own while the block runs, woken by commits on `wake_on` (the app's
    engine, for the in-process worker) that gave it work."""
    engine = create_engine(settings)
    worker = DeliveryWorker(create_sessionmaker(engine), sealer, settings, resolver=resolver)
    wake = asyncio.Event()
    try:
        with worker_wakers.listening((wake_on or engine).sync_engine, wake):
            task = asyncio.create_task(worker.run_forever(wake), name="webhook-worker")
            try:
                yield worker
            finally:
                worker.stop()
                try:
                    async with asyncio.timeout(2 * STOP_TIMEOUT):
                        await task
                except TimeoutError:  # stuck: cancel it; what it claimed comes due after the lease
                    task.cancel()
                    with suppress(asyncio.CancelledError, TimeoutError):
                        async with asyncio.timeout(STOP_TIMEOUT):
                            await task
    finally:
        await engine.dispose()
