"""Driving the hosted end-user pages in a browser the way an end-user does, shared by the tests and
the screenshot run."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit

import pyotp
from playwright.sync_api import Page

from tests.browser.support import CustomerApp, assert_accessible
from tests.endusers.support import END_USER_PASSWORD, REDIRECT, CustomerProject, exchange, pkce_pair
from tests.factories import Harness


def open_hosted(page: Page, project: CustomerProject, name: str, state: str) -> str:
    """Opens a hosted page the way a customer app links to it (PKCE S256); answers the verifier."""
    verifier, challenge = pkce_pair()
    query = {
        "redirect_url": REDIRECT,
        "state": state,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    response = page.goto(f"{project.pages(name)}?{urlencode(query)}")
    assert response is not None and response.status == 200, response and response.text()
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "style-src 'self'" in csp and "script" not in csp
    return verifier


def arrived_code(app: CustomerApp, state: str) -> str:
    assert app.arrivals, "the browser never reached the redirect URL"
    query = parse_qs(urlsplit(app.arrivals[-1]).query)
    assert query["state"] == [state]
    return query["code"][0]


def sign_up(harness: Harness, page: Page, project: CustomerProject, app: CustomerApp, email: str) -> None:
    verifier = open_hosted(page, project, "sign-up", "st-up")
    assert_accessible(page)
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(END_USER_PASSWORD)
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url(REDIRECT + "?*")
    code = arrived_code(app, "st-up")
    # Neither the browser nor the page read the code's PKCE verifier: the customer app holds it.
    exchanged = exchange(harness, project, code, code_verifier=verifier)
    assert exchanged.status_code == 200, exchanged.text


def enrol_totp(page: Page, project: CustomerProject) -> str:
    page.goto(project.pages("account/two-step/"))
    assert page.get_by_text("Two-step verification is off").is_visible()
    assert_accessible(page)
    page.get_by_role("button", name="Turn on").click()
    secret = page.locator("p.secret code").inner_text()
    assert page.locator(".qr svg").count() == 1
    assert_accessible(page)
    page.get_by_label("The code the app shows now").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Confirm").click()
    assert page.locator("ul.codes li").count() == 10
    assert_accessible(page)
    return secret
