"""Per-project signing keys (Ed25519 or P-256), rotation, the JWKS, and session-JWT issue and verify.

Verification pins the algorithm to the key's own (never the token header's choice) and looks the `kid`
up within the one project only, so `alg: none`, HS256-with-the-public-key and cross-project tokens fail.
"""

from __future__ import annotations

import json
import secrets
import warnings
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import BadSignatureError, ClaimError, JoseError, SecurityWarning
from joserfc.jwk import ECKey, OKPKey
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.audit.service import Actor, AuditAction, record
from silver_auth.core import clock, urls
from silver_auth.core.crypto import Sealer
from silver_auth.core.ids import looks_like, new_id
from silver_auth.projects.models import Project
from silver_auth.settings import Settings
from silver_auth.signing.models import SigningKey

ALGORITHMS = ("EdDSA", "ES256")
# `EdDSA` is the alg customers' verifiers pin (RFC 8037); joserfc warns on every use of it because
# RFC 9864 prefers the fully specified `Ed25519`, which many verifiers do not know yet.
warnings.filterwarnings("ignore", message="EdDSA is deprecated via RFC 9864", category=SecurityWarning)
# Clock skew tolerated between this service and a customer backend, and kept after a rotated key's
# last token expires before the key leaves the JWKS. Also the leeway customers are told to use.
LEEWAY = timedelta(seconds=30)
# `iat` and `nbf` are this much before the moment of issue (Clerk back-dates `nbf` likewise): a verifier
# whose clock runs a little behind, with no leeway (jose, PyJWT's default), must not see a fresh token as
# not yet valid. PyJWT checks `iat` against its clock as well as `nbf`, so both move; `exp` does not.
BACKDATE = timedelta(seconds=5)
SYSTEM_ACTOR = Actor("system")


def signing_key_context(kid: str) -> str:
    return f"signing_key:{kid}"


def _generate(algorithm: str) -> tuple[str, dict[str, Any]]:
    """A new private key (PKCS#8 PEM) and its public JWK."""
    private: OKPKey | ECKey
    if algorithm == "EdDSA":
        private = OKPKey.generate_key("Ed25519")
    elif algorithm == "ES256":
        private = ECKey.generate_key("P-256")
    else:
        raise ValueError(f"unsupported signing algorithm {algorithm!r}")
    return private.as_pem(private=True).decode(), dict(private.as_dict(private=False))


def _key(algorithm: str, material: str | dict[str, Any]) -> OKPKey | ECKey:
    """The key of `algorithm` from a PEM or a JWK; never a key of another type."""
    return OKPKey.import_key(material) if algorithm == "EdDSA" else ECKey.import_key(material)


async def _new_key(db: AsyncSession, settings: Settings, project_id: str) -> SigningKey:
    kid = new_id("sig")
    pem, public_jwk = _generate(settings.signing_algorithm)
    public_jwk.update(kid=kid, alg=settings.signing_algorithm, use="sig")
    key = SigningKey(
        id=kid,
        project_id=project_id,
        algorithm=settings.signing_algorithm,
        public_jwk=public_jwk,
        private_sealed=Sealer(settings.sealing_key_ring()).seal(pem, signing_key_context(kid)),
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
        lifetime = max(settings.session_jwt_seconds, settings.access_token_seconds)
        old.retire_at = now + timedelta(seconds=lifetime) + LEEWAY
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


async def published_jwks(db: AsyncSession, settings: Settings, project: Project) -> dict[str, Any]:
    """The project's JWKS, its first key made on first need (a verifier may fetch it before any token
    exists)."""
    await current_key(db, settings, project, actor=SYSTEM_ACTOR)
    return jwks(await published_keys(db, project.id))


@dataclass(frozen=True, slots=True)
class SessionClaims:
    """What the session JWT says, for issuing."""

    project_id: str
    environment: str
    user_id: str
    session_id: str
    origin: str | None = None
    """Where the session was started for: the origin of the code's redirect URL (no claim when None)."""


def issue_jwt(settings: Settings, key: SigningKey, claims: SessionClaims) -> tuple[str, datetime]:
    """A short-lived session JWT signed by `key`, and its expiry."""
    now = clock.now()
    expires = now + timedelta(seconds=settings.session_jwt_seconds)
    issued = int((now - BACKDATE).timestamp())
    payload: dict[str, Any] = {
        "iss": urls.session_jwt_issuer(settings.auth_url, claims.project_id),
        "sub": claims.user_id,
        "sid": claims.session_id,
        "aud": claims.project_id,
        "azp": claims.project_id,  # the authorized party is the project (its keys redeem the code)
        "env": claims.environment,
        "iat": issued,
        "nbf": issued,
        "exp": int(expires.timestamp()),
        "jti": secrets.token_urlsafe(16),
    }
    if claims.origin is not None:
        payload["origin"] = claims.origin
    return sign_token(settings, key, payload), expires


def sign_token(
    settings: Settings, key: SigningKey, payload: dict[str, Any], *, typ: str | None = None
) -> str:
    """A compact JWS of `payload` signed by `key` (its `kid` and alg in the header, and `typ` if given)."""
    private = _key(
        key.algorithm,
        Sealer(settings.sealing_key_ring()).unseal(key.private_sealed, signing_key_context(key.id)),
    )
    header: dict[str, Any] = {"alg": key.algorithm, "kid": key.id}
    if typ is not None:
        header["typ"] = typ
    return jwt.encode(header, payload, private, algorithms=[key.algorithm])


class TokenRejected(Exception):
    """A session JWT that does not verify; `reason` is a stable slug for the backend API."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


REQUIRED_CLAIMS = ("iss", "sub", "sid", "aud", "env", "iat", "nbf", "exp", "jti")


def _unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and claims of a compact JWS, before any key is chosen; TokenRejected if malformed."""
    try:
        parts = jws.extract_compact(token.encode())
        header, claims = parts.headers(), json.loads(parts.payload)
    except (JoseError, ValueError):  # ValueError: not JSON, or not UTF-8
        raise TokenRejected("malformed") from None
    if not isinstance(claims, dict) or not isinstance(header.get("kid", ""), str):
        raise TokenRejected("malformed")
    return header, claims


CLAIM_REASONS = {"iss": "wrong-issuer", "exp": "expired", "nbf": "not-yet-valid", "iat": "not-yet-valid"}


async def verify_jwt(db: AsyncSession, settings: Settings, project_id: str, token: str) -> dict[str, Any]:
    """The claims of a valid session JWT of `project_id`, else TokenRejected(reason)."""
    header, unverified = _unverified(token)
    if unverified.get("aud") != project_id:
        raise TokenRejected("wrong-project")
    if header.get("typ", "JWT") != "JWT":  # an access or logout token is never a session JWT
        raise TokenRejected("malformed")
    claims = await _signed_claims(db, project_id, token, header)
    options: dict[str, jwt.ClaimsOption] = {name: {"essential": True} for name in REQUIRED_CLAIMS}
    options["iss"] = {"essential": True, "value": urls.session_jwt_issuer(settings.auth_url, project_id)}
    options["aud"] = {"essential": True, "value": project_id}
    validate_claims(claims, options)
    return claims


async def verify_signed(
    db: AsyncSession, project_id: str, token: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and claims of a token signed by one of `project_id`'s published keys, with no claim
    checked yet (the caller's kind of token decides which); TokenRejected(reason) otherwise."""
    header, _ = _unverified(token)
    return header, await _signed_claims(db, project_id, token, header)


def validate_claims(claims: dict[str, Any], options: dict[str, jwt.ClaimsOption]) -> None:
    """Check `claims` against `options`, times by the service clock with the customers' leeway."""
    expected = jwt.JWTClaimsRegistry(
        now=lambda: int(clock.now().timestamp()), leeway=int(LEEWAY.total_seconds()), **options
    )
    try:
        expected.validate(claims)
    except ClaimError as error:
        raise TokenRejected(CLAIM_REASONS.get(error.claim, "malformed")) from None


async def _signed_claims(
    db: AsyncSession, project_id: str, token: str, header: dict[str, Any]
) -> dict[str, Any]:
    kid = header.get("kid")
    if not isinstance(kid, str) or not looks_like("sig", kid):
        raise TokenRejected("unknown-kid")
    key = await db.scalar(select(SigningKey).where(_published(project_id), SigningKey.id == kid))
    if key is None:
        raise TokenRejected("unknown-kid")
    if header.get("alg") != key.algorithm:  # alg none, HS256 with the public key, another curve
        raise TokenRejected("bad-signature")
    try:
        claims = jwt.decode(token, _key(key.algorithm, key.public_jwk), algorithms=[key.algorithm]).claims
    except BadSignatureError:
        raise TokenRejected("bad-signature") from None
    except JoseError:
        raise TokenRejected("malformed") from None
    return dict(claims)
