"""The HTTP client `monitor` and `doctor` probe a deployment with: TLS verified against the system store
or one private CA, and `--resolve HOST:PORT:ADDRESS` (as curl's) to reach a host name at an address of
the operator's choosing — a new edge before DNS points at it, or a staging box — while the name stays in
the URL, the Host header, TLS SNI and the certificate check."""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import httpx

Pins = Mapping[tuple[str, int], str]
"""(host name, port) -> the address to connect to instead of what DNS says."""


class ResolveError(ValueError):
    """A `--resolve` entry that cannot be used; the message says why in one line."""


def tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """Verify against `ca_file` alone (a private CA, such as Caddy's internal one), else the system's
    store, which honours SSL_CERT_FILE and SSL_CERT_DIR."""
    return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)


def parse_resolve(entries: Iterable[str]) -> dict[tuple[str, int], str]:
    """`HOST:PORT:ADDRESS` entries (an IPv6 address may be bracketed) as pins."""
    pins: dict[tuple[str, int], str] = {}
    for entry in entries:
        host, _, rest = entry.strip().partition(":")
        port_text, _, address = rest.partition(":")
        address = address.strip("[]")
        try:
            port = int(port_text)
            ipaddress.ip_address(address)
        except ValueError:
            raise ResolveError(
                f"--resolve {entry!r}: expected HOST:PORT:ADDRESS, such as auth.seqn.in:443:203.0.113.10"
            ) from None
        if not host or not 0 < port < 65536:
            raise ResolveError(f"--resolve {entry!r}: a host name and a port from 1 to 65535 are needed")
        pins[(host.lower(), port)] = address
    return pins


class PinnedTransport(httpx.AsyncHTTPTransport):
    """Connects to `address` whatever the request's host; the host stays the TLS server name and the
    name the certificate must carry. One transport (so one connection pool) per pinned host: a
    connection opened for one name is never reused for another."""

    def __init__(self, address: str, **options: Any) -> None:
        super().__init__(**options)
        self.address = address

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        request.extensions = {**request.extensions, "sni_hostname": request.url.host}
        request.url = request.url.copy_with(host=self.address)
        return await super().handle_async_request(request)


def probe_client(
    *,
    verify: ssl.SSLContext,
    timeout: float,
    pins: Pins | None = None,
    headers: Mapping[str, str] | None = None,
) -> httpx.AsyncClient:
    """A client that never follows redirects (a redirect is itself what a probe judges) and ignores
    proxy variables of the environment (a probe of the edge must reach the edge)."""
    mounts: dict[str, httpx.AsyncBaseTransport | None] = {
        f"all://{host}:{port}": PinnedTransport(address, verify=verify)
        for (host, port), address in (pins or {}).items()
    }
    return httpx.AsyncClient(
        verify=verify,
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
        headers=dict(headers or {}),
        mounts=mounts,
    )
