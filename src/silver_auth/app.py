"""create_app(): controllers, guards, error handlers, security headers, and the app's runtime."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from litestar import Litestar, Request, Response, Router, get
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.status_codes import HTTP_404_NOT_FOUND

from silver_auth import __version__
from silver_auth.accounts.credential_routes import AccountController
from silver_auth.accounts.guards import console_guard, provide_console
from silver_auth.accounts.routes import SessionController
from silver_auth.admin.guards import platform_admin_guard
from silver_auth.admin.routes import ADMIN_CONTROLLERS
from silver_auth.alerts.dispatcher import dispatching
from silver_auth.audit.routes import AuditController
from silver_auth.audit.sealer import app_sealer
from silver_auth.authentik.console_routes import OidcController
from silver_auth.authentik.hosted_routes import HostedOidcCallback
from silver_auth.authentik.routes import ProjectIdentityController
from silver_auth.console.pages import unknown_page as unknown_console_page
from silver_auth.console.render import PREFIX as CONSOLE_PAGES_PREFIX
from silver_auth.console.routes import console_pages
from silver_auth.core import urls
from silver_auth.core.logging import configure_logging, flush_access_log
from silver_auth.core.metrics import metrics_listener
from silver_auth.core.production_guard import production_violations
from silver_auth.core.scope import EXCLUSION_STATEMENT
from silver_auth.endusers.routes.backend import backend_router
from silver_auth.endusers.routes.client import client_router
from silver_auth.endusers.routes.console import EndUserConsoleController
from silver_auth.health.routes import health, service_config
from silver_auth.hosted.account import AccountPages, PasswordPage
from silver_auth.hosted.branding import branding_stylesheet, logo
from silver_auth.hosted.context import HOSTED_PREFIX, unknown_page
from silver_auth.hosted.sign_in import HostedPages, stylesheet
from silver_auth.keys.routes import KeyController, backend_project
from silver_auth.oidc_provider.routes import OpenIdProvider, OpenIdProviderPages
from silver_auth.orgs.guards import org_role_guard, provide_org_access
from silver_auth.orgs.routes import OrgController
from silver_auth.projects.routes import ProjectController, client_config, preflight_allows
from silver_auth.ratelimit.middleware import rate_limit_middleware
from silver_auth.runtime import SERVICE_DEPENDENCIES, Runtime, build_runtime
from silver_auth.settings import Settings, load_settings
from silver_auth.signing.routes import SigningKeyController, jwks
from silver_auth.web.access_log import observe_requests
from silver_auth.web.body import JsonBodyRequest
from silver_auth.web.cors import cors_middleware
from silver_auth.web.deps import DEPENDENCIES, request_db_middleware
from silver_auth.web.http import EXCEPTION_HANDLERS, handle_http, make_before_send
from silver_auth.web.openapi import describe
from silver_auth.web.sdk_js import sdk_js
from silver_auth.webhooks.delivery import worker_running
from silver_auth.webhooks.routes import WebhookController, backend_events

CONSOLE_CONTROLLERS = [
    SessionController,
    OrgController,
    ProjectController,
    KeyController,
    AuditController,
    SigningKeyController,
    EndUserConsoleController,
    AccountController,  # the account's own password and console TOTP MFA
    OidcController,  # Authentik backend (404 with builtin)
    ProjectIdentityController,
    WebhookController,
]
# End-users of customer projects: hosted pages, the customer's exchange/refresh, the backend API, JWKS,
# the browser module.
END_USER_HANDLERS = [
    HostedPages,
    AccountPages,
    PasswordPage,
    HostedOidcCallback,
    OpenIdProvider,
    OpenIdProviderPages,
    stylesheet,
    branding_stylesheet,
    logo,
    client_router,
    backend_router,
    backend_events,
    jwks,
    sdk_js,
]


def _no_route(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    """No route matched: below the hosted pages' prefix the answer is an HTML page, elsewhere a problem."""
    path = request.url.path
    if exc.status_code == HTTP_404_NOT_FOUND and path.startswith(HOSTED_PREFIX):
        return unknown_page(request)
    if exc.status_code == HTTP_404_NOT_FOUND and _console_page(path):
        return unknown_console_page(request)
    return handle_http(request, exc)


def _console_page(path: str) -> bool:
    """Below the console's pages (not its JSON API, which answers problems)."""
    return (path == CONSOLE_PAGES_PREFIX or path.startswith(CONSOLE_PAGES_PREFIX + "/")) and not (
        path == urls.CONSOLE_API or path.startswith(urls.CONSOLE_API + "/")
    )


@get("/openapi.json", include_in_schema=False, media_type="application/vnd.oai.openapi+json")
async def openapi_json(request: Request[Any, Any, Any]) -> dict[str, Any]:
    return request.app.openapi_schema.to_schema()


class ProductionGuardError(SystemExit):
    """Raised before start-up when production settings break the guide; one line per violation."""

    def __init__(self, violations: list[str]) -> None:
        super().__init__("refusing to start in production:\n" + "\n".join(f"  {line}" for line in violations))
        self.violations = violations


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or load_settings()
    violations = production_violations(settings)
    if violations:
        raise ProductionGuardError(violations)
    configure_logging(settings.log_level, settings.log_format)
    runtime = build_runtime(settings)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        # The one in state, not this closure's: tests serve one app with a new runtime per test.
        runtime: Runtime = app.state.runtime
        if runtime.authentik is not None:
            await runtime.authentik.check_version()  # warns on a major.minor mismatch with the pinned client
        try:
            async with AsyncExitStack() as running:
                # L2: first in, last out: alerts raised while the others start or stop still go out.
                await running.enter_async_context(dispatching(runtime.sessionmaker, runtime.settings))
                if runtime.settings.prometheus_multiproc_dir is None:  # else the serving process serves all
                    running.enter_context(metrics_listener(runtime.settings, process="api"))
                await running.enter_async_context(app_sealer(runtime.settings, runtime.engine))  # G27
                await running.enter_async_context(runtime.keys.last_used.running())
                if runtime.settings.webhook_worker == "in-process":  # the embedded default: no second process
                    await running.enter_async_context(
                        worker_running(
                            runtime.settings,
                            runtime.sealer,
                            wake_on=runtime.engine,
                            resolver=runtime.webhook_resolver,
                        )
                    )
                yield
        finally:
            flush_access_log()  # the last turn's lines, should the loop stop before it ends
            await runtime.engine.dispose()
            await runtime.throttle.engine.dispose()
            await runtime.limiter.close()
            if runtime.authentik is not None:
                runtime.authentik.close()

    # Every console route passes the console guard (session, CSRF), then its org role, if it names one.
    console = Router(path="/", route_handlers=CONSOLE_CONTROLLERS, guards=[console_guard, org_role_guard])
    handlers: list[Any] = [health, service_config, client_config, backend_project, openapi_json, console]
    # Every /admin/api route passes the platform-admin guard: session, CSRF, SEQN-A, MFA (G6, G7).
    handlers.append(Router(path="/", route_handlers=ADMIN_CONTROLLERS, guards=[platform_admin_guard]))
    handlers.append(console_pages())  # HTML pages under /console/, the same guards' rules
    handlers += END_USER_HANDLERS
    app = Litestar(
        route_handlers=handlers,
        dependencies={
            **DEPENDENCIES,
            **SERVICE_DEPENDENCIES,
            "console": Provide(provide_console, sync_to_thread=False),
            "org_access": Provide(provide_org_access, sync_to_thread=False),
        },
        exception_handlers={**EXCEPTION_HANDLERS, HTTPException: _no_route},  # type: ignore[dict-item]
        before_send=[make_before_send(settings)],
        middleware=[cors_middleware(preflight_allows), request_db_middleware, rate_limit_middleware],
        request_max_body_size=settings.max_body_bytes,
        request_class=JsonBodyRequest,  # JSON bodies: media type and nesting checked before decoding
        lifespan=[lifespan],
        state=State({"runtime": runtime}),
        openapi_config=OpenAPIConfig(
            title="Silver Auth API",
            version=__version__,
            description="SEQN Auth's service API. Errors are application/problem+json (RFC 9457). "
            f"{EXCLUSION_STATEMENT}.",
            # JSON only: a UI page would load scripts from a CDN, which the CSP (and no network) forbid.
            path="/schema",
            render_plugins=[JsonRenderPlugin(path="/openapi.json")],
        ),
        logging_config=None,
        debug=False,
    )
    describe(app, settings)  # errors, security and media types as the service answers them
    observe_requests(app, settings)  # every request, 404 and 405 included: outside the routing
    return app


def asgi() -> Litestar:
    """Factory for ASGI servers (`uvicorn --factory silver_auth.app:asgi`)."""
    return create_app()
