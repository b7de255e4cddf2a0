"""The attended channels (L2): every apprise URL of SILVER_ALERT_URLS, told at once, each with its own
outcome. A channel is only ever shown as `scheme://host`: the rest of an apprise URL is its tokens."""

from __future__ import annotations

import asyncio
import ipaddress
import re
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import parse_qsl, unquote, urlsplit

from silver_auth.core.logging import quiet_apprise
from silver_auth.core.redaction import REDACTED, redact_text
from silver_auth.settings import Settings

Level = Literal["failure", "success", "info"]
"""apprise's notify types: a raise, a resolution, a test."""
HIDDEN = "…"
ERROR_LENGTH = 300
GRACE_SECONDS = 2.0
"""Past apprise's own deadline, how long before the wait for a channel is abandoned."""
MIN_SCRUBBED = 4
"""URL parts shorter than this are not searched for in error text (`ops`, `443` are no secrets)."""
_DNS_NAME = re.compile(r"(?=.{1,253}$)([a-z0-9-]{1,63}\.)+[a-z]{2,63}", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Channel:
    index: int
    """Its place in SILVER_ALERT_URLS, from 1."""
    description: str
    """`scheme://host`, or `scheme://…` when the host position holds a token (`slack://TOKEN/…`)."""
    url: str = field(repr=False)
    """The apprise URL itself: a secret, used only to send."""


@dataclass(frozen=True, slots=True)
class ChannelOutcome:
    index: int
    channel: str
    service: str | None
    sent: bool
    error: str | None = None


def configured_channels(settings: Settings) -> list[Channel]:
    return [
        Channel(index, describe(url), url) for index, url in enumerate(settings.alert_channel_urls(), start=1)
    ]


def _shown_host(host: str) -> bool:
    """A network host is shown; anything else in the host position (a token, a topic) is not."""
    if host == "localhost":
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return _DNS_NAME.fullmatch(host) is not None
    return True


def describe(url: str) -> str:
    """`scheme://host[:port]` of an apprise URL, with nothing that could be a token (G28)."""
    scheme, _, rest = url.partition("://")
    scheme = scheme.lower() if re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]{0,30}", scheme) else "?"
    if not rest:
        return f"{scheme}://{HIDDEN}"
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port
    except ValueError:  # `tgram://123:token/…` reads as a bad port
        return f"{scheme}://{HIDDEN}"
    if not _shown_host(host):
        return f"{scheme}://{HIDDEN}"
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}{f':{port}' if port else ''}"


def _url_secrets(url: str) -> list[str]:
    """Every part of the URL that is not its scheme or shown host: what an error must not repeat."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        pieces = [parts.username or "", parts.password or "", parts.fragment]
    except ValueError:
        return [url.partition("://")[2]]
    if not _shown_host(host):
        pieces.append(host)
    pieces += parts.path.split("/")
    pieces += [value for _, value in parse_qsl(parts.query)]
    found = {p for piece in pieces for p in (piece, unquote(piece)) if len(p) >= MIN_SCRUBBED}
    return sorted(found, key=len, reverse=True)


def scrub(text: str, url: str) -> str:
    """One line of an error, without the channel's URL parts and without anything secret-shaped."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    for piece in _url_secrets(url):
        line = line.replace(piece, REDACTED)
    return redact_text(line)[:ERROR_LENGTH]


async def notify_one(
    channel: Channel, *, title: str, body: str, level: Level, within: float
) -> ChannelOutcome:
    import apprise  # noqa: PLC0415 - about 0.4 s to import: only a process that sends pays it

    quiet_apprise()
    sender = apprise.Apprise()
    if not sender.add(channel.url):
        return ChannelOutcome(
            channel.index, channel.description, None, False, "apprise cannot use this URL (unknown scheme?)"
        )
    service = str(sender[0].service_name)
    try:
        async with asyncio.timeout(within + GRACE_SECONDS):
            result = await sender.async_notify(body=body, title=title, notify_type=level, timeout=within)
    except TimeoutError:
        return ChannelOutcome(
            channel.index, channel.description, service, False, f"no answer in {within:g} s"
        )
    except Exception as exc:  # a plugin's own failure: this channel failed, the others go on
        reason = scrub(f"{type(exc).__name__}: {exc}", channel.url)
        return ChannelOutcome(channel.index, channel.description, service, False, reason)
    if result:
        return ChannelOutcome(channel.index, channel.description, service, True)
    logged = [e.message for r in result.results for e in r.logs() if e.level in ("WARNING", "ERROR")]
    reason = logged[-1] if logged else f"apprise: {result.status.name.lower()}"
    return ChannelOutcome(channel.index, channel.description, service, False, scrub(reason, channel.url))


async def notify(
    channels: list[Channel], *, title: str, body: str, level: Level, within: float
) -> list[ChannelOutcome]:
    """Tell every channel at once; one outcome each, in their order. Never raises for a channel."""
    return list(
        await asyncio.gather(
            *(notify_one(c, title=title, body=body, level=level, within=within) for c in channels)
        )
    )
