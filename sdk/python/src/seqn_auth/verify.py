"""Offline verification of SEQN session JWTs and OAuth access tokens against the project's JWKS.

    from seqn_auth import TokenVerifier

    verifier = TokenVerifier("https://auth.example.com", "prj_…", "live")
    claims = verifier.verify_session(token)  # SessionClaims, or TokenVerificationError(reason)
    print(claims.user_id, claims.session_id)

`AsyncTokenVerifier` is the same with `await`. Offline means no call to the API per token: a token
stays valid until its `exp` even if its session was revoked meanwhile (session JWTs live about a
minute). For a live check of the session, call `SeqnClient.verify_session` instead.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from joserfc import jws, jwt
from joserfc.errors import BadSignatureError, JoseError
from joserfc.jwk import ECKey, OKPKey

from seqn_auth.errors import JWKSUnavailableError, TokenVerificationError

try:  # joserfc warns on every EdDSA use (RFC 9864 prefers `Ed25519`); EdDSA is what SEQN signs with
    from joserfc.errors import SecurityWarning

    warnings.filterwarnings("ignore", message="EdDSA is deprecated", category=SecurityWarning)
except ImportError:  # pragma: no cover - older joserfc has no such warning
    pass

ALGORITHMS = frozenset({"EdDSA", "ES256"})
_KEY_TYPES = {"EdDSA": ("OKP", "Ed25519"), "ES256": ("EC", "P-256")}
ACCESS_TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})
DEFAULT_LEEWAY = 30.0
DEFAULT_JWKS_TTL = 300.0
MAX_JWKS_TTL = 86_400.0
MIN_REFETCH_INTERVAL = 30.0
_MAX_AGE = re.compile(r"(?:^|,)\s*(?:s-)?max-age\s*=\s*\"?(\d+)\"?", re.IGNORECASE)
_NO_CACHE = re.compile(r"(?:^|,)\s*(?:no-store|no-cache)\s*(?:,|$)", re.IGNORECASE)
ENVIRONMENTS = ("test", "live")


@dataclass(frozen=True, slots=True)
class SessionClaims:
    """A verified session JWT."""

    user_id: str
    """`sub`: the end-user's id (`usr_…`)."""
    session_id: str
    """`sid`: the session's id, for revocation through the backend API."""
    project_id: str
    environment: str
    issued_at: int
    expires_at: int
    token_id: str
    """`jti`."""
    origin: str | None
    """The origin of the redirect URL the session was started for, when the token has one."""
    claims: Mapping[str, Any] = field(repr=False)
    """Every claim, as signed."""


@dataclass(frozen=True, slots=True)
class AccessTokenClaims:
    """A verified OAuth 2.0 access token (RFC 9068 JWT profile) of the project's OpenID Provider."""

    user_id: str
    session_id: str | None
    client_id: str
    scopes: tuple[str, ...]
    project_id: str
    environment: str
    issued_at: int
    expires_at: int
    token_id: str
    claims: Mapping[str, Any] = field(repr=False)

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes


def _max_age(cache_control: str | None, default: float) -> float:
    """Seconds to keep a JWKS answer: its Cache-Control max-age, capped at a day; `no-cache` or
    `no-store` still keep it for the refetch interval, so each token does not cost a request."""
    if not cache_control:
        return default
    if _NO_CACHE.search(cache_control):
        return MIN_REFETCH_INTERVAL
    found = _MAX_AGE.search(cache_control)
    return min(float(found.group(1)), MAX_JWKS_TTL) if found else default


def _import_keys(document: Any) -> dict[str, tuple[str, OKPKey | ECKey]]:
    """kid -> (alg, key) of the usable keys: EdDSA or ES256 signing keys with a kid. A key with
    another alg, a missing alg, a mismatched key type or private members is left out."""
    keys: dict[str, tuple[str, OKPKey | ECKey]] = {}
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWKS")
    for jwk in document["keys"]:
        if not isinstance(jwk, dict):
            continue
        kid, alg = jwk.get("kid"), jwk.get("alg")
        if not isinstance(kid, str) or alg not in ALGORITHMS or "d" in jwk:
            continue
        if jwk.get("use", "sig") != "sig":
            continue
        kty, crv = _KEY_TYPES[alg]
        if jwk.get("kty") != kty or jwk.get("crv") != crv:
            continue
        try:
            key: OKPKey | ECKey = OKPKey.import_key(jwk) if kty == "OKP" else ECKey.import_key(jwk)
        except (JoseError, ValueError, TypeError):
            continue
        keys[kid] = (alg, key)
    return keys


class _KeyCache:
    """The JWKS as last fetched, when it goes stale, and when an unknown kid last forced a refetch.

    An unknown kid refetches at most once per `min_refetch_interval` (a rotation shows up at once;
    a flood of invented kids costs one request per interval, not one per token).
    """

    def __init__(self, ttl: float, min_refetch_interval: float, monotonic: Callable[[], float]) -> None:
        self.ttl, self.min_refetch_interval, self.monotonic = ttl, min_refetch_interval, monotonic
        self.keys: dict[str, tuple[str, OKPKey | ECKey]] | None = None
        self.stale_at = 0.0
        self.last_fetch: float | None = None

    def fresh(self) -> bool:
        return self.keys is not None and self.monotonic() < self.stale_at

    def may_refetch(self) -> bool:
        return self.last_fetch is None or self.monotonic() - self.last_fetch >= self.min_refetch_interval

    def lookup(self, kid: str) -> tuple[str, OKPKey | ECKey] | None:
        return None if self.keys is None else self.keys.get(kid)

    def store(self, response: httpx.Response) -> None:
        self.last_fetch = self.monotonic()
        if response.status_code != 200:
            self.failed(JWKSUnavailableError(f"the JWKS answered {response.status_code}"))
            return
        try:
            keys = _import_keys(response.json())
        except ValueError:
            self.failed(JWKSUnavailableError("the JWKS is not a JSON key set"))
            return
        self.keys = keys
        self.stale_at = self.last_fetch + _max_age(response.headers.get("cache-control"), self.ttl)

    def failed(self, error: Exception) -> None:
        """A fetch failed: keep serving the keys we had (a JWKS outage must not sign everyone out)."""
        self.last_fetch = self.monotonic()
        if self.keys is None:
            if isinstance(error, JWKSUnavailableError):
                raise error
            raise JWKSUnavailableError(f"the JWKS could not be fetched: {type(error).__name__}") from error
        # Stale keys keep serving; try again after the refetch interval rather than on every token.
        self.stale_at = self.last_fetch + self.min_refetch_interval


def _header_and_claims(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    try:
        parts = jws.extract_compact(token.encode("ascii"))
        header, claims = dict(parts.headers()), json.loads(parts.payload)
    except (JoseError, ValueError, UnicodeError):
        raise TokenVerificationError("malformed", "not a compact JWS with a JSON payload") from None
    if not isinstance(claims, dict):
        raise TokenVerificationError("malformed", "the payload is not a JSON object")
    return header, claims


def _audiences(claims: Mapping[str, Any]) -> list[Any]:
    aud = claims.get("aud")
    return aud if isinstance(aud, list) else [aud]


class _Rules:
    """What every verifier checks, whatever its transport."""

    def __init__(
        self,
        auth_url: str,
        project_id: str,
        environment: str,
        *,
        leeway: float,
        now: Callable[[], float],
    ) -> None:
        if environment not in ENVIRONMENTS:
            raise ValueError(f"environment must be 'test' or 'live', not {environment!r}")
        self.auth_url = auth_url.rstrip("/")
        self.project_id, self.environment = project_id, environment
        self.leeway, self.now = leeway, now
        self.jwks_url = f"{self.auth_url}/v1/projects/{project_id}/jwks.json"
        self.session_issuer = f"{self.auth_url}/p/{project_id}"
        self.access_token_issuer = f"{self.auth_url}/p/{project_id}/{environment}"

    def before_key(self, token: str, *, access_token: bool) -> tuple[dict[str, Any], dict[str, Any], str]:
        """Checks that need no key, so another project's tokens and junk never cost a JWKS fetch."""
        if not isinstance(token, str) or not token:
            raise TokenVerificationError("malformed", "empty token")
        header, claims = _header_and_claims(token)
        typ = header.get("typ")
        is_access = isinstance(typ, str) and typ.lower() in ACCESS_TOKEN_TYPES
        if is_access != access_token:
            expected = "an access token (typ at+jwt)" if access_token else "a session JWT"
            raise TokenVerificationError("wrong-token-type", f"expected {expected}")
        if self.project_id not in _audiences(claims):
            raise TokenVerificationError("wrong-project", "aud is not this project")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise TokenVerificationError("unknown-kid", "no kid in the header")
        if header.get("alg") not in ALGORITHMS:
            raise TokenVerificationError("bad-signature", "alg is not EdDSA or ES256")
        return header, claims, kid

    def signed_claims(self, token: str, header: Mapping[str, Any], alg: str, key: OKPKey | ECKey) -> Any:
        if header.get("alg") != alg:  # the key's own algorithm, never the header's choice
            raise TokenVerificationError("bad-signature", "alg does not match the key")
        try:
            return jwt.decode(token, key, algorithms=[alg]).claims
        except BadSignatureError:
            raise TokenVerificationError("bad-signature") from None
        except JoseError:
            raise TokenVerificationError("malformed") from None

    def _times(self, claims: Mapping[str, Any]) -> tuple[int, int]:
        now = self.now()
        exp, iat, nbf = claims.get("exp"), claims.get("iat"), claims.get("nbf", claims.get("iat"))
        for value in (exp, iat, nbf):
            if not isinstance(value, int) or isinstance(value, bool):
                raise TokenVerificationError("malformed", "exp, iat and nbf must be integers")
        assert isinstance(exp, int) and isinstance(iat, int) and isinstance(nbf, int)
        if now > exp + self.leeway:
            raise TokenVerificationError("expired")
        if now + self.leeway < nbf or now + self.leeway < iat:
            raise TokenVerificationError("not-yet-valid")
        return iat, exp

    def _common(self, claims: Mapping[str, Any], issuer: str) -> None:
        if self.project_id not in _audiences(claims):
            raise TokenVerificationError("wrong-project")
        # Before the issuer: an access token's issuer names its environment, and the environment is
        # the more useful reason.
        if claims.get("env") != self.environment:
            raise TokenVerificationError("wrong-environment", f"env is not {self.environment}")
        if claims.get("iss") != issuer:
            raise TokenVerificationError("wrong-issuer", f"iss is not {issuer}")

    @staticmethod
    def _text(claims: Mapping[str, Any], name: str) -> str:
        value = claims.get(name)
        if not isinstance(value, str) or not value:
            raise TokenVerificationError("malformed", f"{name} is missing")
        return value

    def session(self, claims: Mapping[str, Any]) -> SessionClaims:
        self._common(claims, self.session_issuer)
        iat, exp = self._times(claims)
        origin = claims.get("origin")
        return SessionClaims(
            user_id=self._text(claims, "sub"),
            session_id=self._text(claims, "sid"),
            project_id=self.project_id,
            environment=self.environment,
            issued_at=iat,
            expires_at=exp,
            token_id=self._text(claims, "jti"),
            origin=origin if isinstance(origin, str) else None,
            claims=dict(claims),
        )

    def access_token(self, claims: Mapping[str, Any]) -> AccessTokenClaims:
        self._common(claims, self.access_token_issuer)
        iat, exp = self._times(claims)
        scope, sid = claims.get("scope", ""), claims.get("sid")
        if not isinstance(scope, str):
            raise TokenVerificationError("malformed", "scope is not a string")
        return AccessTokenClaims(
            user_id=self._text(claims, "sub"),
            session_id=sid if isinstance(sid, str) else None,
            client_id=self._text(claims, "client_id"),
            scopes=tuple(scope.split()),
            project_id=self.project_id,
            environment=self.environment,
            issued_at=iat,
            expires_at=exp,
            token_id=self._text(claims, "jti"),
            claims=dict(claims),
        )


class TokenVerifier:
    """Verifies a project environment's session JWTs and access tokens, with a cached JWKS (sync).

    - Algorithms are pinned to EdDSA and ES256, and each token to its key's own `alg`.
    - The JWKS is kept for its Cache-Control max-age (else `jwks_ttl`); an unknown kid refetches it
      at most once per `min_refetch_interval`; if a refetch fails, the keys at hand keep serving.
    - `leeway` seconds of clock skew are tolerated on `exp`, `nbf` and `iat` (the service's own).
    - `iss`, `aud` (the project), `env` and the header's `typ` are checked: a session JWT is never
      accepted as an access token, nor the reverse.

    Thread-safe. Pass `http_client` to reuse a client of yours (its timeouts, proxies, CA bundle).
    """

    def __init__(  # noqa: PLR0913 - keyword-only tuning knobs
        self,
        auth_url: str,
        project_id: str,
        environment: str,
        *,
        leeway: float = DEFAULT_LEEWAY,
        jwks_ttl: float = DEFAULT_JWKS_TTL,
        min_refetch_interval: float = MIN_REFETCH_INTERVAL,
        http_client: httpx.Client | None = None,
        timeout: float = 5.0,
        now: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rules = _Rules(auth_url, project_id, environment, leeway=leeway, now=now)
        self._cache = _KeyCache(jwks_ttl, min_refetch_interval, monotonic)
        self._http = http_client or httpx.Client(timeout=timeout)
        self._owns_http = http_client is None
        self._lock = threading.Lock()

    @property
    def jwks_url(self) -> str:
        return self._rules.jwks_url

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> TokenVerifier:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _fetch(self) -> None:
        try:
            response = self._http.get(self._rules.jwks_url, headers={"accept": "application/json"})
        except httpx.HTTPError as error:
            self._cache.failed(error)
            return
        self._cache.store(response)

    def _key(self, kid: str) -> tuple[str, OKPKey | ECKey]:
        with self._lock:
            if not self._cache.fresh():
                self._fetch()
            found = self._cache.lookup(kid)
            if found is None and self._cache.may_refetch():
                self._fetch()
                found = self._cache.lookup(kid)
        if found is None:
            raise TokenVerificationError("unknown-kid", "no key of this project has this kid")
        return found

    def verify_session(self, token: str) -> SessionClaims:
        """The claims of a valid session JWT, else TokenVerificationError (JWKSUnavailableError when
        the keys cannot be had)."""
        header, _, kid = self._rules.before_key(token, access_token=False)
        alg, key = self._key(kid)
        return self._rules.session(self._rules.signed_claims(token, header, alg, key))

    def verify_access_token(self, token: str) -> AccessTokenClaims:
        """The claims of a valid OAuth access token (`typ: at+jwt`) of the project's OpenID Provider."""
        header, _, kid = self._rules.before_key(token, access_token=True)
        alg, key = self._key(kid)
        return self._rules.access_token(self._rules.signed_claims(token, header, alg, key))


class AsyncTokenVerifier:
    """`TokenVerifier` for asyncio: the same checks, `await verifier.verify_session(token)`.

    One JWKS fetch at a time: concurrent verifications of a new kid wait for the same answer.
    """

    def __init__(  # noqa: PLR0913 - keyword-only tuning knobs
        self,
        auth_url: str,
        project_id: str,
        environment: str,
        *,
        leeway: float = DEFAULT_LEEWAY,
        jwks_ttl: float = DEFAULT_JWKS_TTL,
        min_refetch_interval: float = MIN_REFETCH_INTERVAL,
        http_client: httpx.AsyncClient | None = None,
        timeout: float = 5.0,
        now: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rules = _Rules(auth_url, project_id, environment, leeway=leeway, now=now)
        self._cache = _KeyCache(jwks_ttl, min_refetch_interval, monotonic)
        self._http = http_client or httpx.AsyncClient(timeout=timeout)
        self._owns_http = http_client is None
        self._lock: asyncio.Lock | None = None

    @property
    def jwks_url(self) -> str:
        return self._rules.jwks_url

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncTokenVerifier:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def _fetch(self) -> None:
        try:
            response = await self._http.get(self._rules.jwks_url, headers={"accept": "application/json"})
        except httpx.HTTPError as error:
            self._cache.failed(error)
            return
        self._cache.store(response)

    async def _key(self, kid: str) -> tuple[str, OKPKey | ECKey]:
        found = self._cache.lookup(kid) if self._cache.fresh() else None
        if found is None:
            if self._lock is None:
                self._lock = asyncio.Lock()
            async with self._lock:
                if not self._cache.fresh():
                    await self._fetch()
                found = self._cache.lookup(kid)
                if found is None and self._cache.may_refetch():
                    await self._fetch()
                    found = self._cache.lookup(kid)
        if found is None:
            raise TokenVerificationError("unknown-kid", "no key of this project has this kid")
        return found

    async def verify_session(self, token: str) -> SessionClaims:
        header, _, kid = self._rules.before_key(token, access_token=False)
        alg, key = await self._key(kid)
        return self._rules.session(self._rules.signed_claims(token, header, alg, key))

    async def verify_access_token(self, token: str) -> AccessTokenClaims:
        header, _, kid = self._rules.before_key(token, access_token=True)
        alg, key = await self._key(kid)
        return self._rules.access_token(self._rules.signed_claims(token, header, alg, key))
