"""Canary (G16, G18): a webhook secret (`whsec_…`, `whsk_…`) appears in the answer that made it and
nowhere else: no other answer, log line, audit record, attempt row, alert, delivery, or clear database
column."""

from __future__ import annotations

import json
import re

import httpx
import pytest
import structlog

from silver_auth.alerts.service import standing
from silver_auth.core.logging import configure_logging
from silver_auth.webhooks.metrics import watch
from tests.dbstate import snapshot
from tests.factories import Harness
from tests.webhooks.support import deliver, hooks, receiver

__all__ = ["hooks"]

CONSOLE = "/console/api"
PREFIXES = ("whsec_", "whsk_")
# A secret-shaped value (the prefix then key material): /v1/config names the formats, never a value.
SECRET_SHAPED = re.compile(r"wh(?:sec|sk)_[A-Za-z0-9+/]{8,}")


def test_g16_g18_webhook_secrets_appear_only_in_their_one_answer(
    hooks: Harness, capfd: pytest.CaptureFixture[str]
) -> None:
    configure_logging(hooks.settings.log_level)  # as the app does, now that capfd reads this test's output
    one_time: list[httpx.Response] = []
    answers: list[httpx.Response] = []
    with receiver() as hmac_target, receiver() as ed_target, receiver(answers=[410]) as gone_target:
        owner = hooks.user()
        org_id = hooks.org(owner)["id"]
        project_id = hooks.project(owner, org_id)["id"]
        made = {}
        for signing, target in (("hmac", hmac_target), ("ed25519", ed_target)):
            response = owner.post(
                f"{CONSOLE}/projects/{project_id}/webhooks",
                json={"url": target.url + "?token=q", "environment": "test", "signing": signing},
            )
            assert response.status_code == 201, response.text
            one_time.append(response)
            made[signing] = response.json()
        other_project = hooks.project(owner, org_id, "Other")["id"]
        gone = owner.ok(
            "POST",
            f"{CONSOLE}/projects/{other_project}/webhooks",
            201,
            json={"url": gone_target.url, "environment": "test"},
        )
        one_time.append(owner.post(f"{CONSOLE}/webhooks/{gone['id']}/rotate-secret", json={}))
        secrets = [m["secret"] for m in made.values()] + [gone["secret"], one_time[-1].json()["secret"]]
        for endpoint in made.values():
            rotated = owner.post(
                f"{CONSOLE}/webhooks/{endpoint['id']}/rotate-secret", json={"overlap_hours": 1}
            )
            assert rotated.status_code == 200, rotated.text
            one_time.append(rotated)
            secrets.append(rotated.json()["secret"])
        assert all(s.startswith(PREFIXES) for s in secrets) and len(set(secrets)) == len(secrets)

        for endpoint in (*made.values(), gone):
            answers.append(owner.post(f"{CONSOLE}/webhooks/{endpoint['id']}/test"))
        answers.append(owner.get(f"{CONSOLE}/webhooks/{gone['id']}/secret"))  # refused (409), audited
        deliver(hooks)  # signed with both secrets during the overlap; the 410 disables and alerts
        hooks.run(lambda: watch(hooks.runtime.sessionmaker, hooks.runtime.settings))
        delivered = [*hmac_target.received, *ed_target.received, *gone_target.received]
        tests = [r for r in delivered if json.loads(r.body)["type"] == "webhook.test"]
        assert len(tests) == 3  # and the second project's project.created, to the org's endpoints

    secret_key = hooks.key(owner, project_id, "secret", "test")["key"]
    for endpoint in (*made.values(), gone):
        path = f"{CONSOLE}/webhooks/{endpoint['id']}"
        answers.append(owner.get(path))
        answers.append(owner.get(f"{path}/messages"))
        message_id = owner.ok("GET", f"{path}/messages")["items"][0]["id"]
        answers.append(owner.get(f"{path}/messages/{message_id}"))
        answers.append(owner.post(f"{path}/messages/{message_id}/replay"))
        answers.append(owner.patch(path, json={"description": "canary", "enabled": True}))
    answers.append(owner.get(f"{CONSOLE}/projects/{project_id}/webhooks"))
    answers.append(owner.get(f"{CONSOLE}/projects/{project_id}/webhooks/metrics"))
    answers.append(owner.get(f"{CONSOLE}/orgs/{org_id}/audit?limit=100"))
    answers.append(hooks.backend("/v1/backend/events", secret_key))
    answers.append(hooks.client.get("/v1/config"))
    answers.append(owner.delete(f"{CONSOLE}/webhooks/{gone['id']}"))
    assert all(a.status_code < 500 for a in answers), [(a.request.url, a.status_code) for a in answers]
    structlog.get_logger("canary").info("probe", note="logs are captured")

    captured = capfd.readouterr()
    logs = captured.out + captured.err
    assert "logs are captured" in logs
    assert "webhook_endpoint_disabled" in logs  # the 410 raised an alert: alerts were in what was searched
    state = snapshot(hooks)
    audit = repr(state["audit_events"])
    attempts = repr(state["webhook_attempts"])
    database = repr(state)
    alerts = repr(standing())
    assert "webhook_endpoint_disabled" in alerts
    sent = repr([(r.headers, r.body) for r in delivered])
    for secret in secrets:
        # The whole secret and its key material without the prefix.
        for value in (secret, secret.split("_", 1)[1]):
            for response in answers:
                assert value not in response.text, f"a secret in {response.request.url}"
                assert value not in repr(response.headers.raw), (
                    f"a secret in headers of {response.request.url}"
                )
            assert value not in logs, "a secret in the logs"
            assert value not in audit, "a secret in the audit table"
            assert value not in attempts, "a secret in an attempt row"
            assert value not in alerts, "a secret in an alert"
            assert value not in sent, "a secret sent to a receiver"
            assert value not in database, "a secret in clear in the database"
    for response in answers:
        assert not SECRET_SHAPED.search(response.text), response.request.url
    assert not SECRET_SHAPED.search(logs)
    # The one-time answers hold their own secret, once, and no other.
    for response in one_time:
        assert response.headers["cache-control"] == "no-store"
        own = response.json()["secret"]
        assert response.text.count(own) == 1
        assert [s for s in secrets if s in response.text] == [own]
    # The audit trail does record the secret operations, without the receiver's query string.
    actions = next(json.loads(a.text) for a in answers if a.request.url.path.endswith("/audit"))["items"]
    kinds = {e["action"] for e in actions}
    assert {"webhook.endpoint_created", "webhook.secret_rotated", "webhook.secret_reveal_refused"} <= kinds
    assert "token=q" not in audit
