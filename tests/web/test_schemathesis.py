"""Schemathesis against the service's own `/openapi.json`, as `schemathesis run` would: every operation,
as a signed-in platform admin of an org with a project, with the project's keys, and anonymously. No
answer may be a 5xx, carry a status the document does not declare for that operation, or break the
declared schema or media type.

The app runs on a loopback port (uvicorn, in a thread) over this test's own fresh database; the
examples are bounded and the seed fixed, so a run is reproducible and takes well under a minute.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
import uvicorn
from schemathesis.engine import events, from_schema

from silver_auth.app import create_app
from silver_auth.settings import Settings
from tests.admin.support import platform_admin
from tests.endusers.support import backend, customer_project
from tests.factories import Harness

pytestmark = pytest.mark.slow

MAX_EXAMPLES = int(os.environ.get("SILVER_TEST_SCHEMATHESIS_EXAMPLES", "10"))
"""Per operation and phase; more for a deeper run by hand."""
SEED = int(os.environ.get("SILVER_TEST_SCHEMATHESIS_SEED", "20261201"))

CREDENTIAL_ENDINGS = [
    ("POST", "/console/api/sign-out"),
    ("DELETE", "/console/api/sessions/{session_id}"),
]
"""Operations that would end the very session the run signs in with."""
PUBLIC = {
    "/health",
    "/v1/config",
    "/v1/projects/{project_id}/jwks.json",
    "/console/api/sign-in",
    "/p/{project_id}/{environment}/.well-known/openid-configuration",
    "/p/{project_id}/{environment}/oauth2/jwks",
}
"""What answers a 2xx without any credential (sign-in: with a right password, which fuzzing never has)."""


@contextmanager
def serving(settings: Settings) -> Iterator[str]:
    """The app on a free loopback port, stopped when the block ends."""
    app = create_app(settings)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        assert server.started, "the app did not start serving"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@dataclass
class Report:
    failures: list[str] = field(default_factory=list)
    answered: Counter[tuple[str, str, int]] = field(default_factory=Counter)
    """(method, path template, status) -> how many answers."""

    def succeeded(self) -> set[tuple[str, str]]:
        """The operations that answered a 2xx (OPTIONS, which schemathesis also tries, aside)."""
        return {
            (method, path) for method, path, status in self.answered if status < 300 and method != "OPTIONS"
        }


def run(
    url: str,
    auth: dict[str, dict[str, str]],
    ids: dict[str, list[str]] | None = None,
    exclude: list[tuple[str, str]] | None = None,
) -> Report:
    """Every phase of `schemathesis run` (examples, coverage, fuzzing, stateful) against `url`, with
    `auth` per security scheme; half the values of a path parameter named in `ids` are those real ids."""
    ids = ids or {}
    data: dict[str, Any] = {
        "seed": SEED,
        "workers": 1,
        "cache": {"enabled": False},  # each run on its own: nothing learnt from an earlier database
        "generation": {"max-examples": MAX_EXAMPLES, "database": "none"},
        # Every check of `schemathesis run` but one: positive_data_acceptance wants every schema-valid
        # request accepted, and the service refuses some with a documented 422 that no JSON Schema can
        # say (a common password, a code and a password at once, a control character in a search).
        "checks": {"max_response_time": 10, "positive_data_acceptance": {"enabled": False}},
        "operations": [
            # API.md: an unknown or revoked publishable key is a 404 (ignored_auth would want 401).
            {"include-path": "/v1/client-config", "checks": {"ignored_auth": {"enabled": False}}},
        ],
        "dictionaries": {name: {"values": values} for name, values in ids.items()},
        "parameters": {f"path.{name}": {"dictionary": name, "probability": 0.5} for name in ids},
    }
    if auth:
        data["auth"] = {"openapi": auth}
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json", config=schemathesis.Config.from_dict(data))
    for method, path in exclude or []:
        schema = schema.exclude(method=method, path=path)
    report = Report()
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            for case_id, interaction in event.recorder.interactions.items():
                case = event.recorder.cases[case_id].value
                if interaction.response is not None:
                    report.answered[(case.method, case.path, interaction.response.status_code)] += 1
            for nodes in event.recorder.checks.values():
                for node in nodes:
                    if node.failure_info is not None:
                        info = node.failure_info
                        report.failures.append(
                            f"{event.recorder.label}: {node.name}: {info.failure}\n  {info.code_sample}"
                        )
        elif isinstance(event, events.NonFatalError | events.FatalError):
            report.failures.append(str(getattr(event, "info", event)))
    return report


def test_schemathesis_finds_nothing_as_a_platform_admin(harness: Harness) -> None:
    admin = platform_admin(harness)
    project = customer_project(harness, owner=admin)
    extra_key = harness.key(admin, project.project_id, "secret", "test")
    invitation = admin.ok(
        "POST", f"/console/api/orgs/{project.org_id}/invitations", 201, json={"role": "viewer"}
    )
    ids = {
        "org_id": [project.org_id],
        "project_id": [project.project_id],
        "key_id": [extra_key["id"]],
        "account_id": [admin.account_id],
        "user_id": [admin.account_id],
        "invitation_id": [invitation["id"]],
    }
    auth = {"consoleSession": {"api_key": admin.cookie}, "csrfToken": {"api_key": admin.csrf_token}}
    with serving(harness.settings) as url:
        report = run(url, auth, ids, CREDENTIAL_ENDINGS)
    assert not report.failures, "\n\n".join(report.failures)
    reached = {path for _, path in report.succeeded()}
    assert len([path for path in reached if path.startswith(("/console/", "/admin/"))]) >= 15, reached


def test_schemathesis_finds_nothing_with_the_project_keys(harness: Harness) -> None:
    project = customer_project(harness, environment="live")
    user = backend(harness, project, "POST", "/users", json={"email": "ada@example.com"})
    assert user.status_code == 201, user.text
    auth = {"secretKey": {"bearer": project.secret}, "publishableKey": {"api_key": project.publishable}}
    ids = {"project_id": [project.project_id], "user_id": [user.json()["id"]]}
    with serving(harness.settings) as url:
        report = run(url, auth, ids)
    assert not report.failures, "\n\n".join(report.failures)
    reached = {path for _, path in report.succeeded()}
    assert len([path for path in reached if path.startswith("/v1/")]) >= 5, reached


def test_schemathesis_finds_nothing_anonymously(harness: Harness) -> None:
    project = customer_project(harness)  # something to find, were anything open
    with serving(harness.settings) as url:
        report = run(url, {}, {"project_id": [project.project_id]})
    assert not report.failures, "\n\n".join(report.failures)
    assert {path for _, path in report.succeeded()} <= PUBLIC, report.succeeded()
