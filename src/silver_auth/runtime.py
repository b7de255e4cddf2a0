"""The composition root: what the app keeps for its lifetime, and the per-request services built from it.

Domains receive what they use through Litestar dependencies (`db`, `projects`, `keys`, …) declared here;
the web layer sees only its own part (`web.runtime.WebRuntime`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from litestar.connection import ASGIConnection
from litestar.di import NamedDependency, Provide
from litestar.types import Scope
from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.accounts.passwords import set_hash_threads
from silver_auth.accounts.sessions import ConsoleSessionCodec
from silver_auth.core.crypto import Hasher, Sealer, keyed_hasher
from silver_auth.db.engine import create_engine, create_sessionmaker
from silver_auth.identity.providers.base import IdentityProvider
from silver_auth.identity.providers.builtin import BuiltinIdentityProvider
from silver_auth.keys.last_used import LastUsedRecorder
from silver_auth.keys.service import KeyService
from silver_auth.keys.verifier import KeyVerifier
from silver_auth.mfa.factors import SecondFactorDeps, SecondFactors
from silver_auth.projects.lifecycle import NoLifecycle, ProjectLifecycle
from silver_auth.projects.service import ProjectService
from silver_auth.ratelimit.limiter import RateLimiter
from silver_auth.ratelimit.sustained import SustainedRefusals
from silver_auth.settings import Settings
from silver_auth.throttle.policies import RequestPolicies
from silver_auth.throttle.service import Throttle
from silver_auth.web.runtime import WebRuntime
from silver_auth.webhooks.service import EndpointService
from silver_auth.webhooks.targets import Resolver, system_resolver

if TYPE_CHECKING:  # authentik-client takes seconds to import: only the Authentik backend loads it
    from silver_auth.authentik.admin_standing import AdminStandingCheck
    from silver_auth.authentik.applications import AuthentikApplications
    from silver_auth.authentik.console_sign_in import ConsoleSso
    from silver_auth.identity.providers.authentik import AuthentikProvider
else:  # Litestar resolves these hints at run time (dependency signatures)
    AuthentikProvider = AuthentikApplications = ConsoleSso = AdminStandingCheck = object


@dataclass(slots=True)
class Runtime(WebRuntime):
    key_hasher: Hasher
    """HMAC-SHA256 under the key pepper (G17): the one place the pepper is used for API keys."""
    keys: KeyVerifier
    throttle: Throttle
    """Attempt booking for every secret check, on a pool of its own."""
    sealer: Sealer
    """AES-GCM under the sealing key ring (G17): every secret the server must use again."""
    second_factors: SecondFactorDeps
    sessions: ConsoleSessionCodec
    identity: IdentityProvider
    limiter: RateLimiter
    """The app limiter (G35): memory, or Redis shared by every replica."""
    sustained: SustainedRefusals
    """Sustained 429s per key prefix and client IP (G37)."""
    rate_policies: RequestPolicies
    """The identity backend (builtin or Authentik) behind platform-admin proxy operations (G26)."""
    lifecycle: ProjectLifecycle = field(default_factory=NoLifecycle)
    webhook_resolver: Resolver = system_resolver
    """How receiver hosts are resolved before a connection (G30); tests give one of their own."""
    # SILVER_IDENTITY=authentik only (None with the builtin backend)
    authentik: AuthentikProvider | None = None
    applications: AuthentikApplications | None = None
    sso: ConsoleSso | None = None
    admin_standing: AdminStandingCheck | None = None


def runtime_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Runtime:
    runtime: Runtime = connection.app.state.runtime
    return runtime


def scope_runtime(scope: Scope) -> Runtime:
    runtime: Runtime = scope["litestar_app"].state.runtime
    return runtime


def build_runtime(settings: Settings) -> Runtime:
    set_hash_threads(settings.password_hash_threads)
    engine = create_engine(settings)
    sessionmaker = create_sessionmaker(engine)
    key_hasher = keyed_hasher(settings.secret("key_pepper"))
    sealer = Sealer(settings.sealing_key_ring())
    throttle = Throttle(create_engine(settings), key_hasher)
    runtime = Runtime(
        settings=settings,
        engine=engine,
        sessionmaker=sessionmaker,
        key_hasher=key_hasher,
        keys=KeyVerifier(
            sessionmaker,
            key_hasher,
            settings.key_cache_ttl_seconds,
            LastUsedRecorder(sessionmaker, settings.key_last_used_flush_seconds),
        ),
        throttle=throttle,
        sealer=sealer,
        second_factors=SecondFactorDeps(throttle, settings, SecondFactors(sealer, key_hasher)),
        sessions=ConsoleSessionCodec(settings),
        identity=BuiltinIdentityProvider(),
        limiter=RateLimiter(settings),
        sustained=SustainedRefusals(settings),
        rate_policies=RequestPolicies(settings),
    )
    if settings.identity == "authentik":
        # Imported here: authentik-client takes seconds to import, and the builtin backend never needs it.
        from silver_auth.authentik.admin_standing import AdminStandingCheck  # noqa: PLC0415
        from silver_auth.authentik.applications import AuthentikApplications  # noqa: PLC0415
        from silver_auth.authentik.console_sign_in import ConsoleSso  # noqa: PLC0415
        from silver_auth.authentik.oidc import OidcClient  # noqa: PLC0415
        from silver_auth.identity.providers.authentik import build_authentik_provider  # noqa: PLC0415

        # One client serves the admin proxy operations (G26), provisioning and the admin MFA check.
        runtime.authentik = build_authentik_provider(settings)
        runtime.identity = runtime.authentik
        runtime.applications = AuthentikApplications(runtime.authentik, settings, sealer)
        runtime.lifecycle = runtime.applications
        runtime.sso = ConsoleSso(settings, OidcClient(settings), runtime.authentik)
        runtime.admin_standing = AdminStandingCheck(runtime.authentik)
    return runtime


def project_service(runtime: Runtime, db: AsyncSession) -> ProjectService:
    return ProjectService(db, runtime.lifecycle, runtime.keys)


def key_service(runtime: Runtime, db: AsyncSession) -> KeyService:
    return KeyService(db, runtime.key_hasher, runtime.keys)


def _provide_runtime(request: ASGIConnection[Any, Any, Any, Any]) -> Runtime:
    return runtime_of(request)


def _provide_settings(request: ASGIConnection[Any, Any, Any, Any]) -> Settings:
    return runtime_of(request).settings


def _provide_projects(
    request: ASGIConnection[Any, Any, Any, Any], db: NamedDependency[AsyncSession]
) -> ProjectService:
    return project_service(runtime_of(request), db)


def _provide_keys(
    request: ASGIConnection[Any, Any, Any, Any], db: NamedDependency[AsyncSession]
) -> KeyService:
    return key_service(runtime_of(request), db)


def _provide_webhook_endpoints(
    request: ASGIConnection[Any, Any, Any, Any], db: NamedDependency[AsyncSession]
) -> EndpointService:
    runtime = runtime_of(request)
    return EndpointService(db, runtime.sealer, runtime.webhook_resolver, runtime.settings)


def _provide_throttle(request: ASGIConnection[Any, Any, Any, Any]) -> Throttle:
    return runtime_of(request).throttle


def _provide_second_factors(request: ASGIConnection[Any, Any, Any, Any]) -> SecondFactorDeps:
    return runtime_of(request).second_factors


def _provide_console_sessions(request: ASGIConnection[Any, Any, Any, Any]) -> ConsoleSessionCodec:
    return runtime_of(request).sessions


SERVICE_DEPENDENCIES = {
    "runtime": Provide(_provide_runtime, sync_to_thread=False),
    "settings": Provide(_provide_settings, sync_to_thread=False),
    "throttle": Provide(_provide_throttle, sync_to_thread=False),
    "second_factors": Provide(_provide_second_factors, sync_to_thread=False),
    "console_sessions": Provide(_provide_console_sessions, sync_to_thread=False),
    "projects": Provide(_provide_projects, sync_to_thread=False),
    "key_service": Provide(_provide_keys, sync_to_thread=False),
    "webhook_endpoints": Provide(_provide_webhook_endpoints, sync_to_thread=False),
}
