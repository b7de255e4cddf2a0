"""openid-client (npm, on oauth4webapi: the core of Auth.js v5), unmodified, on the machine's Node,
against a running service: the whole flow, and the specs' refusals as that library reports them."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from silver_auth.core import clock
from silver_auth.db.session import transaction
from silver_auth.endusers.models import RedirectCode
from tests.factories import Harness
from tests.oidc_provider.support import CALLBACK, SIGNED_OUT, HostedBrowser, Provider, provider, query_of

__all__ = ["provider"]  # the fixture

PEER = Path(__file__).resolve().parents[1] / "peers" / "oidc-client"
NODE = shutil.which("node")


@dataclass
class RelyingParty:
    """One openid-client relying party; each call runs one step of rp.mjs on its state file."""

    state_file: Path

    @classmethod
    def configure(cls, tmp_path: Path, name: str, **settings: Any) -> RelyingParty:
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(settings))
        return cls(path)

    def run(self, step: str, argument: str = "") -> dict[str, Any]:
        assert NODE is not None
        done = subprocess.run(
            [NODE, str(PEER / "rp.mjs"), str(self.state_file), step, argument],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.stdout, done.stderr
        answer: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
        assert (done.returncode == 0) == ("refused" not in answer), (done.returncode, answer, done.stderr)
        return answer


@pytest.fixture(autouse=True)
def _node_and_peer() -> None:
    if NODE is None:
        pytest.skip("node is not installed")
    assert (PEER / "node_modules" / "openid-client").exists(), f"npm ci --prefix {PEER} (make installs it)"


def _confidential(provider: Provider, tmp_path: Path, name: str = "rp", **extra: Any) -> RelyingParty:
    project = provider.project
    settings = {
        "issuer": provider.issuer,
        "clientId": project.project_id,
        "clientSecret": project.secret,
        "redirectUri": CALLBACK,
        "scope": "openid email offline_access",
    }
    return RelyingParty.configure(tmp_path, name, **(settings | extra))


def test_openid_client_completes_the_whole_flow(provider: Provider, tmp_path: Path) -> None:
    rp = _confidential(provider, tmp_path, maxAge=600)
    url = rp.run("start")["url"]
    callback = HostedBrowser(provider.url).sign_up(url, provider.project, "ada@example.com")
    signed_in = rp.run("callback", callback)
    claims = signed_in["claims"]
    assert claims["iss"] == provider.issuer and claims["aud"] == provider.project.project_id
    assert claims["email"] == "ada@example.com" and isinstance(claims["auth_time"], int)

    assert rp.run("userinfo")["userinfo"]["sub"] == claims["sub"]
    introspection = rp.run("introspect")["introspection"]
    assert introspection["active"] is True and introspection["client_id"] == provider.project.project_id

    spent = signed_in["tokens"]["refresh_token"]
    refreshed = rp.run("refresh")
    assert refreshed["claims"]["sub"] == claims["sub"]
    assert refreshed["tokens"]["refresh_token"] != spent
    assert rp.run("userinfo")["userinfo"]["sub"] == claims["sub"]

    logout = rp.run("logout", SIGNED_OUT)["url"]
    browser = HostedBrowser(provider.url)
    answer = browser.http.get(logout)
    assert answer.status_code == 303 and answer.headers["location"] == f"{SIGNED_OUT}?state=bye"
    refused = rp.run("userinfo")["refused"]
    assert refused["status"] == 401
    assert rp.run("introspect")["introspection"] == {"active": False}


def test_a_public_client_with_client_secret_post_elsewhere(provider: Provider, tmp_path: Path) -> None:
    """The publishable key as a public client (PKCE, no secret); and client_secret_post for the other."""
    project = provider.project
    public = RelyingParty.configure(
        tmp_path,
        "public",
        issuer=provider.issuer,
        clientId=project.publishable,
        redirectUri=CALLBACK,
        scope="openid",
    )
    callback = HostedBrowser(provider.url).sign_up(public.run("start")["url"], project, "grace@example.com")
    assert public.run("callback", callback)["claims"]["azp"] == project.publishable
    assert public.run("revoke")["revoked"] is True
    assert public.run("refresh")["refused"]["error"] == "invalid_grant"

    posting = _confidential(provider, tmp_path, "post", authMethod="post")
    callback = HostedBrowser(provider.url).sign_in(posting.run("start")["url"], project, "grace@example.com")
    assert posting.run("callback", callback)["claims"]["email"] == "grace@example.com"


def test_openid_client_sees_the_specs_refusals(provider: Provider, harness: Harness, tmp_path: Path) -> None:
    project = provider.project
    browser = HostedBrowser(provider.url)
    browser.sign_up(
        _confidential(provider, tmp_path, "first").run("start")["url"], project, "alan@example.com"
    )

    # A public client that sends no PKCE challenge: the error comes back to its redirect URI.
    no_pkce = RelyingParty.configure(
        tmp_path,
        "nopkce",
        issuer=provider.issuer,
        clientId=project.publishable,
        redirectUri=CALLBACK,
        scope="openid",
        noPkce=True,
    )
    back = browser.open(no_pkce.run("start")["url"])
    assert back.status_code == 303
    refused = no_pkce.run("callback", back.headers["location"])["refused"]
    assert refused["error"] == "invalid_request", refused

    # An unregistered redirect_uri: a page at the provider, nothing sent anywhere.
    stray = _confidential(provider, tmp_path, "stray")
    page = browser.open(stray.run("start", "https://evil.example/callback")["url"])
    assert page.status_code == 400 and "location" not in page.headers

    # A code redeemed twice.
    rp = _confidential(provider, tmp_path, "twice")
    callback = browser.open(rp.run("start")["url"]).headers["location"]  # signed in already: straight back
    assert "code" in query_of(callback)
    rp.run("callback", callback)
    again = _confidential(provider, tmp_path, "twice-again")
    again.state_file.write_text(rp.state_file.read_text())
    assert again.run("callback", callback)["refused"]["error"] == "invalid_grant"

    # A wrong client secret (the reuse revoked the browser's session: it signs in again).
    wrong = _confidential(provider, tmp_path, "wrong", clientSecret=project.secret[:-4] + "AAAA")
    callback = browser.sign_in(wrong.run("start")["url"], project, "alan@example.com")
    refused = wrong.run("callback", callback)["refused"]
    assert refused["error"] == "invalid_client" and refused["status"] == 401, refused
    assert refused["challenge"] == "basic"  # RFC 6749 5.2: the scheme the client tried

    # An expired code.
    late = _confidential(provider, tmp_path, "late")
    callback = browser.open(late.run("start")["url"]).headers["location"]

    async def expire() -> None:
        async with transaction(harness.runtime.sessionmaker) as db:
            await db.execute(update(RedirectCode).values(expires_at=clock.now()))

    harness.run(expire)
    assert late.run("callback", callback)["refused"]["error"] == "invalid_grant"
