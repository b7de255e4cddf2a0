"""Listening sockets on this host (G5, G20): the API's port, the metrics port and the Postgres port
answer on loopback or private addresses only, never on every interface or a public one."""

from __future__ import annotations

import ipaddress
import socket

import psutil
from sqlalchemy.engine import make_url

from silver_auth.core import production_guard as guard
from silver_auth.ops.doctor.context import Doctor
from silver_auth.ops.doctor.report import Finding, failed, from_problems, passed, warned

LINES = ("G5", "G20")
DEFAULT_POSTGRES_PORT = 5432


class SocketsUnreadable(Exception):
    pass


def listening_addresses(port: int) -> list[str]:
    """Every local address a TCP socket listens on at `port`, IPv4 and IPv6."""
    try:
        connections = psutil.net_connections(kind="inet")
    except psutil.Error as exc:  # AccessDenied where the platform keeps other users' sockets private
        raise SocketsUnreadable(f"the listening sockets cannot be read: {type(exc).__name__}") from None
    return sorted(
        {
            connection.laddr.ip
            for connection in connections
            if connection.type == socket.SOCK_STREAM
            and connection.status == psutil.CONN_LISTEN
            and connection.laddr
            and connection.laddr.port == port
        }
    )


def _public(addresses: list[str]) -> list[str]:
    return [address for address in addresses if not guard.is_private_bind(address)]


def _shown(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


async def check(doctor: Doctor) -> list[Finding]:
    return [_api_ports(doctor), _postgres_port(doctor)]


def _api_ports(doctor: Doctor) -> Finding:
    settings = doctor.settings
    ports = [("API", settings.bind_port)]
    if settings.metrics_enabled:
        ports.append(("metrics", settings.metrics_port))
    check = "listeners on " + " and ".join(f"the {name} port {port}" for name, port in ports)
    fix = "bind 127.0.0.1 (or the Docker network's address) and publish only Caddy's ports"
    configured = guard.bind_problems(settings)
    if configured:
        return from_problems("G5", check, configured, fix)
    try:
        seen = {name: (port, listening_addresses(port)) for name, port in ports}
    except SocketsUnreadable as exc:
        return warned("G5", check, str(exc), "run doctor as the user that runs the API (or root)")
    public = [
        f"the {name} port listens on {_shown(address, port)}"
        for name, (port, addresses) in seen.items()
        for address in _public(addresses)
    ]
    if public:
        return failed("G5", check, "; ".join(public) + ": reachable from outside, around Caddy", fix)
    api_port, api_addresses = seen["API"]
    if not api_addresses:
        return warned(
            "G5",
            check,
            f"nothing listens on port {api_port} here: the API's sockets were not seen",
            "run doctor on the API's host, with the API's settings",
        )
    shown = ", ".join(_shown(address, port) for port, addresses in seen.values() for address in addresses)
    return passed("G5", check, f"loopback or private only ({shown})")


def _postgres_port(doctor: Doctor) -> Finding:
    settings = doctor.settings
    check = "the Postgres port's listeners"
    engine = guard.database_engine_problems(settings)
    if engine:
        return from_problems("G20", check, engine, "run Postgres on a private network (deploy/compose.yaml)")
    url = make_url(settings.sqlalchemy_url)
    host, port = url.host or "", url.port or DEFAULT_POSTGRES_PORT
    if not host or host.startswith("/"):
        return passed("G20", check, "connected through a Unix socket: no TCP port")
    check = f"the Postgres port {host}:{port}"
    fix = "keep Postgres on loopback or the internal Docker network; publish no port for it"
    try:
        addresses = sorted(
            {str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)}
        )
    except OSError as exc:
        return warned("G20", check, f"{host} does not resolve: {exc.strerror or type(exc).__name__}")
    public_target = [address for address in addresses if not guard.is_private_bind(address)]
    if public_target:
        return failed("G20", check, f"{host} is a public address ({', '.join(public_target)})", fix)
    if not any(_is_this_host(address) for address in addresses):
        return passed(
            "G20",
            check,
            f"reached at a private address ({', '.join(addresses)}); that host's own listeners are not "
            "visible from here",
        )
    try:
        listening = listening_addresses(port)
    except SocketsUnreadable as exc:
        return warned("G20", check, str(exc), "run doctor as root to read every socket")
    public = _public(listening)
    if public:
        shown = ", ".join(_shown(address, port) for address in public)
        return failed("G20", check, f"listens on {shown}: reachable from outside", fix)
    if not listening:
        return warned(
            "G20", check, f"nothing listens on port {port} here", "run doctor on the database's host"
        )
    return passed("G20", check, "private only (" + ", ".join(_shown(a, port) for a in listening) + ")")


def _is_this_host(address: str) -> bool:
    """Loopback, or an address of one of this machine's interfaces."""
    try:
        if ipaddress.ip_address(address).is_loopback:
            return True
    except ValueError:
        return False
    return any(
        entry.address.split("%")[0] == address
        for entries in psutil.net_if_addrs().values()
        for entry in entries
        if entry.family in (socket.AF_INET, socket.AF_INET6)
    )
