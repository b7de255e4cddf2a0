"""Text checks shared by every input that reaches the database or a page."""

from __future__ import annotations

import unicodedata

from silver_auth.core.errors import InvalidInput

MAX_NAME = 100
MAX_EMAIL = 254
"""The longest address SMTP can carry (RFC 5321 4.5.3.1.3: a 256-octet path, brackets included)."""
BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def has_control_characters(text: str) -> bool:
    """Control characters (NUL is refused by Postgres: a 500, not a 422), lone surrogates, bidi controls."""
    return any(unicodedata.category(c) in ("Cc", "Cs") or c in BIDI_CONTROLS for c in text)


def clean_name(name: str) -> str:
    """A display name: whitespace collapsed, no control or bidi characters (CVE-2021-42574), not blank."""
    name = " ".join(name.split())
    if has_control_characters(name):
        raise InvalidInput("name must not contain control characters")
    if not name or all(unicodedata.category(c) == "Cf" for c in name):  # e.g. only zero-width spaces
        raise InvalidInput("name must not be blank")
    if len(name) > MAX_NAME:
        raise InvalidInput(f"name is limited to {MAX_NAME} characters")
    return name
