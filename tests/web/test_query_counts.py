"""The SQL each benchmarked route sends once its caches are warm: a fixed list per route, so a query
added to a hot path (an N+1, a second transaction, a lookup whose answer is known) fails here rather
than as a slower figure in bench/routes.py. Counted on both databases; transaction control (BEGIN,
COMMIT, SAVEPOINT…) is not a statement of the route and is left out."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import event

from tests.endusers.support import (
    REDIRECT,
    CustomerProject,
    customer_project,
    exchange,
    sign_up,
)
from tests.factories import PASSWORD, ConsoleUser, Harness

TRANSACTION_CONTROL = {"BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE"}


@contextmanager
def statements(harness: Harness) -> Iterator[list[str]]:
    """The kind (SELECT, INSERT, UPDATE, DELETE) of every statement the app's engine sends meanwhile."""
    seen: list[str] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        kind = statement.lstrip().split()[0].upper()
        if kind not in TRANSACTION_CONTROL:
            seen.append(kind)

    engine = harness.runtime.engine.sync_engine
    event.listen(engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", before)


@dataclass
class Scene:
    harness: Harness
    project: CustomerProject
    console: ConsoleUser
    user_id: str
    session_jwt: str
    signed_up: int = 0

    def backend(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.project.secret}"}

    def send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        self.harness.client.cookies.clear()
        return self.harness.client.request(method, path, **kwargs)

    def code(self) -> str:
        self.signed_up += 1
        _browser, code = sign_up(self.harness, self.project, f"u{self.signed_up}@example.com")
        return code

    def session_token(self) -> str:
        answer = exchange(self.harness, self.project, self.code())
        assert answer.status_code == 200, answer.text
        token: str = answer.json()["session_token"]
        return token


@pytest.fixture
def scene(harness: Harness) -> Scene:
    project = customer_project(harness, environment="live")
    answer = exchange(harness, project, sign_up(harness, project, "first@example.com")[1])
    assert answer.status_code == 200, answer.text
    body = answer.json()
    for n in range(3):  # a page of users and of audit events, not one row
        assert harness.backend("/v1/backend/users", project.secret).status_code == 200
        created = harness.client.post(
            "/v1/backend/users",
            json={"email": f"listed{n}@example.com"},
            headers={"authorization": f"Bearer {project.secret}"},
        )
        assert created.status_code == 201, created.text
    return Scene(harness, project, project.owner, body["user_id"], body["jwt"])


Request = Callable[[Scene, str], httpx.Response]
"""Sends the route's request; the string is what `prepare` made for it (a code, a session token)."""


def _get(path: Callable[[Scene], str], *, key: str = "") -> Request:
    def send(scene: Scene, _prepared: str) -> httpx.Response:
        headers = {}
        if key == "secret":
            headers = scene.backend()
        elif key == "publishable":
            headers = {"x-publishable-key": scene.project.publishable}
        return scene.send("GET", path(scene), headers=headers)

    return send


def _console(path: Callable[[Scene], str]) -> Request:
    return lambda scene, _prepared: scene.console.get(path(scene))


def _verify(scene: Scene, _prepared: str) -> httpx.Response:
    return scene.send(
        "POST", "/v1/backend/sessions/verify", json={"token": scene.session_jwt}, headers=scene.backend()
    )


def _exchange(scene: Scene, code: str) -> httpx.Response:
    return exchange(scene.harness, scene.project, code)


def _refresh(scene: Scene, session_token: str) -> httpx.Response:
    return scene.send(
        "POST",
        "/v1/client/sessions/refresh",
        json={"session_token": session_token},
        headers={"x-publishable-key": scene.project.publishable},
    )


def _console_sign_in(scene: Scene, _prepared: str) -> httpx.Response:
    return scene.send(
        "POST", "/console/api/sign-in", json={"email": scene.console.email, "password": PASSWORD}
    )


def _nothing(_scene: Scene) -> str:
    return ""


@dataclass(frozen=True)
class Measured:
    send: Request
    expected: list[str]
    prepare: Callable[[Scene], str] = _nothing
    """Run before each request, outside the count: single-use values are made fresh."""


S = "SELECT"
ROUTES: dict[str, Measured] = {
    "health": Measured(_get(lambda s: "/health"), [S]),
    "client-config": Measured(_get(lambda s: "/v1/client-config", key="publishable"), []),
    "backend-project": Measured(_get(lambda s: "/v1/backend/project", key="secret"), []),
    "sessions-verify": Measured(_verify, [S, S, S, S]),
    "jwks": Measured(_get(lambda s: f"/v1/projects/{s.project.project_id}/jwks.json"), [S, S, S]),
    "backend-users": Measured(_get(lambda s: "/v1/backend/users", key="secret"), [S, S]),
    "backend-user": Measured(_get(lambda s: f"/v1/backend/users/{s.user_id}", key="secret"), [S, S]),
    "console-me": Measured(_console(lambda s: "/console/api/me"), [S, S]),
    "console-projects": Measured(
        _console(lambda s: f"/console/api/orgs/{s.project.org_id}/projects"), [S, S, S]
    ),
    "audit-page": Measured(_console(lambda s: f"/console/api/orgs/{s.project.org_id}/audit"), [S, S, S, S]),
    "audit-by-actor": Measured(
        _console(lambda s: f"/console/api/orgs/{s.project.org_id}/audit?actor={quote(s.console.account_id)}"),
        [S, S, S, S],
    ),
    "hosted-sign-in": Measured(
        _get(lambda s: f"{s.project.pages('sign-in')}?redirect_url={quote(REDIRECT, safe='')}"), [S, S]
    ),
    # The account, the failure counters cleared, its groups; the session and its audit event.
    "console-sign-in": Measured(_console_sign_in, [S, "DELETE", "DELETE", S, "INSERT", "INSERT", S]),
    # The code, its session with the user, both claimed; the project and its signing key for the JWT.
    "code-exchange": Measured(_exchange, [S, S, "UPDATE", "UPDATE", S, S], prepare=Scene.code),
    "refresh": Measured(_refresh, [S, "UPDATE", "INSERT", S, S], prepare=Scene.session_token),
}


@pytest.mark.parametrize("route", list(ROUTES))
def test_a_warm_route_sends_a_fixed_list_of_statements(scene: Scene, route: str) -> None:
    measured = ROUTES[route]
    assert measured.send(scene, measured.prepare(scene)).status_code < 300  # caches filled
    prepared = measured.prepare(scene)
    with statements(scene.harness) as seen:
        answer = measured.send(scene, prepared)
    assert answer.status_code < 300, answer.text
    assert seen == measured.expected, f"{route}: {seen}"
