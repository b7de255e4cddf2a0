"""The framework integrations with tokens of a running service: FastAPI and Starlette (a dependency),
Django (middleware and its decorator, settings-configured, Django's test client), Flask (the
`@require_session` decorator). A verified session reaches the view; none or a refused one is a 401
with a Bearer challenge."""

from __future__ import annotations

import asyncio

import django
import httpx
import pytest
from django.conf import settings as django_settings
from django.test import Client as DjangoClient
from django.test import override_settings
from fastapi import Depends, FastAPI
from flask import Flask, g
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from seqn_auth import AccessTokenClaims, AsyncTokenVerifier, SessionClaims, TokenVerifier
from seqn_auth.fastapi import AccessTokenAuth, SessionAuth
from seqn_auth.flask import current_session, require_session
from tests.endusers.support import CustomerProject
from tests.factories import Harness
from tests.processes import ApiProcess
from tests.sdk.support import sign_in
from tests.sdk.test_verify import _access_token


def test_fastapi_and_starlette(service: ApiProcess, project: CustomerProject) -> None:
    session = sign_in(service, project).session
    require_session = SessionAuth(AsyncTokenVerifier(service.url, project.project_id, "test"))
    app = FastAPI()

    @app.get("/me")
    async def me(claims: SessionClaims = Depends(require_session)) -> dict[str, str]:  # noqa: B008
        return {"user_id": claims.user_id}

    async def endpoint(request: Request) -> JSONResponse:
        claims = await require_session(request)
        return JSONResponse({"user_id": claims.user_id, "state": request.state.seqn_session.session_id})

    starlette_app = Starlette(routes=[Route("/me", endpoint)])

    async def work() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://app") as client:
            ok = await client.get("/me", headers={"authorization": f"Bearer {session.jwt}"})
            assert ok.status_code == 200 and ok.json() == {"user_id": session.user_id}
            cookie = await client.get("/me", headers={"cookie": f"seqn_session={session.jwt}"})
            assert cookie.json() == {"user_id": session.user_id}
            missing = await client.get("/me")
            assert missing.status_code == 401
            assert missing.headers["www-authenticate"] == 'Bearer realm="seqn"'
            tampered = session.jwt[:-6] + ("AAAAAA" if not session.jwt.endswith("AAAAAA") else "BBBBBB")
            forged = await client.get("/me", headers={"authorization": f"Bearer {tampered}"})
            assert forged.status_code == 401
            assert 'error="invalid_token"' in forged.headers["www-authenticate"]
            assert "bad-signature" in forged.headers["www-authenticate"]
        transport = httpx.ASGITransport(starlette_app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            ok = await client.get("/me", headers={"authorization": f"Bearer {session.jwt}"})
            assert ok.json() == {"user_id": session.user_id, "state": session.session_id}
            junk = await client.get("/me", headers={"authorization": "Bearer junk"})
            assert junk.status_code == 401

    asyncio.run(work())


def test_fastapi_access_tokens_and_scopes(
    harness: Harness, service: ApiProcess, project: CustomerProject
) -> None:
    session = sign_in(service, project).session  # the service makes the project's signing key
    verifier = AsyncTokenVerifier(service.url, project.project_id, "test")
    app = FastAPI()

    needs_profile = Depends(AccessTokenAuth(verifier, scopes=("profile",)))
    needs_admin = Depends(AccessTokenAuth(verifier, scopes=("admin",)))

    @app.get("/profile")
    async def profile(token: AccessTokenClaims = needs_profile) -> dict[str, str]:
        return {"client_id": token.client_id, "sub": token.user_id}

    @app.get("/admin")
    async def admin(token: AccessTokenClaims = needs_admin) -> dict[str, str]:
        return {"sub": token.user_id}

    access = _access_token(harness, service, project)

    async def work() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://app") as client:
            ok = await client.get("/profile", headers={"authorization": f"Bearer {access}"})
            assert ok.status_code == 200 and ok.json() == {"client_id": "oac_example", "sub": "usr_example"}
            scope = await client.get("/admin", headers={"authorization": f"Bearer {access}"})
            assert scope.status_code == 403 and "insufficient_scope" in scope.headers["www-authenticate"]
            # a session JWT is not an access token
            wrong = await client.get("/profile", headers={"authorization": f"Bearer {session.jwt}"})
            assert wrong.status_code == 401 and "wrong-token-type" in wrong.headers["www-authenticate"]
            assert (await client.get("/profile")).status_code == 401

    asyncio.run(work())


@pytest.fixture(scope="module")
def django_configured() -> None:
    if not django_settings.configured:
        django_settings.configure(
            DEBUG=False,
            SECRET_KEY="not-a-secret-only-a-test",
            ROOT_URLCONF="tests.sdk.django_urls",
            ALLOWED_HOSTS=["testserver"],
            MIDDLEWARE=["seqn_auth.django.SeqnAuthMiddleware"],
            INSTALLED_APPS=[],
            DATABASES={},
        )
        django.setup()


@pytest.mark.usefixtures("django_configured")
def test_django_middleware(service: ApiProcess, project: CustomerProject) -> None:
    session = sign_in(service, project).session
    config = {"AUTH_URL": service.url, "PROJECT_ID": project.project_id, "ENVIRONMENT": "test"}
    with override_settings(SEQN_AUTH=config):
        client = DjangoClient()
        ok = client.get("/me", headers={"authorization": f"Bearer {session.jwt}"})
        assert ok.status_code == 200, ok.content
        assert ok.json() == {"user_id": session.user_id, "session_id": session.session_id}
        client.cookies["seqn_session"] = session.jwt
        assert client.get("/me").json()["user_id"] == session.user_id
        anonymous = DjangoClient()
        refused = anonymous.get("/me")
        assert refused.status_code == 401 and refused.json()["reason"] == "missing-token"
        assert refused["WWW-Authenticate"] == 'Bearer realm="seqn"'
        assert anonymous.get("/optional").json() == {"error": "missing-token"}
        tampered_answer = anonymous.get("/me", headers={"authorization": f"Bearer {session.jwt}x"})
        assert tampered_answer.status_code == 401 and tampered_answer.json()["reason"] == "bad-signature"
    with override_settings(SEQN_AUTH={**config, "ENVIRONMENT": "live"}):
        wrong = DjangoClient().get("/me", headers={"authorization": f"Bearer {session.jwt}"})
        assert wrong.status_code == 401 and wrong.json()["reason"] == "wrong-environment"


def test_flask_require_session(service: ApiProcess, project: CustomerProject) -> None:
    session = sign_in(service, project).session
    verifier = TokenVerifier(service.url, project.project_id, "test")
    app = Flask(__name__)

    @app.get("/me")
    @require_session(verifier)
    def me() -> dict[str, str]:
        found = current_session()
        assert found is not None and found is g.seqn_session
        return {"user_id": found.user_id}

    client = app.test_client()
    ok = client.get("/me", headers={"authorization": f"Bearer {session.jwt}"})
    assert ok.status_code == 200 and ok.get_json() == {"user_id": session.user_id}
    client.set_cookie("seqn_session", session.jwt)
    assert client.get("/me").get_json() == {"user_id": session.user_id}
    anonymous = app.test_client()
    refused = anonymous.get("/me")
    assert refused.status_code == 401 and refused.get_json()["reason"] == "missing-token"
    forged = anonymous.get("/me", headers={"authorization": "Bearer a.b.c"})
    assert forged.status_code == 401 and "invalid_token" in forged.headers["WWW-Authenticate"]
