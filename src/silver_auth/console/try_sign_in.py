"""Try sign-in: a developer runs the project's hosted sign-up or sign-in exactly as a customer app would,
without writing one, and sees the session JWT it ends with, verified.

Start: a PKCE S256 verifier and a `state` are made here and sealed into a short-lived cookie scoped to
the callback path (the verifier never appears in a URL or a page), then the browser goes to the hosted
sign-in with the console's own callback as `redirect_url` (allowed for this project only, see
`endusers.sessions.redirect_allowed`). Callback: the state is checked against the cookie, the code is
redeemed by the same exchange as `POST /v1/client/sessions/exchange` and the JWT verified by the same
check as `POST /v1/backend/sessions/verify`. The session token (the refresh token) is never shown.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from joserfc import jws
from litestar import Controller, Response, get, post
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.accounts.guards import ConsoleContext
from silver_auth.console.pages import PAGE_HANDLERS, Frame, PageError, frame, page_opt
from silver_auth.console.render import PREFIX, Req, page, see_other
from silver_auth.core import clock, urls
from silver_auth.core.crypto import SealError
from silver_auth.core.errors import ProblemError
from silver_auth.endusers import grants, sessions
from silver_auth.endusers.service import ENVIRONMENTS, ProjectEnvironment
from silver_auth.orgs import service as orgs
from silver_auth.orgs.models import Org, Role
from silver_auth.projects.models import Project
from silver_auth.projects.service import get_project
from silver_auth.runtime import Runtime
from silver_auth.settings import Settings
from silver_auth.web.deps import request_ip

TRY_COOKIE = "silver_console_try"
TRY_MINUTES = 10
"""How long a started try waits for the end-user to finish on the hosted page."""
PLACEHOLDER_REDIRECT = "https://app.example.com/callback"
Query = Annotated[str | None, QueryParameter(required=False, max_length=4096)]
StateQuery = Annotated[str | None, QueryParameter(name="state", required=False, max_length=512)]


def _seal_context(project_id: str) -> str:
    return f"console_try:{project_id}"


@dataclass(frozen=True, slots=True)
class StartedTry:
    """What the try cookie holds (sealed): only the browser that started may finish, as that account."""

    state: str
    verifier: str
    environment: str
    account_id: str
    expires: int

    def sealed(self, runtime: Runtime, project_id: str) -> str:
        plain = json.dumps([self.state, self.verifier, self.environment, self.account_id, self.expires])
        return runtime.sealer.seal(plain, _seal_context(project_id))

    @classmethod
    def opened(cls, runtime: Runtime, project_id: str, sealed: str | None) -> StartedTry | None:
        if not sealed:
            return None
        try:
            state, verifier, environment, account_id, expires = json.loads(
                runtime.sealer.unseal(sealed, _seal_context(project_id))
            )
        except (SealError, ValueError, TypeError):
            return None
        return cls(str(state), str(verifier), str(environment), str(account_id), int(expires))


def _try_cookie(settings: Settings, project_id: str, value: str, max_age: int) -> Cookie:
    """Sent back only to this project's callback: no other console page ever receives it."""
    return Cookie(
        key=TRY_COOKIE,
        value=value,
        path=urls.console_try_callback_path(project_id),
        httponly=True,
        secure=settings.console_cookie_secure,
        samesite=settings.session_cookie_samesite.lower(),  # type: ignore[arg-type]
        max_age=max_age,
    )


@dataclass(frozen=True, slots=True)
class Snippets:
    """The same flow for the customer's own app, with this project's real ids and URLs."""

    auth_url: str
    project_id: str
    environment: str
    redirect_url: str
    sign_in_url: str
    exchange_url: str
    jwks_url: str
    issuer: str
    algorithm: str


def snippets(settings: Settings, project: Project, environment: str) -> Snippets:
    auth_url = settings.auth_url.rstrip("/")
    return Snippets(
        auth_url=auth_url,
        project_id=project.id,
        environment=environment,
        redirect_url=project.redirect_urls[0] if project.redirect_urls else PLACEHOLDER_REDIRECT,
        sign_in_url=urls.hosted_pages(auth_url, project.id, environment) + "/sign-in",
        exchange_url=f"{auth_url}/v1/client/sessions/exchange",
        jwks_url=urls.jwks(auth_url, project.id),
        issuer=urls.session_jwt_issuer(auth_url, project.id),
        algorithm=settings.signing_algorithm,
    )


@dataclass(frozen=True, slots=True)
class Check:
    """One line of the verification: what was expected, and whether the token met it."""

    label: str
    expected: str
    result: str
    moment: datetime | None = None


# Which check a refusal of `sessions.verify_token` names (its `reason` slugs).
FAILED_CHECK = {
    "malformed": "signature",
    "bad-signature": "signature",
    "unknown-kid": "signature",
    "wrong-issuer": "issuer",
    "wrong-project": "audience",
    "expired": "expiry",
    "not-yet-valid": "expiry",
    "wrong-environment": "environment",
    "unknown-session": "session",
    "revoked": "session",
    "banned": "session",
    "session-expired": "session",
}


def checks(verdict: sessions.Verdict, issuer: str, project_id: str, environment: str) -> list[Check]:
    failed = None if verdict.valid else FAILED_CHECK.get(verdict.reason or "", "signature")
    expires = (verdict.claims or {}).get("exp")
    moment = datetime.fromtimestamp(expires, UTC) if isinstance(expires, int) else None

    def result(name: str) -> str:
        return "passed" if failed is None else "failed" if name == failed else "not checked"

    return [
        Check(
            "Signature", "by a published key of the project's JWKS, its own algorithm", result("signature")
        ),
        Check("Issuer (iss)", issuer, result("issuer")),
        Check("Audience (aud)", project_id, result("audience")),
        Check("Expiry (exp, nbf)", "valid now; expires", result("expiry"), moment),
        Check("Environment (env)", environment, result("environment")),
        Check("Session (sid)", "live: not signed out, revoked or banned", result("session")),
    ]


def _pretty(value: dict[str, Any]) -> str:
    return json.dumps(value, indent=2, sort_keys=True)


def _decoded(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The JWS header and claims as the token carries them, for display; whether they hold is the
    verdict of `sessions.verify_token`, which chooses the key itself."""
    parts = jws.extract_compact(token.encode())
    return dict(parts.headers()), dict(json.loads(parts.payload))


class TrySignInPages(Controller):
    path = f"{PREFIX}/projects/{{project_id:str}}/try"
    include_in_schema = False
    exception_handlers = PAGE_HANDLERS

    @get("/", opt=page_opt(Role.VIEWER.value))
    async def try_page(
        self,
        project_id: FromPath[str],
        request: Req,
        console: NamedDependency[ConsoleContext],
        db: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
    ) -> Response[Any]:
        project, org, shown = await _opened(db, console, project_id)
        return page(request, settings, "try_sign_in.html", **_start_context(shown, org, project, settings))

    @post("/", opt=page_opt(Role.VIEWER.value))
    async def start(
        self,
        project_id: FromPath[str],
        request: Req,
        console: NamedDependency[ConsoleContext],
        db: NamedDependency[AsyncSession],
        runtime: NamedDependency[Runtime],
    ) -> Response[Any]:
        settings = runtime.settings
        project, org, shown = await _opened(db, console, project_id)
        environment = (await request.form()).get("environment")
        if environment not in ENVIRONMENTS:
            raise PageError(
                400,
                "Choose the test or the live environment, then start again.",
                "try_sign_in.html",
                **_start_context(shown, org, project, settings),
            )
        started = StartedTry(
            state=secrets.token_urlsafe(24),
            verifier=secrets.token_urlsafe(48),
            environment=str(environment),
            account_id=console.account.id,
            expires=int((clock.now() + timedelta(minutes=TRY_MINUTES)).timestamp()),
        )
        query = urlencode(
            {
                "redirect_url": urls.console_try_callback(settings.accounts_url, project.id),
                "state": started.state,
                "code_challenge": grants.pkce_s256(started.verifier),
                "code_challenge_method": "S256",
            }
        )
        response = see_other(
            urls.hosted_pages(settings.auth_url, project.id, started.environment) + f"/sign-in?{query}"
        )
        response.set_cookie(
            _try_cookie(settings, project.id, started.sealed(runtime, project.id), TRY_MINUTES * 60)
        )
        return response

    @get("/callback", opt=page_opt(Role.VIEWER.value))
    async def callback(
        self,
        *,
        project_id: FromPath[str],
        request: Req,
        console: NamedDependency[ConsoleContext],
        db: NamedDependency[AsyncSession],
        runtime: NamedDependency[Runtime],
        code: Query = None,
        oauth_state: StateQuery = None,  # `state` is a reserved name in Litestar
        error: Query = None,
    ) -> Response[Any]:
        settings = runtime.settings
        project, org, shown = await _opened(db, console, project_id)
        context = _start_context(shown, org, project, settings)
        if code is None and oauth_state is None and error is None:
            return page(request, settings, "try_sign_in.html", **{**context, "nothing_yet": True})

        def refuse(message: str) -> PageError:
            return PageError(400, message, "try_sign_in.html", **context)

        started = StartedTry.opened(runtime, project.id, request.cookies.get(TRY_COOKIE))
        if started is None or started.expires <= clock.now().timestamp():
            raise refuse("This try has expired or was started in another browser. Start again below.")
        if started.account_id != console.account.id:
            raise refuse("This try was started by another console account. Start again below.")
        if not oauth_state or not secrets.compare_digest(oauth_state.encode(), started.state.encode()):
            raise refuse(
                "The state that came back does not match the try this browser started, so the code was "
                "not redeemed. Start again below."
            )
        if error is not None:
            raise refuse(f"The sign-in was not completed ({error[:100]}). Start again below.")
        if not code:
            raise refuse("The hosted page sent no code back. Start again below.")
        scope = ProjectEnvironment(project.id, started.environment)
        redemption = grants.CodeRedemption(
            code, urls.console_try_callback(settings.accounts_url, project.id), started.verifier
        )
        try:
            issued = await grants.exchange_code(
                db, runtime.sessionmaker, settings, scope, redemption, ip=request_ip(request)
            )
        except ProblemError as exc:
            # A second redemption revoked the session in a transaction of its own, after rolling this
            # request's back: the rows the page shows are read again.
            await db.refresh(console.account)
            project, org, shown = await _opened(db, console, project_id)
            raise PageError(
                400,
                f"The code was refused: {exc.detail}. Start again below.",
                "try_sign_in.html",
                **_start_context(shown, org, project, settings),
            ) from None
        verdict = await sessions.verify_token(db, settings, scope, issued.jwt)
        header, claims = _decoded(issued.jwt)
        issuer = urls.session_jwt_issuer(settings.auth_url, project.id)
        response = page(
            request,
            settings,
            "try_result.html",
            **{
                **context,
                "environment": started.environment,
                "snippets": snippets(settings, project, started.environment),
            },
            jwt=issued.jwt,
            header=_pretty(header),
            claims=_pretty(claims),
            kid=header.get("kid"),
            verdict=verdict,
            checks=checks(verdict, issuer, project.id, started.environment),
            end_user=issued.user,
        )
        response.set_cookie(_try_cookie(settings, project.id, "", 0))  # one try, one answer
        return response


async def _opened(db: AsyncSession, console: ConsoleContext, project_id: str) -> tuple[Project, Org, Frame]:
    project = await get_project(db, project_id)
    return project, await orgs.get_org(db, project.org_id), await frame(db, console)


def _start_context(shown: Frame, org: Org, project: Project, settings: Settings) -> dict[str, Any]:
    return shown.context(
        org,
        title="Try sign-in",
        section="try",
        current_project=project,
        environments=ENVIRONMENTS,
        environment="test",
        callback_url=urls.console_try_callback(settings.accounts_url, project.id),
        nothing_yet=False,
    )
