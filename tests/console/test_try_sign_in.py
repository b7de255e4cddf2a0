"""Try sign-in: start (PKCE and state sealed in a cookie of the callback path) -> the hosted sign-up ->
the console's callback, which redeems the code like the public exchange and verifies the JWT like the
backend; the callback is an allowed redirect URL for its own project only."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from sqlalchemy import select

from silver_auth.console.try_sign_in import TRY_COOKIE, TRY_MINUTES, StartedTry
from silver_auth.core import clock, urls
from silver_auth.core.crypto import token_hash
from silver_auth.endusers.models import EndUser, EndUserSession, RedirectCode
from silver_auth.endusers.sessions import redirect_allowed
from silver_auth.projects.models import Project
from tests.console.support import Browser, assert_page, parse
from tests.console.test_sign_in import signed_in_browser
from tests.endusers.support import END_USER_PASSWORD, pkce_pair
from tests.factories import ConsoleUser, Harness


def _path(url: str) -> str:
    """The path and query of an absolute URL (the test client serves every host)."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def try_path(project_id: str) -> str:
    return f"/console/projects/{project_id}/try"


def start(browser: Browser, project_id: str, environment: str = "test") -> httpx.Response:
    fields = browser.form(try_path(project_id))
    return browser.post(try_path(project_id), {**fields, "environment": environment})


def sign_up_on_hosted_page(browser: Browser, hosted_sign_in: str, email: str) -> httpx.Response:
    """Follow the hosted sign-in's "Create one" link and post its form (with every hidden field)."""
    sign_in = browser.get(_path(hosted_sign_in))
    assert sign_in.status_code == 200, sign_in.text
    link = re.search(r'href="([^"]*/sign-up\?[^"]*)"', sign_in.text)
    assert link, sign_in.text
    sign_up_path = link.group(1).replace("&amp;", "&")
    page = browser.get(sign_up_path)
    assert page.status_code == 200, page.text
    form = next(f for f in parse(page).forms if f["action"].endswith("/sign-up"))
    return browser.post(form["action"], {**form["fields"], "email": email, "password": END_USER_PASSWORD})


@dataclass
class Tried:
    """A developer's started try whose end-user signed up: the hosted page's redirect to the callback."""

    owner: ConsoleUser
    browser: Browser
    project_id: str
    back: httpx.Response

    @property
    def callback(self) -> str:
        return _path(self.back.headers["location"])


def tried(harness: Harness, email: str = "end-user@example.com") -> Tried:
    owner = harness.user()
    project_id = harness.project(owner, harness.org(owner)["id"])["id"]
    browser = signed_in_browser(harness, owner.email)
    started = start(browser, project_id)
    assert started.status_code == 303, started.text
    back = sign_up_on_hosted_page(browser, started.headers["location"], email)
    assert back.status_code == 303, back.text
    return Tried(owner, browser, project_id, back)


def _query(location: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}


def _started_try(harness: Harness, browser: Browser, project_id: str) -> StartedTry:
    opened = StartedTry.opened(harness.runtime, project_id, browser.cookies.get(TRY_COOKIE))
    assert opened is not None
    return opened


def _claims_shown(page: httpx.Response) -> dict[str, Any]:
    found = re.search(r'<code id="jwt-claims">(.*?)</code>', page.text, re.DOTALL)
    assert found, page.text
    claims: dict[str, Any] = json.loads(found.group(1).replace("&#34;", '"'))
    return claims


def test_start_goes_to_the_hosted_sign_in_with_pkce_and_the_console_callback(harness: Harness) -> None:
    owner = harness.user()
    project_id = harness.project(owner, harness.org(owner)["id"])["id"]
    browser = signed_in_browser(harness, owner.email)
    shown = assert_page(browser.get(try_path(project_id)), 200)
    assert any(form["action"] == try_path(project_id) for form in shown.forms)
    started = start(browser, project_id)
    assert started.status_code == 303
    location = started.headers["location"]
    assert location.startswith(urls.hosted_pages(harness.settings.auth_url, project_id, "test") + "/sign-in?")
    query = _query(location)
    callback = urls.console_try_callback(harness.settings.accounts_url, project_id)
    assert query["redirect_url"] == callback
    assert query["code_challenge_method"] == "S256"
    set_cookie = started.headers["set-cookie"].lower()
    assert "httponly" in set_cookie and "max-age=600" in set_cookie
    cookie = next(c for c in browser.cookies.jar if c.name == TRY_COOKIE)
    assert cookie.path == urls.console_try_callback_path(project_id)  # no other page receives it
    sealed = _started_try(harness, browser, project_id)
    assert query["state"] == sealed.state
    assert sealed.verifier not in location and sealed.verifier not in cookie.value  # sealed, not signed
    live = start(browser, project_id, "live")
    assert "/live/sign-in?" in live.headers["location"]


def test_try_sign_in_shows_the_verified_claims_once(harness: Harness) -> None:
    done = tried(harness)
    browser, project_id = done.browser, done.project_id
    callback = urls.console_try_callback(harness.settings.accounts_url, project_id)
    assert done.back.headers["location"].startswith(callback + "?")
    verifier = _started_try(harness, browser, project_id).verifier
    result = browser.get(done.callback)
    assert_page(result, 200)
    text = result.text
    claims = _claims_shown(result)

    async def end_user() -> EndUser:
        async with harness.runtime.sessionmaker() as db:
            found = await db.scalar(select(EndUser).where(EndUser.email == "end-user@example.com"))
            assert found is not None
            return found

    user = harness.run(end_user)
    assert claims["sub"] == user.id and claims["aud"] == project_id and claims["env"] == "test"
    assert claims["iss"] == urls.session_jwt_issuer(harness.settings.auth_url, project_id)
    assert re.search(r"Signature verified with key <code>sig_[A-Za-z0-9_-]+</code>", text)
    assert "failed" not in text and "not checked" not in text
    assert "shown on this page only" in text
    assert verifier not in text
    assert _refresh_hashes(harness) and not _refresh_hashes(harness) & {
        token_hash(word) for word in re.findall(r"[A-Za-z0-9_-]{43}", text)
    }  # the session token (the refresh token) is nowhere on the page
    # The snippets carry the project's real ids and URLs, and a placeholder for the publishable key.
    assert urls.jwks(harness.settings.auth_url, project_id) in text
    assert "/v1/client/sessions/exchange" in text and "YOUR_PUBLISHABLE_KEY" in text
    assert "sk_test_" not in text and "sk_live_" not in text
    # The token the page showed verifies at the backend too (the same check).
    jwt = re.search(r'<code id="session-jwt" class="secret">([^<]+)</code>', text)
    assert jwt
    secret_key = harness.key(done.owner, project_id, "secret", "test")["key"]
    verified = harness.client.post(
        "/v1/backend/sessions/verify",
        json={"token": jwt.group(1)},
        headers={"authorization": f"Bearer {secret_key}"},
    )
    assert verified.json()["valid"] is True
    # One try, one answer: the cookie is gone, so the same callback again is refused before any code use.
    again = browser.get(done.callback)
    assert_page(again, 400)
    assert "expired" in again.text and jwt.group(1) not in again.text


def _refresh_hashes(harness: Harness) -> set[str]:
    async def work() -> set[str]:
        async with harness.runtime.sessionmaker() as db:
            return {row.refresh_hash for row in await db.scalars(select(EndUserSession)) if row.refresh_hash}

    return harness.run(work)


def _unused_codes(harness: Harness) -> int:
    async def work() -> int:
        async with harness.runtime.sessionmaker() as db:
            return len(list(await db.scalars(select(RedirectCode).where(RedirectCode.used_at.is_(None)))))

    return harness.run(work)


def test_a_tampered_state_is_refused_and_the_code_left_unused(harness: Harness) -> None:
    done = tried(harness)
    query = _query(done.callback)
    callback = urlsplit(done.callback).path
    for state in ("forged", "", query["state"] + "x"):
        refused = done.browser.get(f"{callback}?{urlencode({'code': query['code'], 'state': state})}")
        assert_page(refused, 400)
        assert "does not match" in refused.text
    assert _unused_codes(harness) == 1
    assert_page(done.browser.get(done.callback), 200)


def test_another_browser_cannot_finish_the_try(harness: Harness) -> None:
    done = tried(harness)
    elsewhere = signed_in_browser(harness, done.owner.email)  # the same developer, without the try cookie
    refused = elsewhere.get(done.callback)
    assert_page(refused, 400)
    assert "expired or was started in another browser" in refused.text
    assert _unused_codes(harness) == 1
    assert_page(done.browser.get(done.callback), 200)


def test_an_expired_try_and_a_denied_sign_in_are_clear_pages(harness: Harness) -> None:
    done = tried(harness)
    query = _query(done.callback)
    callback = urlsplit(done.callback).path
    denied = done.browser.get(f"{callback}?{urlencode({'error': 'access_denied', 'state': query['state']})}")
    assert_page(denied, 400)
    assert "not completed (access_denied)" in denied.text
    clock.advance(TRY_MINUTES * 60 + 1)
    expired = done.browser.get(done.callback)
    assert_page(expired, 400)
    assert "expired" in expired.text
    assert "Start" in expired.text  # the page offers to start again


def test_the_callback_with_nothing_to_show_and_a_wrong_environment(harness: Harness) -> None:
    owner = harness.user()
    project_id = harness.project(owner, harness.org(owner)["id"])["id"]
    browser = signed_in_browser(harness, owner.email)
    nothing = assert_page(browser.get(f"{try_path(project_id)}/callback"), 200)
    assert nothing.forms
    fields = browser.form(try_path(project_id))
    wrong = browser.post(try_path(project_id), {**fields, "environment": "staging"})
    assert_page(wrong, 400)
    assert "Choose the test or the live environment" in wrong.text
    assert TRY_COOKIE not in browser.cookies


def _hosted_sign_in(harness: Harness, project_id: str, redirect_url: str) -> httpx.Response:
    _, challenge = pkce_pair()
    harness.client.cookies.clear()
    return harness.client.get(
        f"/p/{project_id}/test/sign-in",
        params={
            "redirect_url": redirect_url,
            "state": "s",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        },
    )


def test_the_callback_is_allowed_for_its_own_project_only(harness: Harness) -> None:
    owner = harness.user()
    org_id = harness.org(owner)["id"]
    mine = harness.project(owner, org_id, "Mine")["id"]
    other = harness.project(owner, harness.org(owner, "Other org")["id"], "Other")["id"]
    accounts = harness.settings.accounts_url.rstrip("/")
    assert _hosted_sign_in(harness, mine, urls.console_try_callback(accounts, mine)).status_code == 200
    for refused_url in (
        urls.console_try_callback(accounts, other),  # another project's callback
        f"{accounts}/console/projects/{mine}/try",  # another console path
        f"{accounts}/console/",
        f"{accounts}/console/api/sign-in",
        urls.console_try_callback(accounts, mine) + "/",
        urls.console_try_callback(accounts, mine) + "?next=https://evil.example.com",
        urls.console_try_callback("https://evil.example.com", mine),
        urls.console_try_callback_path(mine),  # relative
    ):
        answer = _hosted_sign_in(harness, mine, refused_url)
        assert answer.status_code == 400, refused_url
        assert "redirect URL is not registered" in answer.text


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://accounts.example.com/console/projects/prj_a/try/callback", True),
        ("https://app.example.com/callback", True),
        ("https://accounts.example.com/console/projects/prj_b/try/callback", False),
        ("https://auth.example.com/console/projects/prj_a/try/callback", False),
        ("https://accounts.example.com/console/projects/prj_a/try", False),
        ("http://accounts.example.com/console/projects/prj_a/try/callback", False),
        ("https://accounts.example.com/console/projects/prj_a/try/callback/", False),
    ],
)
def test_redirect_allowed_adds_exactly_the_projects_own_callback(url: str, allowed: bool) -> None:
    project = Project(
        id="prj_a", org_id="org_a", name="A", redirect_urls=["https://app.example.com/callback"]
    )
    assert redirect_allowed(project, url, "https://accounts.example.com") is allowed


def test_a_code_redeemed_twice_is_a_clear_page_and_ends_its_session(harness: Harness) -> None:
    done = tried(harness)
    kept = done.browser.cookies.get(TRY_COOKIE)  # as if copied before the first answer cleared it
    assert_page(done.browser.get(done.callback), 200)
    done.browser.cookies.set(TRY_COOKIE, kept, path=urls.console_try_callback_path(done.project_id))
    again = done.browser.get(done.callback)
    assert_page(again, 400)
    assert "already exchanged once" in again.text and "Start" in again.text

    async def revoked() -> list[bool]:
        async with harness.runtime.sessionmaker() as db:
            return [row.revoked_at is not None for row in await db.scalars(select(EndUserSession))]

    assert harness.run(revoked) == [True]  # RFC 6749 4.1.2, as at the public exchange
