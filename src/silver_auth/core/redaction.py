"""One redaction function for logs, errors, audit metadata and alerts (G18, G28)."""

from __future__ import annotations

import re
from collections.abc import Mapping
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


def redact_text(text: str) -> str:
    return SECRET_PATTERN.sub(REDACTED, text)


def redact(value: Any, key: str | None = None) -> Any:
    """Redact secret-shaped strings anywhere, and every value under a secret-sounding key."""
    secret_key = key is not None and SECRET_KEY_NAMES.search(key) is not None
    if secret_key and value not in (None, "", [], {}) and not isinstance(value, bool | int | float):
        return REDACTED
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value
