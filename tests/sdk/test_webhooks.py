"""The SDK's webhook verifier against real deliveries of the service's worker, the service's own
signer (with a rotation's two signatures), and svix as an independent Standard Webhooks signer."""

from __future__ import annotations

import base64
import json
import secrets
import time
from datetime import UTC, datetime, timedelta

import pytest
from svix.webhooks import Webhook as SvixWebhook

from seqn_auth import WebhookVerificationError, WebhookVerifier
from silver_auth.webhooks import signer
from tests.factories import Harness
from tests.webhooks.support import deliver, hooks, project_with_endpoint, receiver

__all__ = ["hooks"]


def _secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def test_a_real_delivery_verifies_and_a_tampered_one_does_not(hooks: Harness) -> None:
    with receiver() as target:
        owner, _, endpoint = project_with_endpoint(hooks, target.url)
        sent = owner.ok("POST", f"/console/api/webhooks/{endpoint['id']}/test", 202)
        assert deliver(hooks) == 1
    got = target.received[0]
    verifier = WebhookVerifier(endpoint["secret"])
    event = verifier.verify(got.body, got.headers)
    assert event["type"] == "webhook.test"
    assert got.headers["webhook-id"] == sent["id"]
    assert "whsec" not in repr(verifier)

    with pytest.raises(WebhookVerificationError) as refused:
        verifier.verify(got.body + b" ", got.headers)
    assert refused.value.reason == "bad-signature"
    with pytest.raises(WebhookVerificationError) as refused:
        WebhookVerifier(_secret()).verify(got.body, got.headers)
    assert refused.value.reason == "bad-signature"
    stale = {**got.headers, "webhook-timestamp": str(int(time.time()) - 301)}
    with pytest.raises(WebhookVerificationError) as refused:
        verifier.verify(got.body, stale)
    assert refused.value.reason == "too-old"  # the signature covers the timestamp anyway
    ahead = {**got.headers, "webhook-timestamp": str(int(time.time()) + 301)}
    with pytest.raises(WebhookVerificationError) as refused:
        verifier.verify(got.body, ahead)
    assert refused.value.reason == "too-new"
    without = {k: v for k, v in got.headers.items() if k != "webhook-signature"}
    with pytest.raises(WebhookVerificationError) as refused:
        verifier.verify(got.body, without)
    assert refused.value.reason == "missing-headers"


def test_the_service_signer_with_two_secrets_and_svix_as_another_signer() -> None:
    old, new = _secret(), _secret()
    body = json.dumps({"type": "user.created", "timestamp": "2026-01-01T00:00:00Z", "data": {"id": "usr_1"}})
    now = datetime.now(UTC)
    headers = signer.headers([new, old], "msg_1", now, body)
    assert len(headers["webhook-signature"].split()) == 2
    for secret in (new, old):  # a receiver that has either secret accepts the rotation's delivery
        assert WebhookVerifier(secret).verify(body, headers)["data"] == {"id": "usr_1"}
    assert WebhookVerifier([_secret(), old]).verify(body.encode(), headers)["type"] == "user.created"

    signed = SvixWebhook(new).sign("msg_2", now, body)
    svix_headers = {
        "Webhook-Id": "msg_2",
        "Webhook-Timestamp": str(int(now.timestamp())),
        "Webhook-Signature": signed,
    }
    assert WebhookVerifier(new).verify(body, svix_headers)["type"] == "user.created"
    # ...and what the SDK signs, svix verifies
    mine = WebhookVerifier(new).sign("msg_3", int(now.timestamp()), body)
    SvixWebhook(new).verify(
        body,
        {"webhook-id": "msg_3", "webhook-timestamp": str(int(now.timestamp())), "webhook-signature": mine},
    )
    # a signature of another version or of junk is skipped, not fatal, when a good one follows
    mixed = {**svix_headers, "Webhook-Signature": f"v1a,AAAA v1,!!! {signed}"}
    assert WebhookVerifier(new).verify(body, mixed)
    with pytest.raises(WebhookVerificationError):
        WebhookVerifier(new, now=(now + timedelta(minutes=6)).timestamp).verify(body, svix_headers)
    with pytest.raises(WebhookVerificationError) as refused:
        WebhookVerifier(new).verify("not json", signer.headers([new], "m", now, "not json"))
    assert refused.value.reason == "malformed-body"
