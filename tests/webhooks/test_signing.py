"""Signature schemes on real deliveries (G31): `v1a` Ed25519 endpoints verified with `cryptography`
against the `whpk_` key of the create answer, and secret rotation with an overlap, when each delivery
carries one signature per live secret (`v1,… v1,…` or `v1a,… v1a,…`), then the new one alone."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from silver_auth.core import clock
from tests.factories import ConsoleUser, Harness
from tests.webhooks.support import Received, deliver, hooks, project_with_endpoint, receiver

__all__ = ["hooks"]

OVERLAP_HOURS = 0.01
"""36 s: past it, the service clock is still within the receivers' 5-minute timestamp tolerance."""


def signatures(got: Received) -> list[tuple[str, str]]:
    """(version, base64) of each signature in the header."""
    parts = (entry.partition(",") for entry in got.headers["webhook-signature"].split(" "))
    return [(version, encoded) for version, _, encoded in parts]


def ed25519_signers(got: Received, public_keys: dict[str, str]) -> list[set[str]]:
    """For each signature of the delivery, the names of the keys it verifies with."""
    signed = f"{got.headers['webhook-id']}.{got.headers['webhook-timestamp']}.".encode() + got.body
    keys = {
        name: Ed25519PublicKey.from_public_bytes(base64.b64decode(key.removeprefix("whpk_")))
        for name, key in public_keys.items()
    }
    found = []
    for version, encoded in signatures(got):
        assert version == "v1a"
        matching = set()
        for name, key in keys.items():
            try:
                key.verify(base64.b64decode(encoded), signed)
            except InvalidSignature:
                continue
            matching.add(name)
        found.append(matching)
    return found


def send_test(harness: Harness, owner: ConsoleUser, endpoint_id: str, target: Any) -> Received:
    before = len(target.received)
    owner.ok("POST", f"/console/api/webhooks/{endpoint_id}/test", 202)
    deliver(harness)
    assert len(target.received) == before + 1
    got: Received = target.received[-1]
    return got


def test_g31_ed25519_endpoint_signs_v1a_that_verifies_with_the_whpk_key(hooks: Harness) -> None:
    with receiver() as target:
        owner, _, endpoint = project_with_endpoint(hooks, target.url, signing="ed25519")
        assert endpoint["signing"] == "ed25519"
        assert endpoint["secret"].startswith("whsk_") and endpoint["public_key"].startswith("whpk_")
        raw = base64.b64decode(endpoint["public_key"].removeprefix("whpk_"))
        assert len(raw) == 32  # the raw Ed25519 public key, base64
        got = send_test(hooks, owner, endpoint["id"], target)
    [(version, encoded)] = signatures(got)
    assert version == "v1a"
    signed = f"{got.headers['webhook-id']}.{got.headers['webhook-timestamp']}.".encode() + got.body
    key = Ed25519PublicKey.from_public_bytes(raw)
    key.verify(base64.b64decode(encoded), signed)  # raises unless it verifies
    with pytest.raises(InvalidSignature):
        key.verify(base64.b64decode(encoded), signed.replace(b"test", b"tset"))
    other = project_with_endpoint(hooks, target.url, signing="ed25519")[2]["public_key"]
    assert ed25519_signers(got, {"other": other}) == [set()]
    # Standard Webhooks' HMAC verifiers find no `v1` signature to check: the receiver needs the key.
    with pytest.raises(WebhookVerificationError):
        Webhook(base64.b64encode(b"x" * 32).decode()).verify(got.body, got.headers)


def test_ed25519_rotation_with_overlap_signs_with_both_keys_then_the_new_one(hooks: Harness) -> None:
    with receiver() as target:
        owner, _, endpoint = project_with_endpoint(hooks, target.url, signing="ed25519")
        rotated = owner.ok(
            "POST",
            f"/console/api/webhooks/{endpoint['id']}/rotate-secret",
            200,
            json={"overlap_hours": OVERLAP_HOURS},
        )
        assert rotated["public_key"] != endpoint["public_key"]
        assert rotated["previous_public_key"] == endpoint["public_key"]
        keys = {"old": endpoint["public_key"], "new": rotated["public_key"]}
        during = send_test(hooks, owner, endpoint["id"], target)
        clock.advance(OVERLAP_HOURS * 3600 + 1)
        after = send_test(hooks, owner, endpoint["id"], target)
    # Two signatures, each by its own key.
    assert sorted(ed25519_signers(during, keys), key=sorted) == [{"new"}, {"old"}]
    assert ed25519_signers(after, keys) == [{"new"}]


def test_hmac_rotation_with_overlap_signs_with_both_secrets_then_the_new_one(hooks: Harness) -> None:
    with receiver() as target:
        owner, _, endpoint = project_with_endpoint(hooks, target.url)
        old = endpoint["secret"]
        rotated = owner.ok(
            "POST",
            f"/console/api/webhooks/{endpoint['id']}/rotate-secret",
            200,
            json={"overlap_hours": OVERLAP_HOURS},
        )
        new = rotated["secret"]
        assert new != old and new.startswith("whsec_")
        assert rotated["previous_secret_until"] is not None
        during = send_test(hooks, owner, endpoint["id"], target)
        clock.advance(OVERLAP_HOURS * 3600 + 1)
        after = send_test(hooks, owner, endpoint["id"], target)

    def expected(secret: str, got: Received) -> str:
        """What the independent library computes for this secret and delivery."""
        at = datetime.fromtimestamp(int(got.headers["webhook-timestamp"]), tz=UTC)
        return Webhook(secret).sign(got.headers["webhook-id"], at, got.body.decode())

    # During the overlap: two `v1,` signatures, one per secret, and either secret verifies.
    assert sorted(during.headers["webhook-signature"].split(" ")) == sorted(
        [expected(old, during), expected(new, during)]
    )
    for secret in (old, new):
        Webhook(secret).verify(during.body, during.headers)
    # After it: the new secret alone.
    assert after.headers["webhook-signature"] == expected(new, after)
    Webhook(new).verify(after.body, after.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(after.body, after.headers)
