"""Endpoint secrets and the Standard Webhooks headers (G31): `v1` HMAC-SHA256 with the `standardwebhooks`
library, or `v1a` Ed25519 for receivers that should hold no secret at all."""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from standardwebhooks.webhooks import Webhook

HMAC_PREFIX = "whsec_"
ED25519_SECRET_PREFIX = "whsk_"  # noqa: S105 - a format prefix
ED25519_PUBLIC_PREFIX = "whpk_"
SECRET_BYTES = 32


@dataclass(frozen=True, slots=True)
class EndpointSecret:
    secret: str
    """`whsec_…` or `whsk_…`: sealed at rest, shown once."""
    public_key: str | None
    """`whpk_…` for Ed25519 endpoints."""


def new_secret(signing: str) -> EndpointSecret:
    if signing == "hmac":
        return EndpointSecret(
            HMAC_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode(), None
        )
    private = Ed25519PrivateKey.generate()
    seed = private.private_bytes_raw()
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return EndpointSecret(
        ED25519_SECRET_PREFIX + base64.b64encode(seed).decode(),
        ED25519_PUBLIC_PREFIX + base64.b64encode(public).decode(),
    )


def signature(secret: str, message_id: str, timestamp: datetime, body: str) -> str:
    """One `v1,…` or `v1a,…` signature of `{id}.{timestamp}.{body}`."""
    if secret.startswith(ED25519_SECRET_PREFIX):
        seed = base64.b64decode(secret.removeprefix(ED25519_SECRET_PREFIX))
        signed = f"{message_id}.{int(timestamp.timestamp())}.{body}".encode()
        raw = Ed25519PrivateKey.from_private_bytes(seed).sign(signed)
        return "v1a," + base64.b64encode(raw).decode()
    return Webhook(secret).sign(message_id, timestamp, body)


def headers(active_secrets: list[str], message_id: str, timestamp: datetime, body: str) -> dict[str, str]:
    """The three Standard Webhooks headers; during a rotation's overlap one signature per secret,
    space-separated, as the spec allows."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": " ".join(signature(s, message_id, timestamp, body) for s in active_secrets),
    }
