"""The IETF RateLimit header fields (draft-ietf-httpapi-ratelimit-headers-11): Structured Field lists
(RFC 9651) with one item per policy the request counted against.

    RateLimit-Policy: "backend";q=600;w=60
    RateLimit: "backend";r=599;t=60

`q` is the quota and `w` its window in seconds; `r` what remains of it and `t` the seconds until the
window has room again. A policy's name is a String item, so it is quoted.
"""

from __future__ import annotations

from collections.abc import Sequence

from silver_auth.ratelimit.limiter import Decision

POLICY_HEADER = "RateLimit-Policy"
STATE_HEADER = "RateLimit"


def policy_value(decisions: Sequence[Decision]) -> str:
    return ", ".join(f'"{d.policy.name}";q={d.policy.limit};w={d.policy.window_seconds}' for d in decisions)


def state_value(decisions: Sequence[Decision]) -> str:
    return ", ".join(f'"{d.policy.name}";r={d.remaining};t={d.reset_seconds}' for d in decisions)


def header_pairs(decisions: Sequence[Decision]) -> list[tuple[bytes, bytes]]:
    """Both fields, for an ASGI response start."""
    return [
        (b"ratelimit-policy", policy_value(decisions).encode("ascii")),
        (b"ratelimit", state_value(decisions).encode("ascii")),
    ]
