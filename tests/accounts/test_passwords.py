"""Password policy (OWASP ASVS 5.0 V6.2) and sign-in that does not tell accounts apart (V6.3.8)."""

from __future__ import annotations

from typing import Any

import pytest
from argon2 import PasswordHasher

from silver_auth.accounts import passwords
from silver_auth.accounts.passwords import check_policy, common_passwords, hash_password, verify_password
from silver_auth.core.errors import InvalidInput
from tests.accounts.support import API, changes, deactivate, post_sign_in, problem
from tests.dbstate import snapshot
from tests.factories import PASSWORD, Harness


def test_v6_2_length_limits_are_12_to_128_and_no_composition_rules() -> None:
    for fine in ("a" * 6 + "b" * 6, "all lower case words", "x" * 128, "ünïcödé pässwörd", "            z"):
        check_policy(fine)
    for refused, rule in (("a" * 11, "at least 12"), ("b" * 129, "limited to 128"), ("", "at least 12")):
        with pytest.raises(InvalidInput, match=rule) as raised:
            check_policy(refused)
        if refused:
            assert refused not in raised.value.detail


async def test_v6_2_passwords_are_never_truncated() -> None:
    base = "p" * 127
    encoded = await hash_password(base + "1")
    assert await verify_password(encoded, base + "1")
    assert not await verify_password(encoded, base + "2")  # the 128th character counts
    assert not await verify_password(encoded, base)  # so does its absence
    assert not await verify_password(encoded, base + "1" + "extra")  # longer is not a prefix match
    # bcrypt-style 72-byte truncation would make these equal
    assert not await verify_password(await hash_password("q" * 80 + "alpha"), "q" * 80 + "omega")


def test_v6_2_the_bundled_list_holds_the_10000_most_common_passwords() -> None:
    common = common_passwords()
    assert len(common) == 10_000
    assert {"123456", "password", "qwerty", "dragon"} <= common
    assert all(word == word.lower() and word for word in common)


@pytest.mark.parametrize("password", ["1qaz2wsx3edc", "QWERTY123456", "Qazwsxedcrfv", "123QWEASDZXC"])
async def test_v6_2_common_passwords_are_refused_case_insensitively(password: str) -> None:
    assert len(password) >= passwords.MIN_LENGTH  # the length rule alone would let these through
    with pytest.raises(InvalidInput, match="most common passwords") as raised:
        check_policy(password)
    assert password not in raised.value.detail
    with pytest.raises(InvalidInput):
        await hash_password(password)


def test_v6_2_a_common_password_inside_a_longer_one_is_fine() -> None:
    check_policy("1qaz2wsx3edc but longer")  # the whole password is compared, not a prefix or part


def test_account_creation_refuses_a_common_password_and_writes_nothing(harness: Harness) -> None:
    before = snapshot(harness)
    with pytest.raises(InvalidInput):
        harness.create_account("common@example.com", password="qwerty123456")
    assert changes(before, snapshot(harness)) == {}


class CountingHasher(PasswordHasher):
    calls: list[str]

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        self.calls.append("verify")
        return super().verify(hash, password)


@pytest.fixture
def counting(monkeypatch: pytest.MonkeyPatch) -> CountingHasher:
    hasher = CountingHasher(time_cost=1, memory_cost=1024, parallelism=1)
    hasher.calls = []
    monkeypatch.setattr(passwords, "_hasher", hasher)
    return hasher


def test_v6_3_8_unknown_account_still_runs_one_argon2_verification(
    harness: Harness, counting: CountingHasher
) -> None:
    """The same answer and the same work whether or not the account exists (counted, not timed)."""
    email = "known@example.com"
    harness.create_account(email)
    answers: dict[str, Any] = {}
    for label, body in (
        ("wrong password", {"email": email, "password": "not the right one at all"}),
        ("unknown account", {"email": "nobody@example.com", "password": "not the right one at all"}),
        ("malformed email", {"email": "not an email", "password": "not the right one at all"}),
    ):
        counting.calls.clear()
        response = post_sign_in(harness, body)
        answers[label] = problem(response, 401, "unauthorized")
        assert counting.calls == ["verify"], label
    assert len({repr(answer) for answer in answers.values()}) == 1  # byte-for-byte the same problem
    counting.calls.clear()
    assert post_sign_in(harness, {"email": email, "password": PASSWORD}).status_code == 200
    assert counting.calls == ["verify"]


def test_v6_3_8_a_deactivated_account_answers_like_a_wrong_password(harness: Harness) -> None:
    user = harness.user()
    user.ok("GET", f"{API}/me")
    deactivate(harness, user.account_id)
    wrong = post_sign_in(harness, {"email": "nobody@example.com", "password": PASSWORD})
    deactivated = post_sign_in(harness, {"email": user.email, "password": PASSWORD})
    assert problem(deactivated, 401, "unauthorized") == problem(wrong, 401, "unauthorized")
