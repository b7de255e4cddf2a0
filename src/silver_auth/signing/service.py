"""Per-project signing keys (Ed25519 or P-256), rotation, the JWKS, and session-JWT issue and verify.

Verification pins the algorithm to the key's own (never the token header's choice) and looks the `kid`
up within the one project only, so `alg: none`, HS256-with-the-public-key and cross-project tokens fail.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from jwt.algorithms import ECAlgorithm, OKPAlgorithm
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.audit.service import Actor, AuditAction, record
from silver_auth.core import clock, urls
from silver_auth.core.crypto import seal, unseal
from silver_auth.core.ids import looks_like, new_id
from silver_auth.projects.models import Project
from silver_auth.settings import Settings
from silver_auth.signing.models import SigningKey

ALGORITHMS = ("EdDSA", "ES256")
# Clock skew tolerated between this service and a customer backend, and kept after a rotated key's
# last token expires before the key leaves the JWKS.
LEEWAY = timedelta(seconds=30)
SYSTEM_ACTOR = Actor("system")


def _context(kid: str) -> str:
    return f"signing_key:{kid}"


def _generate(algorithm: str) -> tuple[str, dict[str, Any]]:
    """A new private key (PKCS#8 PEM) and its public JWK."""
    private: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey
    if algorithm == "EdDSA":
        okp = ed25519.Ed25519PrivateKey.generate()
        private, public_jwk = okp, json.loads(OKPAlgorithm.to_jwk(okp.public_key()))
    elif algorithm == "ES256":
        curve = ec.generate_private_key(ec.SECP256R1())
        private, public_jwk = curve, json.loads(ECAlgorithm.to_jwk(curve.public_key()))
    else:
        raise ValueError(f"unsupported signing algorithm {algorithm!r}")
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return pem, public_jwk


async def _new_key(db: AsyncSession, settings: Settings, project_id: str) -> SigningKey:
    kid = new_id("sig")
    pem, public_jwk = _generate(settings.signing_algorithm)
    public_jwk.update(kid=kid, alg=settings.signing_algorithm, use="sig")
    key = SigningKey(
        id=kid,
        project_id=project_id,
        algorithm=settings.signing_algorithm,
        public_jwk=public_jwk,
        private_sealed=seal(settings.sealing_key_ring(), pem, _context(kid)),
        created_at=clock.now(),
        rotated_at=None,
        retire_at=None,
    )
    db.add(key)
    await db.flush()
    return key


async def current_key(db: AsyncSession, settings: Settings, project: Project, *, actor: Actor) -> SigningKey:
    """The project's current signing key, created on first need."""
    query = (
        select(SigningKey)
        .where(SigningKey.project_id == project.id, SigningKey.rotated_at.is_(None))
        .order_by(SigningKey.created_at.desc())
    )
    key = await db.scalar(query)
    if key is not None:
        return key
    # First need: lock the project row so two first requests do not both create a "current" key.
    await db.execute(select(Project.id).where(Project.id == project.id).with_for_update())
    key = await db.scalar(query)
    if key is not None:
        return key
    key = await _new_key(db, settings, project.id)
    await record(
        db,
        AuditAction.SIGNING_KEY_CREATED,
        actor=actor,
        org_id=project.org_id,
        project_id=project.id,
        target=key.id,
        metadata={"algorithm": key.algorithm},
    )
    return key


async def rotate(db: AsyncSession, settings: Settings, project: Project, *, actor: Actor) -> SigningKey:
    """A new current key; the previous one stays published until every token it signed has expired."""
    await db.execute(select(Project.id).where(Project.id == project.id).with_for_update())
    now = clock.now()
    previous = list(
        (
            await db.scalars(
                select(SigningKey).where(SigningKey.project_id == project.id, SigningKey.rotated_at.is_(None))
            )
        ).all()
    )
    for old in previous:
        old.rotated_at = now
        old.retire_at = now + timedelta(seconds=settings.session_jwt_seconds) + LEEWAY
    key = await _new_key(db, settings, project.id)
    await record(
        db,
        AuditAction.SIGNING_KEY_ROTATED,
        actor=actor,
        org_id=project.org_id,
        project_id=project.id,
        target=key.id,
        metadata={"algorithm": key.algorithm, "previous": [k.id for k in previous]},
    )
    return key


def _published(project_id: str) -> Any:
    now = clock.now()
    return (SigningKey.project_id == project_id) & or_(
        SigningKey.rotated_at.is_(None), SigningKey.retire_at > now
    )


async def published_keys(db: AsyncSession, project_id: str) -> list[SigningKey]:
    """Keys that may still have live tokens: the current one and rotated ones not yet retired."""
    rows = await db.scalars(select(SigningKey).where(_published(project_id)).order_by(SigningKey.created_at))
    return list(rows.all())


async def all_keys(db: AsyncSession, project_id: str) -> list[SigningKey]:
    rows = await db.scalars(
        select(SigningKey).where(SigningKey.project_id == project_id).order_by(SigningKey.created_at.desc())
    )
    return list(rows.all())


def signing_key_status(key: SigningKey) -> str:
    if key.rotated_at is None:
        return "current"
    return "retired" if key.retire_at is not None and key.retire_at <= clock.now() else "previous"


def jwks(keys: list[SigningKey]) -> dict[str, Any]:
    """Only public members: a JWK copy never holds `d`."""
    return {"keys": [{k: v for k, v in key.public_jwk.items() if k != "d"} for key in keys]}


@dataclass(frozen=True, slots=True)
class SessionClaims:
    """What the session JWT says, for issuing."""

    project_id: str
    environment: str
    user_id: str
    session_id: str


def issue_jwt(settings: Settings, key: SigningKey, claims: SessionClaims) -> tuple[str, datetime]:
    """A short-lived session JWT signed by `key`, and its expiry."""
    now = clock.now()
    expires = now + timedelta(seconds=settings.session_jwt_seconds)
    payload = {
        "iss": urls.session_jwt_issuer(settings.auth_url, claims.project_id),
        "sub": claims.user_id,
        "sid": claims.session_id,
        "aud": claims.project_id,
        "azp": claims.project_id,
        "env": claims.environment,
        "iat": int(now.timestamp()),
        "nbf": int(now.timestamp()),
        "exp": int(expires.timestamp()),
        "jti": secrets.token_urlsafe(16),
    }
    private = unseal(settings.sealing_key_ring(), key.private_sealed, _context(key.id))
    token = jwt.encode(payload, private, algorithm=key.algorithm, headers={"kid": key.id})
    return token, expires


class TokenRejected(Exception):
    """A session JWT that does not verify; `reason` is a stable slug for the backend API."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


REQUIRED_CLAIMS = ("iss", "sub", "sid", "aud", "env", "iat", "nbf", "exp", "jti")


async def verify_jwt(db: AsyncSession, settings: Settings, project_id: str, token: str) -> dict[str, Any]:
    """The claims of a valid session JWT of `project_id`, else TokenRejected(reason)."""
    try:
        header = jwt.get_unverified_header(token)
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise TokenRejected("malformed") from None
    kid = header.get("kid")
    if unverified.get("aud") != project_id:
        raise TokenRejected("wrong-project")
    if not isinstance(kid, str) or not looks_like("sig", kid):
        raise TokenRejected("unknown-kid")
    key = await db.scalar(select(SigningKey).where(_published(project_id), SigningKey.id == kid))
    if key is None:
        raise TokenRejected("unknown-kid")
    if header.get("alg") != key.algorithm:  # alg none, HS256 with the public key, another curve
        raise TokenRejected("bad-signature")
    try:
        # Expiry is checked against the service clock below, with the same leeway customers get.
        claims: dict[str, Any] = jwt.decode(
            token,
            jwt.PyJWK(key.public_jwk).key,
            algorithms=[key.algorithm],
            audience=project_id,
            issuer=urls.session_jwt_issuer(settings.auth_url, project_id),
            options={
                "require": list(REQUIRED_CLAIMS),
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
            },
        )
    except jwt.InvalidSignatureError:
        raise TokenRejected("bad-signature") from None
    except jwt.InvalidIssuerError:
        raise TokenRejected("wrong-issuer") from None
    except jwt.PyJWTError:
        raise TokenRejected("malformed") from None
    now = clock.now().timestamp()
    leeway = LEEWAY.total_seconds()
    if not isinstance(claims["exp"], int | float) or now >= claims["exp"] + leeway:
        raise TokenRejected("expired")
    if not isinstance(claims["nbf"], int | float) or now < claims["nbf"] - leeway:
        raise TokenRejected("not-yet-valid")
    return claims
