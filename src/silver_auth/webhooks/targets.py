"""Where a webhook may be sent: https in live (G30), loopback only in test, and never a host that resolves
to a non-public address (checked at creation and again before every connection, which then goes to the
checked address, so a DNS change between the two cannot redirect a delivery)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from silver_auth.core.errors import WebhookUrlRefused
from silver_auth.core.text import has_control_characters

MAX_URL = 2048
RESOLVE_TIMEOUT = 5.0
"""Seconds a lookup may take before the host counts as not resolving (a request or a delivery waits)."""
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
Resolver = Callable[[str, int], Awaitable[list[str]]]
"""host, port → the addresses a connection could go to."""

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))  # the system's preference order


@dataclass(frozen=True, slots=True)
class Target:
    url: str
    scheme: str
    host: str
    port: int
    loopback_allowed: bool
    """A test-environment URL on this machine: the one case where a non-public address is fine."""


def parse_target(url: str, environment: str) -> Target:
    """Syntax and scheme rules only: no DNS."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL:
        raise WebhookUrlRefused(f"url: give an absolute URL of at most {MAX_URL} characters")
    if has_control_characters(url) or any(c.isspace() for c in url):
        raise WebhookUrlRefused("url: spaces and control characters are not allowed")
    try:
        parts: SplitResult = urlsplit(url)
        port = parts.port
        host = parts.hostname
    except ValueError:
        raise WebhookUrlRefused("url: not a valid URL") from None
    if parts.scheme not in ("https", "http") or not host:
        raise WebhookUrlRefused("url: an absolute http(s) URL with a host is required")
    if parts.username is not None or parts.password is not None:
        raise WebhookUrlRefused("url: credentials in the URL are not allowed; verify the signature instead")
    if parts.fragment:
        raise WebhookUrlRefused("url: a fragment is never sent; remove it")
    loopback = host in LOOPBACK_HOSTS
    if environment == "live" and parts.scheme != "https":
        raise WebhookUrlRefused("url: live endpoints must use https (G30)")
    if environment == "test" and parts.scheme == "http" and not loopback:
        raise WebhookUrlRefused("url: test endpoints use https, or http only on localhost / 127.0.0.1")
    return Target(
        url=url,
        scheme=parts.scheme,
        host=host,
        port=port or (443 if parts.scheme == "https" else 80),
        loopback_allowed=environment == "test" and loopback,
    )


def _public(address: IpAddress) -> bool:
    # An IPv6 address that carries an IPv4 one (mapped ::ffff:a.b.c.d, 6to4 2002:…) is judged by the
    # IPv4 address it leads to: Python counts 2002:a00:1:: (10.0.0.1 inside) as global.
    if isinstance(address, ipaddress.IPv6Address):
        address = address.ipv4_mapped or address.sixtofour or address
    return address.is_global and not address.is_multicast and not address.is_reserved


async def checked_addresses(target: Target, resolver: Resolver) -> list[str]:
    """The addresses a connection may go to; refused if the host does not resolve or any address it
    resolves to is loopback, link-local, private or otherwise not public (one bad answer is enough:
    a resolver picking among them must never pick the bad one)."""
    try:
        literal: IpAddress | None = ipaddress.ip_address(target.host)
    except ValueError:
        literal = None
    if literal is not None:
        found = [literal]
    else:
        try:
            async with asyncio.timeout(RESOLVE_TIMEOUT):
                answers = await resolver(target.host, target.port)
            found = [ipaddress.ip_address(a.split("%", 1)[0]) for a in answers]
        except (OSError, UnicodeError, ValueError, TimeoutError):
            found = []
        if not found:
            raise WebhookUrlRefused(f"url: the host {target.host} does not resolve")
    if target.loopback_allowed:
        if all(a.is_loopback for a in found):
            return [str(a) for a in found]
        raise WebhookUrlRefused("url: localhost must resolve to a loopback address")
    bad = [a for a in found if not _public(a)]
    if bad:
        raise WebhookUrlRefused(
            f"url: the host {target.host} resolves to a non-public address ({bad[0]}); "
            "receivers must be reachable on the public internet"
        )
    return [str(a) for a in found]
