"""Keyed hashes for lookups (G17), sealing for secrets the server must use again, random tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import string
from collections.abc import Callable

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

BASE62 = string.ascii_letters + string.digits
SEAL_VERSION = "v1"


class SealError(ValueError):
    """A sealed value could not be opened (unknown key id, tampered or truncated)."""


def random_base62(length: int) -> str:
    return "".join(secrets.choice(BASE62) for _ in range(length))


def keyed_hash(pepper: bytes, value: str) -> str:
    """HMAC-SHA256 of a secret under the server pepper: a fast, indexable lookup value."""
    return hmac.new(pepper, value.encode(), hashlib.sha256).hexdigest()


Hasher = Callable[[str], str]
"""A keyed hash under one server pepper (see `keyed_hasher`)."""


def keyed_hasher(pepper: bytes) -> Hasher:
    """`keyed_hash` under one pepper, for hot paths: the HMAC key set-up (slow with OpenSSL 3) runs once."""
    prepared = hmac.new(pepper, digestmod=hashlib.sha256)

    def keyed(value: str) -> str:
        mac = prepared.copy()
        mac.update(value.encode())
        return mac.hexdigest()

    return keyed


def token_hash(token: str) -> str:
    """SHA-256 of a high-entropy random token (session, invitation): enough for lookup, useless if leaked."""
    return hashlib.sha256(token.encode()).hexdigest()


def sign(secret: bytes, value: str) -> str:
    return (
        base64.urlsafe_b64encode(hmac.new(secret, value.encode(), hashlib.sha256).digest())
        .decode()
        .rstrip("=")
    )


def verify_signature(secret: bytes, value: str, signature: str) -> bool:
    # Compare bytes: compare_digest raises TypeError on non-ASCII str, and a forged cookie or
    # X-CSRF-Token header may carry any Latin-1 character.
    return hmac.compare_digest(sign(secret, value).encode(), signature.encode("utf-8", "surrogateescape"))


class Sealer:
    """AES-GCM sealing for secrets the server must use again (G17): seals under the ring's first key,
    opens with any key of the ring (so a new sealing key can be added before old values are resealed).
    `context` binds a value to its owner (AAD): copied onto another row, it does not open."""

    __slots__ = ("_keys", "_ring")

    def __init__(self, ring: list[tuple[str, bytes]]) -> None:
        if not ring:
            raise ValueError("a sealer needs at least one key")
        self._ring = ring
        self._keys = dict(ring)

    def seal(self, plaintext: str, context: str) -> str:
        kid, key = self._ring[0]
        nonce = secrets.token_bytes(12)
        body = AESGCM(key).encrypt(nonce, plaintext.encode(), context.encode())
        return f"{SEAL_VERSION}.{kid}.{base64.urlsafe_b64encode(nonce + body).decode()}"

    @property
    def sealing_kid(self) -> str:
        """The id of the key that seals (the ring's first)."""
        return self._ring[0][0]

    def holds_key_of(self, sealed: str) -> bool:
        """Whether the key id a sealed value names is in the ring (the id is not secret)."""
        parts = sealed.split(".", 2)
        return len(parts) == 3 and parts[1] in self._keys

    def resealed(self, sealed: str, context: str) -> str | None:
        """The value sealed again under the ring's first key, or None when it is under that key already.
        Either way it must open (SealError otherwise): a reseal also proves every value still opens."""
        plaintext = self.unseal(sealed, context)
        if sealed.split(".", 2)[1] == self.sealing_kid:
            return None
        return self.seal(plaintext, context)

    def unseal(self, sealed: str, context: str) -> str:
        try:
            version, kid, payload = sealed.split(".", 2)
            key = self._keys[kid]
            raw = base64.urlsafe_b64decode(payload)
            if version != SEAL_VERSION:
                raise SealError("unknown seal version")
            return AESGCM(key).decrypt(raw[:12], raw[12:], context.encode()).decode()
        except SealError:
            raise
        except Exception:  # any failure (unknown kid, bad base64, InvalidTag) means the same to the caller
            raise SealError("sealed value cannot be opened with the configured key ring") from None
