"""The backend API client (secret key): the project, end-users, sessions, events, code exchange.

    from seqn_auth import SeqnClient

    with SeqnClient("https://auth.example.com", secret_key=os.environ["SEQN_SECRET_KEY"]) as seqn:
        user = seqn.create_user("ada@example.com")
        for user in seqn.iter_users():
            ...

`AsyncSeqnClient` has the same methods, awaited. Failures raise `SeqnError` subclasses built from the
answer's problem+json (`NotFoundError`, `ConflictError`, `RateLimitedError`…).

Retries. A 429 or 503 answer means the request was not acted on (the limiter or an unavailable
dependency refused it before any work), so every request is retried on those, POST and PATCH
included, after the answer's `Retry-After` (or a short backoff without one). Idempotent requests (GET,
DELETE) are also retried on 502 and 504 and on connection failures, where a non-idempotent request
might have been acted on and is not retried. At most `max_retries` retries; a `Retry-After` longer
than `max_retry_wait` seconds is not waited for: the error is raised at once with `retry_after` set.

The secret key is sent only in the Authorization header; it never appears in a log line, an
exception or a repr.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any
from urllib.parse import quote

import httpx

from seqn_auth.errors import SeqnConnectionError, SeqnError, error_for
from seqn_auth.models import ClientSession, EventPage, Project, Session, SessionVerdict, User, UserPage

log = logging.getLogger("seqn_auth")

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
NOT_ACTED_ON = frozenset({429, 503})
RETRY_IDEMPOTENT = frozenset({429, 502, 503, 504})
USER_AGENT = "seqn-auth-python/0.1.0"


def _retry_after(response: httpx.Response) -> float | None:
    raw = response.headers.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    if raw.isdigit():
        return float(raw)
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _problem(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        return body
    return {"type": "about:blank", "title": response.reason_phrase, "status": response.status_code}


def _raise_for(response: httpx.Response) -> None:
    if response.is_success:
        return
    raise error_for(response.status_code, _problem(response), _retry_after(response))


def _path(*segments: str) -> str:
    return "/" + "/".join(quote(segment, safe="") for segment in segments)


class _Base:
    def __init__(
        self,
        auth_url: str,
        secret_key: str,
        *,
        max_retries: int,
        max_retry_wait: float,
        backoff: float,
    ) -> None:
        if not secret_key.startswith("sk_"):
            raise ValueError("secret_key must be a secret key (sk_test_… or sk_live_…)")
        self.auth_url = auth_url.rstrip("/")
        self._headers = {"authorization": f"Bearer {secret_key}", "user-agent": USER_AGENT}
        self.max_retries, self.max_retry_wait, self.backoff = max_retries, max_retry_wait, backoff

    def __repr__(self) -> str:
        return f"{type(self).__name__}(auth_url={self.auth_url!r})"

    def _wait(self, method: str, attempt: int, response: httpx.Response | None) -> float | None:
        """Seconds to wait before retry `attempt` (from 1), or None: raise now."""
        if attempt > self.max_retries:
            return None
        if response is None:  # a connection failure: only a request that is safe to repeat
            return self.backoff * (1 << (attempt - 1)) if method in IDEMPOTENT else None
        retryable = RETRY_IDEMPOTENT if method in IDEMPOTENT else NOT_ACTED_ON
        if response.status_code not in retryable:
            return None
        asked = _retry_after(response)
        if asked is None:
            return min(self.backoff * (1 << (attempt - 1)), self.max_retry_wait)
        return asked if asked <= self.max_retry_wait else None


class SeqnClient(_Base):
    """The backend API over a sync httpx client. Use as a context manager, or call `close()`."""

    def __init__(
        self,
        auth_url: str,
        secret_key: str,
        *,
        timeout: float = 10.0,
        max_retries: int = 2,
        max_retry_wait: float = 30.0,
        backoff: float = 0.5,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(
            auth_url, secret_key, max_retries=max_retries, max_retry_wait=max_retry_wait, backoff=backoff
        )
        self._http = httpx.Client(base_url=self.auth_url, timeout=timeout, transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SeqnClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _request(
        self,
        method: str,
        path: str,
        *,
        json: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> Any:
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._http.request(method, path, json=json, params=params, headers=self._headers)
            except httpx.TransportError as error:
                wait = self._wait(method, attempt, None)
                if wait is None:
                    raise SeqnConnectionError(f"{method} {path}: {type(error).__name__}") from None
                failure = type(error).__name__
                log.info("seqn: %s %s failed (%s), retrying in %.1fs", method, path, failure, wait)
                time.sleep(wait)
                continue
            if response.is_success:
                return response.json() if response.content else None
            wait = self._wait(method, attempt, response)
            if wait is None:
                _raise_for(response)
            log.info("seqn: %s %s answered %s, retrying in %.1fs", method, path, response.status_code, wait)
            time.sleep(wait or 0)

    # The project

    def get_project(self) -> Project:
        """The project and environment this secret key acts for (the backend-key check)."""
        return Project.from_json(self._request("GET", "/v1/backend/project"))

    # End-users

    def list_users(self, *, email: str | None = None, after: str | None = None, limit: int = 50) -> UserPage:
        params = {k: v for k, v in {"email": email, "after": after, "limit": limit}.items() if v is not None}
        data = self._request("GET", "/v1/backend/users", params=params)
        return UserPage([User.from_json(item) for item in data["items"]], data.get("next"))

    def iter_users(self, *, email: str | None = None, page_size: int = 100) -> Iterator[User]:
        """Every end-user (matching `email`), fetching pages as the iteration goes."""
        after: str | None = None
        while True:
            page = self.list_users(email=email, after=after, limit=page_size)
            yield from page.items
            if page.next is None:
                return
            after = page.next

    def get_user(self, user_id: str) -> User:
        return User.from_json(self._request("GET", _path("v1", "backend", "users", user_id)))

    def create_user(self, email: str, password: str | None = None) -> User:
        body: dict[str, Any] = {"email": email}
        if password is not None:
            body["password"] = password
        return User.from_json(self._request("POST", "/v1/backend/users", json=body))

    def update_user(self, user_id: str, *, email: str | None = None, password: str | None = None) -> User:
        """Change the email or password (a new password ends the user's sessions)."""
        body = {k: v for k, v in {"email": email, "password": password}.items() if v is not None}
        return User.from_json(self._request("PATCH", _path("v1", "backend", "users", user_id), json=body))

    def ban_user(self, user_id: str) -> User:
        return User.from_json(self._request("POST", _path("v1", "backend", "users", user_id, "ban")))

    def unban_user(self, user_id: str) -> User:
        return User.from_json(self._request("POST", _path("v1", "backend", "users", user_id, "unban")))

    def delete_user(self, user_id: str) -> None:
        self._request("DELETE", _path("v1", "backend", "users", user_id))

    # Sessions

    def list_user_sessions(self, user_id: str) -> list[Session]:
        data = self._request("GET", _path("v1", "backend", "users", user_id, "sessions"))
        return [Session.from_json(item) for item in data["items"]]

    def revoke_user_sessions(self, user_id: str) -> int:
        """Revoke every session of the user; answers how many were active."""
        data = self._request("POST", _path("v1", "backend", "users", user_id, "sessions", "revoke"))
        return int(data["revoked"])

    def get_session(self, session_id: str) -> Session:
        return Session.from_json(self._request("GET", _path("v1", "backend", "sessions", session_id)))

    def revoke_session(self, session_id: str) -> Session:
        path = _path("v1", "backend", "sessions", session_id, "revoke")
        return Session.from_json(self._request("POST", path))

    def verify_session(self, token: str) -> SessionVerdict:
        """The live check of a session JWT: its signature and claims, and its session still active."""
        data = self._request("POST", "/v1/backend/sessions/verify", json={"token": token})
        return SessionVerdict.from_json(data)

    # The hosted sign-in's code, and refresh

    def exchange_code(self, code: str, redirect_url: str, code_verifier: str | None = None) -> ClientSession:
        """Redeem the `code` the hosted page redirected with; `redirect_url` exactly as the page was
        opened with; `code_verifier` when the page was opened with a PKCE challenge."""
        body = {"code": code, "redirect_url": redirect_url}
        if code_verifier is not None:
            body["code_verifier"] = code_verifier
        return ClientSession.from_json(self._request("POST", "/v1/client/sessions/exchange", json=body))

    def refresh_session(self, session_token: str) -> ClientSession:
        """A fresh JWT and the next session token: store it, the one sent is void from now on."""
        body = {"session_token": session_token}
        return ClientSession.from_json(self._request("POST", "/v1/client/sessions/refresh", json=body))

    # Events (the pull API)

    def list_events(self, *, after: str | None = None, limit: int = 100) -> EventPage:
        params: dict[str, Any] = {"limit": limit}
        if after is not None:
            params["after"] = after
        return EventPage.from_json(self._request("GET", "/v1/backend/events", params=params))


class AsyncSeqnClient(_Base):
    """`SeqnClient` for asyncio: the same methods, awaited; `async with`, or `await aclose()`."""

    def __init__(
        self,
        auth_url: str,
        secret_key: str,
        *,
        timeout: float = 10.0,
        max_retries: int = 2,
        max_retry_wait: float = 30.0,
        backoff: float = 0.5,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(
            auth_url, secret_key, max_retries=max_retries, max_retry_wait=max_retry_wait, backoff=backoff
        )
        self._http = httpx.AsyncClient(base_url=self.auth_url, timeout=timeout, transport=transport)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncSeqnClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def _request(
        self,
        method: str,
        path: str,
        *,
        json: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> Any:
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self._http.request(
                    method, path, json=json, params=params, headers=self._headers
                )
            except httpx.TransportError as error:
                wait = self._wait(method, attempt, None)
                if wait is None:
                    raise SeqnConnectionError(f"{method} {path}: {type(error).__name__}") from None
                failure = type(error).__name__
                log.info("seqn: %s %s failed (%s), retrying in %.1fs", method, path, failure, wait)
                await asyncio.sleep(wait)
                continue
            if response.is_success:
                return response.json() if response.content else None
            wait = self._wait(method, attempt, response)
            if wait is None:
                _raise_for(response)
            log.info("seqn: %s %s answered %s, retrying in %.1fs", method, path, response.status_code, wait)
            await asyncio.sleep(wait or 0)

    async def get_project(self) -> Project:
        return Project.from_json(await self._request("GET", "/v1/backend/project"))

    async def list_users(
        self, *, email: str | None = None, after: str | None = None, limit: int = 50
    ) -> UserPage:
        params = {k: v for k, v in {"email": email, "after": after, "limit": limit}.items() if v is not None}
        data = await self._request("GET", "/v1/backend/users", params=params)
        return UserPage([User.from_json(item) for item in data["items"]], data.get("next"))

    async def iter_users(self, *, email: str | None = None, page_size: int = 100) -> AsyncIterator[User]:
        after: str | None = None
        while True:
            page = await self.list_users(email=email, after=after, limit=page_size)
            for user in page.items:
                yield user
            if page.next is None:
                return
            after = page.next

    async def get_user(self, user_id: str) -> User:
        return User.from_json(await self._request("GET", _path("v1", "backend", "users", user_id)))

    async def create_user(self, email: str, password: str | None = None) -> User:
        body: dict[str, Any] = {"email": email}
        if password is not None:
            body["password"] = password
        return User.from_json(await self._request("POST", "/v1/backend/users", json=body))

    async def update_user(
        self, user_id: str, *, email: str | None = None, password: str | None = None
    ) -> User:
        body = {k: v for k, v in {"email": email, "password": password}.items() if v is not None}
        path = _path("v1", "backend", "users", user_id)
        return User.from_json(await self._request("PATCH", path, json=body))

    async def ban_user(self, user_id: str) -> User:
        return User.from_json(await self._request("POST", _path("v1", "backend", "users", user_id, "ban")))

    async def unban_user(self, user_id: str) -> User:
        return User.from_json(await self._request("POST", _path("v1", "backend", "users", user_id, "unban")))

    async def delete_user(self, user_id: str) -> None:
        await self._request("DELETE", _path("v1", "backend", "users", user_id))

    async def list_user_sessions(self, user_id: str) -> list[Session]:
        data = await self._request("GET", _path("v1", "backend", "users", user_id, "sessions"))
        return [Session.from_json(item) for item in data["items"]]

    async def revoke_user_sessions(self, user_id: str) -> int:
        data = await self._request("POST", _path("v1", "backend", "users", user_id, "sessions", "revoke"))
        return int(data["revoked"])

    async def get_session(self, session_id: str) -> Session:
        return Session.from_json(await self._request("GET", _path("v1", "backend", "sessions", session_id)))

    async def revoke_session(self, session_id: str) -> Session:
        path = _path("v1", "backend", "sessions", session_id, "revoke")
        return Session.from_json(await self._request("POST", path))

    async def verify_session(self, token: str) -> SessionVerdict:
        data = await self._request("POST", "/v1/backend/sessions/verify", json={"token": token})
        return SessionVerdict.from_json(data)

    async def exchange_code(
        self, code: str, redirect_url: str, code_verifier: str | None = None
    ) -> ClientSession:
        body = {"code": code, "redirect_url": redirect_url}
        if code_verifier is not None:
            body["code_verifier"] = code_verifier
        data = await self._request("POST", "/v1/client/sessions/exchange", json=body)
        return ClientSession.from_json(data)

    async def refresh_session(self, session_token: str) -> ClientSession:
        body = {"session_token": session_token}
        data = await self._request("POST", "/v1/client/sessions/refresh", json=body)
        return ClientSession.from_json(data)

    async def list_events(self, *, after: str | None = None, limit: int = 100) -> EventPage:
        params: dict[str, Any] = {"limit": limit}
        if after is not None:
            params["after"] = after
        return EventPage.from_json(await self._request("GET", "/v1/backend/events", params=params))


__all__ = ["AsyncSeqnClient", "SeqnClient", "SeqnError"]
