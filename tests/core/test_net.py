"""`client_ip` decides the address behind every per-IP throttle and every audit record's `actor_ip`:
X-Forwarded-For counts only when the direct peer is a configured trusted proxy (Caddy, G5)."""

from __future__ import annotations

import pytest

from silver_auth.core.net import client_ip

CADDY = ("127.0.0.1",)
CADDY_AND_LB = ("127.0.0.1", "10.0.0.0/8")

CASES = [
    # (peer, X-Forwarded-For, trusted proxies, expected, why)
    ("203.0.113.7", None, (), "203.0.113.7", "no proxy configured: the peer"),
    ("203.0.113.7", "198.51.100.1", (), "203.0.113.7", "no proxy configured: the header is ignored"),
    ("203.0.113.7", "198.51.100.1", CADDY, "203.0.113.7", "an untrusted peer cannot speak for others"),
    ("127.0.0.1", None, CADDY, "127.0.0.1", "a trusted peer without the header: the peer"),
    ("127.0.0.1", "", CADDY, "127.0.0.1", "an empty header: the peer"),
    ("127.0.0.1", "198.51.100.1", CADDY, "198.51.100.1", "Caddy's word for the client"),
    (
        "127.0.0.1",
        "6.6.6.6, 198.51.100.1",
        CADDY,
        "198.51.100.1",
        "a client-sent hop on the left is not trusted",
    ),
    ("127.0.0.1", "198.51.100.1, 10.2.3.4", CADDY_AND_LB, "198.51.100.1", "trusted hops are skipped"),
    ("10.9.8.7", "198.51.100.1", CADDY_AND_LB, "198.51.100.1", "a trusted network, not only an address"),
    ("127.0.0.1", "10.2.3.4, 10.0.0.1", CADDY_AND_LB, "127.0.0.1", "only trusted hops: the peer"),
    ("127.0.0.1", "not-an-address", CADDY, "127.0.0.1", "garbage in the header: the peer"),
    ("127.0.0.1", "198.51.100.1:4711", CADDY, "127.0.0.1", "a hop with a port is not an address"),
    ("127.0.0.1", "198.51.100.1, , ", CADDY, "198.51.100.1", "empty hops are skipped"),
    ("::1", "2001:DB8::0001", ("::1",), "2001:db8::1", "IPv6, normalised"),
    ("::1", "198.51.100.1", CADDY, "::1", "IPv6 loopback is not 127.0.0.1"),
    (None, "198.51.100.1", CADDY, None, "no peer (a test client): nothing to trust"),
]


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "trusted", "expected", "why"), CASES, ids=[c[4] for c in CASES]
)
def test_client_ip_trusts_forwarded_for_only_from_trusted_proxies(
    peer: str | None, forwarded_for: str | None, trusted: tuple[str, ...], expected: str | None, why: str
) -> None:
    assert client_ip(peer, forwarded_for, trusted) == expected, why
