"""Canary (G18, G28): end-user passwords, session tokens and cookies, one-time codes, TOTP secrets,
recovery codes and signing private keys never appear in answers (beyond their one-time place), logs,
the audit table, or in clear anywhere in the database."""

from __future__ import annotations

import re
import secrets

import httpx
import pyotp
import pytest
import structlog
from litestar.testing import TestClient
from sqlalchemy import select

from silver_auth.app import create_app
from silver_auth.core.crypto import Sealer
from silver_auth.db.session import transaction
from silver_auth.settings import Settings
from silver_auth.signing.models import SigningKey
from tests.dbstate import snapshot
from tests.endusers.support import (
    REDIRECT,
    VERIFIERS,
    Browser,
    backend,
    code_from,
    customer_project,
    exchange,
    refresh,
)
from tests.factories import Harness


def _private_keys(harness: Harness) -> list[str]:
    async def work() -> list[str]:
        async with transaction(harness.runtime.sessionmaker) as db:
            keys = (await db.scalars(select(SigningKey))).all()
            ring = harness.settings.sealing_key_ring()
            return [Sealer(ring).unseal(k.private_sealed, f"signing_key:{k.id}") for k in keys]

    return harness.run(work)


def test_canary_secrets_stay_out_of_answers_logs_audit_and_database(
    settings: Settings, capfd: pytest.CaptureFixture[str]
) -> None:
    # The app is built inside the test, so its logger writes where capfd reads.
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        _run_canary(Harness(client, settings), capfd)


def _run_canary(harness: Harness, capfd: pytest.CaptureFixture[str]) -> None:
    project = customer_project(harness)
    password = f"canary-password-{secrets.token_hex(8)}"
    answers: list[httpx.Response] = []
    one_time: list[httpx.Response] = []

    browser = Browser(harness)
    answers.append(browser.get(project.pages("sign-up"), redirect_url=REDIRECT, state="c"))
    signed_up = browser.submit(
        project.pages("sign-up"), {"email": "canary@example.com", "password": password}
    )
    one_time.append(signed_up)  # the code travels in its Location, the cookie in Set-Cookie
    code, _ = code_from(signed_up)
    cookie_value = browser.cookies[harness.settings.end_user_cookie_name]

    # Enrol TOTP: the secret is shown on the enrolment page, the recovery codes on the next one.
    answers.append(browser.get(project.pages("account/two-step/")))
    started = browser.submit(project.pages("account/two-step/start"), {})
    one_time.append(started)
    totp_secret = re.search(r'<p class="secret"><code>([A-Z2-7]+)</code>', started.text).group(1)  # type: ignore[union-attr]
    confirmed = browser.submit(
        project.pages("account/two-step/confirm"), {"code": pyotp.TOTP(totp_secret).now()}
    )
    one_time.append(confirmed)
    recovery = re.findall(r"<li><code>([a-z0-9-]+)</code></li>", confirmed.text)
    assert len(recovery) == 10
    answers.append(browser.get(project.pages("account/two-step/")))

    exchanged = exchange(harness, project, code)
    one_time.append(exchanged)
    session_token = exchanged.json()["session_token"]
    token = exchanged.json()["jwt"]
    user_id = exchanged.json()["user_id"]

    # Failures and everything else the customer can call.
    failed = Browser(harness)
    answers.append(failed.get(project.pages("sign-in"), redirect_url=REDIRECT))
    answers.append(
        failed.submit(project.pages("sign-in"), {"email": "canary@example.com", "password": password + "x"})
    )
    rotated = refresh(harness, project, session_token)
    one_time.append(rotated)
    next_token = rotated.json()["session_token"]
    answers.append(refresh(harness, project, session_token))  # replayed: revokes the session, audited
    answers.append(exchange(harness, project, code))  # reused (would revoke the session too)
    answers.append(backend(harness, project, "GET", "/users"))
    answers.append(backend(harness, project, "GET", f"/users/{user_id}"))
    answers.append(backend(harness, project, "GET", f"/users/{user_id}/sessions"))
    answers.append(backend(harness, project, "POST", "/sessions/verify", json={"token": token}))
    answers.append(
        backend(harness, project, "POST", "/users", json={"email": "c2@example.com", "password": password})
    )
    answers.append(harness.client.get(f"/v1/projects/{project.project_id}/jwks.json"))
    answers.append(project.owner.get(f"/console/api/projects/{project.project_id}/signing-keys"))
    answers.append(project.owner.get(f"/console/api/orgs/{project.org_id}/audit"))
    answers.append(backend(harness, project, "POST", f"/users/{user_id}/sessions/revoke"))
    answers.append(refresh(harness, project, next_token))
    structlog.get_logger("canary").info("probe", note="logs are captured")

    private_keys = _private_keys(harness)
    assert private_keys and all("PRIVATE KEY" in k for k in private_keys)
    canaries = {
        "password": password,
        "session token": session_token,
        "next session token": next_token,
        "pkce verifier": VERIFIERS[code],
        "code": code,
        "cookie": cookie_value,
        "cookie token": cookie_value.split(".")[0],
        "totp secret": totp_secret,
        **{f"recovery code {i}": c for i, c in enumerate(recovery)},
        **{f"private key {i}": k.strip().splitlines()[1] for i, k in enumerate(private_keys)},
    }
    captured = capfd.readouterr()
    logs = captured.out + captured.err
    assert "logs are captured" in logs
    state = snapshot(harness)
    audit = repr(state["audit_events"])
    database = repr(state)
    for name, value in canaries.items():
        for response in answers:
            assert value not in response.text, f"{name} in {response.request.url}"
            assert value not in repr(response.headers.raw), f"{name} in headers of {response.request.url}"
        assert value not in logs, f"{name} in logs"
        assert value not in audit, f"{name} in the audit table"
        assert value not in database, f"{name} in clear in the database"
    assert token not in logs and token not in audit and token not in database
    # The one-time places hold exactly what they must, once.
    assert session_token in exchanged.text
    assert next_token in rotated.text
    assert totp_secret in started.text
