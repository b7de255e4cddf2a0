"""The redaction function's short cuts (a prefilter before the regular expression, field names decided
once) change nothing it redacts (G18, G28)."""

from __future__ import annotations

import string

from hypothesis import given
from hypothesis import strategies as st

from silver_auth.core.redaction import REDACTED, SECRET_PATTERN, redact, redact_text

SECRETS = [
    "sk_live_" + "A1b2C3d4E5",
    "rk_test_" + "Zz9Yy8Xx7W",
    "whsec_" + "c2VjcmV0LXZhbHVl",
    "Bearer abcdefgh12345",
    "BEARER abcdefgh12345",
    "bEaReR\tabcdefgh12345",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2ln",
    "postgresql://silver:hunter2hunter2@db:5432/silver",
]
# Text around them: printable ASCII, and letters that case-fold oddly (long s, Kelvin sign, dotted and
# dotless i), next to the ones the prefilter looks for.
CASE_FOLDING = "\u017f\u212a\u0130\u0131"
AROUND = st.text(alphabet=string.printable + CASE_FOLDING, max_size=40)


@given(AROUND, st.sampled_from(SECRETS), AROUND)
def test_a_secret_inside_any_text_is_redacted_as_the_pattern_says(
    before: str, secret: str, after: str
) -> None:
    text = before + secret + after
    assert redact_text(text) == SECRET_PATTERN.sub(REDACTED, text)
    assert secret not in redact_text(text)


@given(st.text(max_size=80))
def test_the_prefilter_never_skips_what_the_pattern_would_redact(text: str) -> None:
    assert redact_text(text) == SECRET_PATTERN.sub(REDACTED, text)


def test_field_names_decide_as_before_however_often_asked() -> None:
    for _ in range(3):  # the second and third answers come from the remembered decision
        assert redact("plain", "session_token") == REDACTED
        assert redact("plain", "route") == "plain"
        assert redact(3, "password") == 3  # numbers are never secrets
        assert redact("x", "p" * 100 + "password") == REDACTED  # long names are not remembered
