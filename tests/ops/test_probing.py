"""`--resolve HOST:PORT:ADDRESS`, as monitor and doctor read it (the pinned client itself is exercised
through real Caddy in tests/e2e/test_edge_operations.py)."""

from __future__ import annotations

import pytest

from silver_auth.ops.probing import ResolveError, parse_resolve


def test_entries_become_pins_by_lowercase_host_and_port() -> None:
    pins = parse_resolve(["Auth.SEQN.in:443:203.0.113.10", "auth.seqn.in:80:[2001:db8::1]"])
    assert pins == {("auth.seqn.in", 443): "203.0.113.10", ("auth.seqn.in", 80): "2001:db8::1"}


@pytest.mark.parametrize(
    "entry",
    [
        "auth.seqn.in",
        "auth.seqn.in:443",
        "auth.seqn.in:https:10.0.0.1",
        ":443:10.0.0.1",
        "auth.seqn.in:0:10.0.0.1",
        "auth.seqn.in:443:not-an-address",
    ],
)
def test_a_malformed_entry_is_refused_in_one_line(entry: str) -> None:
    with pytest.raises(ResolveError) as refused:
        parse_resolve([entry])
    assert "--resolve" in str(refused.value) and "\n" not in str(refused.value)
