"""The edge blocklist (G39): hostile source addresses and networks that Caddy answers with 403 before the
API sees them. The list is a Caddyfile snippet both sites import (`deploy/caddy/blocklist.caddy`):

    @edge_blocked {
        remote_ip 203.0.113.7/32 # added 2026-12-01T18:37:15Z: credential stuffing
    }
    respond @edge_blocked 403

This module reads and rewrites that file. Entries are validated networks, written in a canonical form,
so the file only ever holds what Caddy accepts; anything else in it stops a change rather than being
rewritten away. Writes replace the file whole (a reloading Caddy reads the old list or the new one, never
half of one), serialized across processes by a lock beside it, keeping the file's mode.
"""

from __future__ import annotations

import fcntl
import ipaddress
import os
import re
import shlex
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

MATCHER = "@edge_blocked"
HEADER = (
    "# Hostile sources, refused with 403 at the edge before the API sees them (G39).\n"
    "# Written by `silver-auth edge block|unblock` (docs/deployment.md); a hand edit must keep this form.\n"
)
MIN_PREFIX = {4: 8, 6: 16}
"""Shorter prefixes would refuse a large share of the internet: a mistake, not a block."""
REASON_MAX = 200
DEFAULT_MODE = 0o644  # Caddy runs as its own user and must read the list
RELOAD_SECONDS = 60

_ENTRY = re.compile(r"remote_ip\s+(?P<network>\S+)(?:\s+#\s?(?P<note>.*))?")
_NOTE = re.compile(r"added (?P<added>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)(?::\s?(?P<reason>.*))?")
_FRAME = {f"{MATCHER} {{", "}", f"respond {MATCHER} 403"}


class BlocklistError(ValueError):
    """A bad address, or a blocklist file this module will not rewrite; the message is one line."""


@dataclass(frozen=True, slots=True)
class BlockEntry:
    network: Network
    added: str
    """When `edge block` added it (ISO 8601, UTC); empty for an entry written by hand."""
    reason: str

    def line(self) -> str:
        note = f"added {self.added}" if self.added else ""
        if self.reason:
            note = f"{note}: {self.reason}" if note else self.reason
        return f"\tremote_ip {self.network}" + (f" # {note}" if note else "")


def parse_network(text: str) -> Network:
    """An address (`203.0.113.7`, `2001:db8::1`) or a network (`198.51.100.0/24`), as a network."""
    value = text.strip()
    try:
        network = ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        if "host bits set" in str(exc):
            wide = ipaddress.ip_network(value, strict=False)
            raise BlocklistError(f"{value} has host bits set: did you mean {wide}?") from None
        raise BlocklistError(f"{value!r} is not an IP address or network (CIDR)") from None
    if network.prefixlen < MIN_PREFIX[network.version]:
        raise BlocklistError(
            f"{network} is wider than /{MIN_PREFIX[network.version]}: refusing to block that much of the "
            "internet at once"
        )
    return network


def clean_reason(reason: str) -> str:
    """One line of printable text: the reason sits in a Caddyfile comment, which ends at a newline."""
    text = " ".join("".join(ch if ch.isprintable() else " " for ch in reason).split())
    return text[:REASON_MAX]


def read_blocklist(path: Path) -> list[BlockEntry]:
    """The entries of the blocklist at `path`; a missing file is an empty list."""
    try:
        content = path.read_text()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise BlocklistError(f"cannot read {path}: {exc.strerror or type(exc).__name__}") from None
    return parse_blocklist(content, path)


def parse_blocklist(content: str, path: Path) -> list[BlockEntry]:
    entries = []
    for number, raw in enumerate(content.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#") or line in _FRAME:
            continue
        match = _ENTRY.fullmatch(line)
        if match is None:
            raise BlocklistError(
                f"{path} line {number} is not a blocklist entry ({line[:60]!r}): fix or move it by hand"
            )
        try:
            network = ipaddress.ip_network(match["network"], strict=False)
        except ValueError:
            raise BlocklistError(f"{path} line {number}: {match['network']!r} is not an address") from None
        note = (match["note"] or "").strip()
        dated = _NOTE.fullmatch(note)
        if dated:
            entries.append(BlockEntry(network, dated["added"], (dated["reason"] or "").strip()))
        else:
            entries.append(BlockEntry(network, "", note))
    return entries


def render_blocklist(entries: list[BlockEntry]) -> str:
    if not entries:
        return HEADER  # no matcher at all: Caddy refuses a remote_ip matcher without ranges
    lines = [f"{MATCHER} {{", *(entry.line() for entry in entries), "}", f"respond {MATCHER} 403"]
    return HEADER + "\n".join(lines) + "\n"


@dataclass(frozen=True, slots=True)
class Change:
    """What `block` or `unblock` did: `changed` is false when the list already said so."""

    network: Network
    changed: bool
    message: str


def block(path: Path, address: str, reason: str, now: datetime) -> Change:
    """Add `address` to the blocklist at `path` (created if missing); no change when already covered."""
    network = parse_network(address)
    with _locked(path):
        entries = read_blocklist(path)
        for entry in entries:
            if entry.network == network:
                return Change(network, False, f"{network} is already blocked")
            if _covers(entry.network, network):
                return Change(network, False, f"{network} is already blocked, by {entry.network}")
        added = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        _write(path, render_blocklist([*entries, BlockEntry(network, added, clean_reason(reason))]))
    return Change(network, True, f"blocked {network}")


def unblock(path: Path, address: str) -> Change:
    """Remove `address` from the blocklist at `path`; no change when it is not on it."""
    network = parse_network(address)
    with _locked(path):
        entries = read_blocklist(path)
        kept = [entry for entry in entries if entry.network != network]
        if len(kept) == len(entries):
            wider = [str(entry.network) for entry in entries if _covers(entry.network, network)]
            inside = f" (it is inside {', '.join(wider)}: unblock that instead)" if wider else ""
            return Change(network, False, f"{network} is not on the blocklist{inside}")
        _write(path, render_blocklist(kept))
    return Change(network, True, f"unblocked {network}")


def _covers(outer: Network, inner: Network) -> bool:
    return outer.version == inner.version and inner.subnet_of(outer)  # type: ignore[arg-type]


INTERNAL = tuple(
    ipaddress.ip_network(network)
    for network in (
        "127.0.0.0/8",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "169.254.0.0/16",
        "::1/128",
        "fc00::/7",
        "fe80::/10",
    )
)
"""Loopback, private (RFC 1918, ULA), shared (CGNAT) and link-local ranges."""


def is_internal(network: Network) -> bool:
    """Whether `network` reaches into a range Caddy sees only from this host, its own networks or a proxy
    in front of it: blocking it may block every client that comes through that proxy."""
    return any(network.version == inside.version and network.overlaps(inside) for inside in INTERNAL)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One writer at a time: read, change and replace the list without losing another's entry."""
    lock_path = path.with_name(f".{path.name}.lock")
    try:
        handle = lock_path.open("a")
    except FileNotFoundError:
        raise BlocklistError(f"{path.parent} does not exist (SILVER_EDGE_BLOCKLIST={path})") from None
    except OSError as exc:
        raise BlocklistError(f"cannot lock {lock_path}: {exc.strerror or type(exc).__name__}") from None
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _write(path: Path, content: str) -> None:
    """Replace `path` whole with `content`, keeping its mode (0644 for a new file)."""
    try:
        mode = path.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = DEFAULT_MODE
    try:
        fd, scratch = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    except OSError as exc:
        raise BlocklistError(f"cannot write in {path.parent}: {exc.strerror or type(exc).__name__}") from None
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(scratch, mode)
        os.replace(scratch, path)
    except BaseException:
        Path(scratch).unlink(missing_ok=True)
        raise


def reload_edge(command: str) -> None:
    """Run SILVER_EDGE_RELOAD (`systemctl reload caddy`, `caddy reload --config …`) so Caddy reads the list
    again; a failure is one line: the command's last line of output."""
    argv = shlex.split(command)
    if not argv:
        raise BlocklistError("SILVER_EDGE_RELOAD is empty: set the command that reloads Caddy")
    try:
        done = subprocess.run(  # noqa: S603 - the operator's own configured command, no shell
            argv,
            capture_output=True,
            text=True,
            timeout=RELOAD_SECONDS,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except FileNotFoundError:
        raise BlocklistError(
            f"cannot reload the edge: {argv[0]} is not installed (SILVER_EDGE_RELOAD)"
        ) from None
    except subprocess.TimeoutExpired:
        raise BlocklistError(f"reloading the edge took over {RELOAD_SECONDS}s: {command}") from None
    if done.returncode != 0:
        output = (done.stderr.strip() or done.stdout.strip()).splitlines()
        reason = output[-1][:300] if output else f"exit {done.returncode}"
        raise BlocklistError(f"reloading the edge failed ({argv[0]} exit {done.returncode}): {reason}")
