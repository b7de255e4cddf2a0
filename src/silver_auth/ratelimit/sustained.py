"""Sustained 429s (G37, G38): a source whose requests are mostly refused, minute after minute, raises one
alert; an isolated burst raises nothing; a source that recovers clears it.

A source is a key prefix (secret and publishable keys: the alert names the prefix, its project and
org, never the key, and says to rotate it, G38) or a client IP (calls without a key: the advice is
to block it at the edge, G39). Its requests are counted per minute of the service clock. The alert
is raised when each of the last SILVER_RATE_LIMIT_ALERT_MINUTES complete minutes saw at least
SILVER_RATE_LIMIT_ALERT_MIN_REQUESTS requests and more than SILVER_RATE_LIMIT_ALERT_SHARE of them
refused; it clears once a complete minute is back under the share (or quiet). Each replica counts
what it sees; the alert path sends a standing alert once, however many replicas raise it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Final, NamedTuple

from silver_auth.alerts.service import clear_alert, raise_alert
from silver_auth.core import clock
from silver_auth.keys.verifier import KeyPrincipal
from silver_auth.settings import Settings

ALERT_KIND: Final = "sustained_429"
MAX_SOURCES: Final = 20_000
"""Sources tracked at once; past it the longest-quiet are forgotten (an address flood stays bounded)."""


@dataclass(slots=True)
class _Minute:
    index: int
    requests: int = 0
    refused: int = 0


class Source(NamedTuple):
    """Who a request came from, as an alert names it (a tuple: one is made per request)."""

    subject: str
    """`key:<prefix>` or `ip:<address>`."""
    key_prefix: str | None = None
    key_id: str | None = None
    project_id: str | None = None
    org_id: str | None = None
    ip: str | None = None


@dataclass(slots=True)
class _Track:
    source: Source
    minutes: deque[_Minute] = field(default_factory=deque)


class SustainedRefusals:
    def __init__(self, settings: Settings) -> None:
        self._span = settings.rate_limit_alert_minutes
        self._share = settings.rate_limit_alert_share
        self._min_requests = settings.rate_limit_alert_min_requests
        self._revoke_base = settings.accounts_url.rstrip("/")
        self._tracks: dict[str, _Track] = {}
        self._standing: dict[str, Source] = {}
        self._swept = self._minute()

    @staticmethod
    def _minute() -> int:
        return int(clock.monotonic() // 60)

    def observe(self, subject: str, refused: bool, origin: KeyPrincipal | str) -> None:
        """Count one request of `subject` (`key:<prefix>` of the key `origin`, or `ip:<address>` of the
        address `origin`), refused or not; raise the alert when its refusals are sustained."""
        now = int(clock.monotonic() // 60)
        track = self._tracks.get(subject)
        if track is not None and track.minutes[-1].index == now:  # most requests stop here
            minute = track.minutes[-1]
        else:
            if now != self._swept:
                self.sweep()
            minute = self._next_minute(subject, track, origin, now)
            track = self._tracks[subject]
        minute.requests += 1
        if refused:
            minute.refused += 1
            if subject not in self._standing and self._sustained(track, now):
                self._raise(track.source)

    def _next_minute(
        self, subject: str, track: _Track | None, origin: KeyPrincipal | str, now: int
    ) -> _Minute:
        if track is None:
            if len(self._tracks) >= MAX_SOURCES:
                del self._tracks[next(iter(self._tracks))]
            track = _Track(_source(subject, origin))
        else:  # once a minute per source it moves to the end: the first entries are the longest quiet
            del self._tracks[subject]
        self._tracks[subject] = track
        track.minutes.append(_Minute(now))
        if len(track.minutes) > self._span + 1:
            track.minutes.popleft()
        return track.minutes[-1]

    def _over(self, minute: _Minute | None) -> bool:
        return (
            minute is not None
            and minute.requests >= self._min_requests
            and minute.refused > self._share * minute.requests
        )

    def _sustained(self, track: _Track, now: int) -> bool:
        by_index = {m.index: m for m in track.minutes}
        return all(self._over(by_index.get(now - back)) for back in range(1, self._span + 1))

    def sweep(self) -> None:
        """Clear the alert of every standing source whose last complete minute was under the share."""
        now = self._swept = self._minute()
        for subject, source in list(self._standing.items()):
            track = self._tracks.get(subject)
            last = None if track is None else next((m for m in track.minutes if m.index == now - 1), None)
            if not self._over(last):
                del self._standing[subject]
                clear_alert(ALERT_KIND, subject, f"{_name(source)} is no longer being refused")

    def _raise(self, source: Source) -> None:
        self._standing[source.subject] = source
        minutes = f"{self._span} minute{'s' if self._span != 1 else ''}"
        if source.key_prefix is not None:
            message = (
                f"more than {self._share:.0%} of the requests of key {source.key_prefix}… (project "
                f"{source.project_id}, org {source.org_id}) were refused with 429 for {minutes}. If the "
                "key is exposed, rotate it now (G38); to stop it at once, revoke it: DELETE "
                f"{self._revoke_base}/console/api/keys/{source.key_id}"
            )
        else:
            message = (
                f"more than {self._share:.0%} of the requests from {source.ip} were refused with 429 for "
                f"{minutes}; if it is hostile, block it at the edge (G39)"
            )
        context = {
            name: value
            for name, value in (
                ("key_prefix", source.key_prefix),
                ("key_id", source.key_id),
                ("project_id", source.project_id),
                ("org_id", source.org_id),
                ("ip", source.ip),
            )
            if value is not None
        }
        raise_alert(ALERT_KIND, source.subject, message, **context)

    @property
    def standing(self) -> list[str]:
        return list(self._standing)


def _source(subject: str, origin: KeyPrincipal | str) -> Source:
    if isinstance(origin, str):
        return Source(subject, ip=origin)
    return Source(
        subject,
        key_prefix=origin.prefix,
        key_id=origin.key_id,
        project_id=origin.project_id,
        org_id=origin.org_id,
    )


def _name(source: Source) -> str:
    return f"key {source.key_prefix}…" if source.key_prefix is not None else f"address {source.ip}"
