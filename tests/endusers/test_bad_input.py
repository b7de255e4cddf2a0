"""NUL and friends in filters, cursors and token headers are 4xx answers, never a 500 (Postgres refuses
NUL in text: a Postgres error, never a 500). The suite runs this on both databases."""

from __future__ import annotations

import base64
import json

from tests.dbstate import snapshot
from tests.endusers.support import backend, customer_project
from tests.factories import Harness

PROBLEM = "application/problem+json"


def _b64(value: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def test_control_characters_in_user_filters_are_422(harness: Harness) -> None:
    project = customer_project(harness)
    backend(harness, project, "GET", "/users")  # the key's first use records its last use: do it first
    before = snapshot(harness)
    for params in ({"email": "a\x00b"}, {"after": "usr_\x00"}, {"after": "not-an-id"}):
        answer = backend(harness, project, "GET", "/users", params=params)
        assert answer.status_code == 422, (params, answer.text)
        assert answer.headers["content-type"].startswith(PROBLEM)
        console = project.owner.get(f"/console/api/projects/{project.project_id}/users", params=params)
        assert console.status_code == 422, (params, console.text)
    assert snapshot(harness) == before


def test_a_token_whose_kid_holds_nul_is_an_unknown_kid(harness: Harness) -> None:
    project = customer_project(harness)
    header = _b64({"alg": "EdDSA", "kid": "sig_\x00", "typ": "JWT"})
    payload = _b64({"aud": project.project_id, "sub": "usr_x"})
    answer = backend(harness, project, "POST", "/sessions/verify", json={"token": f"{header}.{payload}.c2ln"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["valid"] is False and answer.json()["reason"] == "unknown-kid"
