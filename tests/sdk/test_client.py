"""The backend API client against a running service: the project, end-users (pages, create, update,
ban, delete), sessions (list, live verify, revoke), refresh with rotation; problem+json answers as
typed exceptions that never carry the secret key; and the retry policy."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest

from seqn_auth import (
    AsyncSeqnClient,
    AuthenticationError,
    ConflictError,
    InvalidGrantError,
    NotFoundError,
    SeqnClient,
    SeqnConnectionError,
    SeqnError,
    TokenVerifier,
    ValidationError,
)
from seqn_auth.client import _Base
from tests.endusers.support import CustomerProject
from tests.processes import ApiProcess, free_port
from tests.sdk.support import sign_in


def test_the_backend_api_through_the_client(
    service: ApiProcess, project: CustomerProject, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="seqn_auth")
    signed = sign_in(service, project)
    with SeqnClient(service.url, project.secret) as seqn:
        assert project.secret not in repr(seqn)
        about = seqn.get_project()
        assert (about.id, about.environment, about.org_id) == (project.project_id, "test", project.org_id)
        assert project.secret.startswith(about.key_prefix)

        made = [seqn.create_user(f"sdk-{n}@example.com") for n in range(3)]
        assert not made[0].has_password and not made[0].banned
        with pytest.raises(ConflictError) as taken:
            seqn.create_user("sdk-0@example.com")
        assert taken.value.status == 409 and taken.value.reason == "conflict"

        first = seqn.list_users(limit=2)
        assert len(first.items) == 2 and first.next is not None
        everyone = {user.email for user in seqn.iter_users(page_size=2)}
        assert everyone == {signed.email, "sdk-0@example.com", "sdk-1@example.com", "sdk-2@example.com"}
        assert [u.email for u in seqn.list_users(email="sdk-1").items] == ["sdk-1@example.com"]

        user = seqn.update_user(made[0].id, email="renamed@example.com", password="a new long passphrase")
        assert (user.email, user.has_password) == ("renamed@example.com", True)
        assert seqn.get_user(made[0].id).email == "renamed@example.com"
        assert seqn.ban_user(made[1].id).banned and not seqn.unban_user(made[1].id).banned
        seqn.delete_user(made[2].id)
        with pytest.raises(NotFoundError) as gone:
            seqn.get_user(made[2].id)
        assert gone.value.status == 404 and gone.value.detail
        with pytest.raises(ValidationError):
            seqn.create_user("x")

        sessions = seqn.list_user_sessions(signed.session.user_id)
        assert [s.id for s in sessions] == [signed.session.session_id] and sessions[0].status == "active"
        verdict = seqn.verify_session(signed.session.jwt)
        assert verdict.valid and verdict.user is not None and verdict.user.email == signed.email

        refreshed = seqn.refresh_session(signed.session.session_token)
        assert refreshed.session_id == signed.session.session_id
        assert refreshed.session_token != signed.session.session_token
        assert refreshed.session_token not in repr(refreshed) and refreshed.jwt not in repr(refreshed)
        claims = TokenVerifier(service.url, project.project_id, "test").verify_session(refreshed.jwt)
        assert claims.session_id == refreshed.session_id

        assert seqn.revoke_session(signed.session.session_id).status == "revoked"
        assert seqn.get_session(signed.session.session_id).revoked_at is not None
        assert not seqn.verify_session(refreshed.jwt).valid  # offline it would pass until exp
        with pytest.raises(SeqnError) as ended:
            seqn.refresh_session(refreshed.session_token)
        assert ended.value.status in (400, 401)
        assert seqn.revoke_user_sessions(signed.session.user_id) == 0

        with pytest.raises(InvalidGrantError) as refused:
            seqn.exchange_code("not-a-code", "https://app.example.com/callback")
        assert refused.value.status == 400 and refused.value.problem.get("error") == "invalid_grant"

        events = seqn.list_events(limit=5)
        assert events.items and events.items[0].type
        later = seqn.list_events(after=events.items[0].cursor, limit=5)
        assert all(int(item.cursor) > int(events.items[0].cursor) for item in later.items)

    with (
        SeqnClient(service.url, project.secret[:-4] + "abcd") as wrong,
        pytest.raises(AuthenticationError) as unauthorized,
    ):
        wrong.get_project()
    error = unauthorized.value
    assert error.status == 401 and error.reason == "unauthorized"
    for text in (str(error), repr(error), repr(error.problem), caplog.text):
        assert project.secret[8:-4] not in text


def test_the_async_client(service: ApiProcess, project: CustomerProject) -> None:
    async def work() -> None:
        async with AsyncSeqnClient(service.url, project.secret) as seqn:
            assert (await seqn.get_project()).id == project.project_id
            user = await seqn.create_user("async@example.com")
            assert [u.id async for u in seqn.iter_users()] == [user.id]
            with pytest.raises(NotFoundError):
                await seqn.get_session("ses_00000000000000000000000000")
            await seqn.delete_user(user.id)

    asyncio.run(work())


def test_a_refused_connection_is_retried_for_reads_only() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens
    with SeqnClient(url, "sk_test_nothing", max_retries=1, backoff=0.01) as seqn:
        with pytest.raises(SeqnConnectionError) as failed:
            seqn.get_project()
        assert failed.value.status == 0 and "sk_test" not in str(failed.value)
    assert "sk_test" not in repr(failed.value)


def _response(status: int, retry_after: str | None = None) -> httpx.Response:
    return httpx.Response(status, headers={"retry-after": retry_after} if retry_after else {})


def test_the_retry_policy() -> None:
    policy = _Base("http://x", "sk_test_x", max_retries=2, max_retry_wait=10, backoff=0.5)
    # 429 and 503 were not acted on: every method is retried, after Retry-After
    for method in ("GET", "POST", "PATCH", "DELETE"):
        assert policy._wait(method, 1, _response(429, "3")) == 3
        assert policy._wait(method, 1, _response(503, "2")) == 2
    # 502/504 and connection failures might have been acted on: reads and deletes only
    assert policy._wait("GET", 1, _response(502)) == 0.5
    assert policy._wait("DELETE", 2, _response(504)) == 1.0
    assert policy._wait("POST", 1, _response(502)) is None
    assert policy._wait("POST", 1, None) is None and policy._wait("GET", 1, None) == 0.5
    # bounded: no more than max_retries, and never a wait past max_retry_wait
    assert policy._wait("GET", 3, _response(429, "1")) is None
    assert policy._wait("GET", 1, _response(429, "11")) is None
    assert policy._wait("GET", 1, _response(429, "Wed, 21 Oct 2015 07:28:00 GMT")) == 0
    # other errors are never retried
    for status in (400, 401, 403, 404, 409, 422, 500):
        assert policy._wait("GET", 1, _response(status)) is None
    with pytest.raises(ValueError, match="secret key"):
        SeqnClient("http://x", "pk_test_x")
