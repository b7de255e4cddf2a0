"""Verifying SEQN webhook deliveries (Standard Webhooks, `v1` HMAC-SHA256 signatures).

    from seqn_auth import WebhookVerifier, WebhookVerificationError

    webhooks = WebhookVerifier(os.environ["SEQN_WEBHOOK_SECRET"])  # whsec_…

    def receive(body: bytes, headers: Mapping[str, str]) -> None:
        try:
            event = webhooks.verify(body, headers)  # the parsed JSON body
        except WebhookVerificationError:
            return 400
        if already_seen(headers["webhook-id"]): ...  # deliveries are at least once

Pass the raw body bytes exactly as received: a re-serialized JSON body does not verify. During a
secret rotation give both secrets (`WebhookVerifier([new, old])`); a delivery carries one signature
per active secret and one match is enough.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from seqn_auth.errors import WebhookVerificationError

SECRET_PREFIX = "whsec_"  # noqa: S105 - a format prefix
DEFAULT_TOLERANCE = 300.0


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def _key(secret: str) -> bytes:
    try:
        return base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("a webhook secret is whsec_ followed by base64") from None


class WebhookVerifier:
    """Checks `webhook-id`, `webhook-timestamp` (within `tolerance` seconds either way) and
    `webhook-signature` (any of its space-separated `v1,<base64>` matching, compared in constant
    time). Never holds the secret in its repr."""

    def __init__(
        self,
        secret: str | Sequence[str],
        *,
        tolerance: float = DEFAULT_TOLERANCE,
        now: Callable[[], float] = time.time,
    ) -> None:
        secrets = [secret] if isinstance(secret, str) else list(secret)
        if not secrets:
            raise ValueError("at least one webhook secret is needed")
        self._keys = [_key(s) for s in secrets]
        self.tolerance, self.now = tolerance, now

    def __repr__(self) -> str:
        return f"WebhookVerifier(secrets={len(self._keys)}, tolerance={self.tolerance})"

    def sign(self, message_id: str, timestamp: int, body: bytes | str) -> str:
        """The `v1,…` signature of the first secret (for tests of your own receiver)."""
        raw = body.encode() if isinstance(body, str) else body
        return "v1," + base64.b64encode(self._mac(self._keys[0], message_id, str(timestamp), raw)).decode()

    @staticmethod
    def _mac(key: bytes, message_id: str, timestamp: str, body: bytes) -> bytes:
        signed = message_id.encode() + b"." + timestamp.encode() + b"." + body
        return hmac.new(key, signed, hashlib.sha256).digest()

    def verify(self, body: bytes | str, headers: Mapping[str, str]) -> Any:
        """The delivery's parsed JSON body, or WebhookVerificationError(reason)."""
        raw = body.encode() if isinstance(body, str) else body
        found = _lower(headers)
        message_id = found.get("webhook-id")
        timestamp = found.get("webhook-timestamp")
        signatures = found.get("webhook-signature")
        if not message_id or not timestamp or not signatures:
            raise WebhookVerificationError("missing-headers")
        if not (timestamp.isascii() and timestamp.isdigit()):
            raise WebhookVerificationError("bad-timestamp")
        sent, now = int(timestamp), self.now()
        if sent < now - self.tolerance:
            raise WebhookVerificationError("too-old")
        if sent > now + self.tolerance:
            raise WebhookVerificationError("too-new")
        expected = [self._mac(key, message_id, timestamp, raw) for key in self._keys]
        matched = False
        for candidate in signatures.split():
            version, _, encoded = candidate.partition(",")
            if version != "v1":
                continue
            try:
                given = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                continue
            for mac in expected:
                matched |= hmac.compare_digest(mac, given)
        if not matched:
            raise WebhookVerificationError("bad-signature")
        try:
            return json.loads(raw)
        except ValueError:
            raise WebhookVerificationError("malformed-body") from None
