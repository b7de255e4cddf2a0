"""The IETF RateLimit header fields (draft-ietf-httpapi-ratelimit-headers-11): Structured Field lists
(RFC 9651) with one item per policy the request counted against.

    RateLimit-Policy: "backend";q=600;w=60
    RateLimit: "backend";r=599;t=60

`q` is the quota and `w` its window in seconds; `r` what remains of it and `t` the seconds until the
window has room again. A policy's name is a String item, so it is quoted.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from silver_auth.ratelimit.limiter import Decision
from silver_auth.throttle.policies import RatePolicy

POLICY_HEADER = "RateLimit-Policy"
STATE_HEADER = "RateLimit"


def policy_value(decisions: Sequence[Decision]) -> str:
    return ", ".join(f'"{d.policy.name}";q={d.policy.limit};w={d.policy.window_seconds}' for d in decisions)


def state_value(decisions: Sequence[Decision]) -> str:
    return ", ".join(f'"{d.policy.name}";r={d.remaining};t={d.reset_seconds}' for d in decisions)


def header_pairs(decisions: Sequence[Decision]) -> list[tuple[bytes, bytes]]:
    """Both fields, for an ASGI response start (every answer of the service: kept cheap)."""
    if len(decisions) == 1:
        policy, _, remaining, reset = decisions[0]
        return [
            (b"ratelimit-policy", _policy_item(policy)),
            (b"ratelimit", _state_item(policy, remaining, reset)),
        ]
    return [
        (b"ratelimit-policy", b", ".join(_policy_item(d.policy) for d in decisions)),
        (b"ratelimit", b", ".join(_state_item(d.policy, d.remaining, d.reset_seconds) for d in decisions)),
    ]


@lru_cache(maxsize=1024)
def _policy_item(policy: RatePolicy) -> bytes:
    return f'"{policy.name}";q={policy.limit};w={policy.window_seconds}'.encode("ascii")


@lru_cache(maxsize=1024)
def _name(policy: RatePolicy) -> bytes:
    return f'"{policy.name}";r='.encode("ascii")


# Both caches hold a few entries: the policies come from RequestPolicies, one object each.


def _state_item(policy: RatePolicy, remaining: int, reset: int) -> bytes:
    return b"%s%d;t=%d" % (_name(policy), remaining, reset)
