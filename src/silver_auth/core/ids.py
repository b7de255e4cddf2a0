"""Prefixed, time-sortable ids (`org_…`, `prj_…`, `key_…`): 48-bit milliseconds then 80 random bits."""

from __future__ import annotations

import secrets
import time

CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"
ID_LENGTH = 26


def new_id(prefix: str) -> str:
    value = (int(time.time() * 1000) << 80) | secrets.randbits(80)
    chars = []
    for _ in range(ID_LENGTH):
        value, index = divmod(value, 32)
        chars.append(CROCKFORD[index])
    return f"{prefix}_{''.join(reversed(chars))}"


def looks_like(prefix: str, value: str) -> bool:
    """Cheap shape check so malformed ids are refused before any query."""
    head, sep, body = value.partition("_")
    return head == prefix and sep == "_" and len(body) == ID_LENGTH and all(c in CROCKFORD for c in body)
