"""One redaction function for logs, errors, audit metadata and alerts (G18, G28)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

REDACTED = "[REDACTED]"
SECRET_PATTERN = re.compile(
    r"(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{8,}"
    r"|wh(?:sec|sk)_[A-Za-z0-9+/=_-]{8,}"
    r"|(?i:bearer)\s+[A-Za-z0-9._~+/=-]{8,}"
    r"|eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"
    r"|(?<=://)[^/\s:@]+:[^/\s@]+(?=@)"
)
SECRET_KEY_NAMES = re.compile(
    r"pass(word)?|secret|token|pepper|cookie|authorization|api[_-]?key|credential|^key$", re.IGNORECASE
)


def _may_hold_secret(text: str) -> bool:
    """False only for a text no SECRET_PATTERN branch can match: each needs `_`, `://`, `eyJ` or
    `bearer` in some case (no other character matches these letters case-insensitively). A log line
    runs this on every field; the regular expression costs several times more."""
    return "_" in text or "://" in text or "eyJ" in text or "bearer" in text.lower()


def redact_text(text: str) -> str:
    return SECRET_PATTERN.sub(REDACTED, text) if _may_hold_secret(text) else text


@lru_cache(maxsize=4096)
def _secret_key_name(key: str) -> bool:
    """Field names repeat (every log line has the same few): decided once each."""
    return SECRET_KEY_NAMES.search(key) is not None


def redact(value: Any, key: str | None = None) -> Any:
    """Redact secret-shaped strings anywhere, and every value under a secret-sounding key."""
    secret_key = key is not None and (
        _secret_key_name(key) if len(key) <= 64 else SECRET_KEY_NAMES.search(key) is not None
    )
    if secret_key and value not in (None, "", [], {}) and not isinstance(value, bool | int | float):
        return REDACTED
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value
