"""Builders for accounts, console users, orgs, projects and keys, driven through the real API."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
from litestar.testing import TestClient

from silver_auth.accounts.service import PLATFORM_ADMIN_GROUP, create_account
from silver_auth.audit.service import CLI_ACTOR
from silver_auth.db.session import transaction
from silver_auth.runtime import Runtime
from silver_auth.settings import Settings

T = TypeVar("T")
PASSWORD = "a perfectly fine passphrase"


@dataclass
class ConsoleUser:
    """A signed-in console account: sends its own cookie and CSRF token, never the shared jar's."""

    client: TestClient[Any]
    cookie_name: str
    cookie: str
    csrf_token: str
    account_id: str
    email: str
    headers: dict[str, str] = field(default_factory=dict)

    def request(self, method: str, path: str, *, csrf: bool = True, **kwargs: Any) -> httpx.Response:
        headers = {"cookie": f"{self.cookie_name}={self.cookie}", **self.headers, **kwargs.pop("headers", {})}
        if csrf and method.upper() in ("POST", "PUT", "PATCH", "DELETE"):
            headers.setdefault("x-csrf-token", self.csrf_token)
        self.client.cookies.clear()
        return self.client.request(method, path, headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", path, **kwargs)

    def ok(self, method: str, path: str, status: int = 200, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        assert response.status_code == status, f"{method} {path}: {response.status_code} {response.text}"
        return response.json() if response.content else None


class Harness:
    def __init__(self, client: TestClient[Any], settings: Settings) -> None:
        self.client = client
        self.settings = settings

    @property
    def runtime(self) -> Runtime:
        runtime: Runtime = self.client.app.state.runtime
        return runtime

    def run(self, work: Callable[[], Awaitable[T]]) -> T:
        """Run async code on the app's own event loop (its engine and pools live there)."""
        portal = self.client.blocking_portal
        assert portal is not None
        return portal.call(work)

    def create_account(
        self, email: str | None = None, *, password: str = PASSWORD, platform_admin: bool = False
    ) -> str:
        email = email or f"user-{secrets.token_hex(4)}@example.com"

        async def work() -> str:
            async with transaction(self.runtime.sessionmaker) as db:
                groups = (PLATFORM_ADMIN_GROUP,) if platform_admin else ()
                return (await create_account(db, email, password, groups=groups, actor=CLI_ACTOR)).id

        return self.run(work)

    def sign_in(self, email: str, password: str = PASSWORD) -> ConsoleUser:
        response = self.client.post("/console/api/sign-in", json={"email": email, "password": password})
        assert response.status_code == 200, response.text
        cookie = response.cookies[self.settings.session_cookie_name]
        self.client.cookies.clear()
        body = response.json()
        return ConsoleUser(
            self.client,
            self.settings.session_cookie_name,
            cookie,
            body["csrf_token"],
            body["account"]["id"],
            email,
        )

    def user(self, email: str | None = None, **kwargs: Any) -> ConsoleUser:
        email = email or f"user-{secrets.token_hex(4)}@example.com"
        self.create_account(email, **kwargs)
        return self.sign_in(email)

    def org(self, owner: ConsoleUser, name: str = "Acme") -> dict[str, Any]:
        body: dict[str, Any] = owner.ok("POST", "/console/api/orgs", 201, json={"name": name})
        return body

    def project(self, owner: ConsoleUser, org_id: str, name: str = "Web") -> dict[str, Any]:
        body: dict[str, Any] = owner.ok(
            "POST", f"/console/api/orgs/{org_id}/projects", 201, json={"name": name}
        )
        return body

    def key(
        self, user: ConsoleUser, project_id: str, kind: str = "secret", environment: str = "live"
    ) -> dict[str, Any]:
        body: dict[str, Any] = user.ok(
            "POST",
            f"/console/api/projects/{project_id}/keys",
            201,
            json={"kind": kind, "environment": environment},
        )
        return body

    def member(self, owner: ConsoleUser, org_id: str, role: str) -> ConsoleUser:
        """A new account that joined `org_id` with `role` through a real invitation link."""
        invite = owner.ok("POST", f"/console/api/orgs/{org_id}/invitations", 201, json={"role": role})
        user = self.user()
        user.ok("POST", "/console/api/invitations/accept", json={"token": invite["token"]})
        return user

    def backend(self, path: str, secret_key: str, **kwargs: Any) -> httpx.Response:
        self.client.cookies.clear()
        return self.client.get(path, headers={"authorization": f"Bearer {secret_key}"}, **kwargs)
