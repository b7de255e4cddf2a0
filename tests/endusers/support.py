"""A small no-JavaScript "browser" for the hosted pages, and a test project with keys."""

from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.concurrent import send
from tests.factories import ConsoleUser, Harness

REDIRECT = "https://app.example.com/callback"
END_USER_PASSWORD = "correct horse battery staple"
HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')
VERIFIERS: dict[str, str] = {}
"""code -> the PKCE verifier of the Browser that was redirected with it (read by `exchange`)."""


def pkce_pair() -> tuple[str, str]:
    """A PKCE verifier and its S256 challenge, with the standard library only (RFC 7636)."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


@dataclass
class CustomerProject:
    owner: ConsoleUser
    org_id: str
    project_id: str
    environment: str
    publishable: str
    secret: str

    def pages(self, page: str) -> str:
        return f"/p/{self.project_id}/{self.environment}/{page}"


def customer_project(
    harness: Harness,
    environment: str = "test",
    redirect_urls: list[str] | None = None,
    owner: ConsoleUser | None = None,
) -> CustomerProject:
    owner = owner or harness.user()
    org_id = harness.org(owner)["id"]
    project_id = harness.project(owner, org_id)["id"]
    owner.ok(
        "PATCH", f"/console/api/projects/{project_id}", json={"redirect_urls": redirect_urls or [REDIRECT]}
    )
    pk = harness.key(owner, project_id, "publishable", environment)["key"]
    sk = harness.key(owner, project_id, "secret", environment)["key"]
    return CustomerProject(owner, org_id, project_id, environment, pk, sk)


@dataclass
class Browser:
    """Keeps its own cookies (name -> value), follows no redirects, reads hidden form fields.

    Like a well-behaved customer app, it opens a page that has a `redirect_url` with a fresh PKCE S256
    challenge (unless `pkce=False` or the test passes its own), and remembers the verifier of every
    code it is redirected with in VERIFIERS, so `exchange` can send it.
    """

    harness: Harness
    cookies: dict[str, str] = field(default_factory=dict)
    last: httpx.Response | None = None
    pkce: bool = True
    verifier: str | None = None
    ip: str | None = None

    def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        client = self.harness.client
        client.cookies.clear()
        headers = kwargs.pop("headers", {})
        if self.cookies:
            headers["cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if self.ip:  # a browser elsewhere (the throttles count per client address)
            response = send(self.harness, method, url, self.ip, headers=headers, **kwargs)
        else:
            response = client.request(method, url, headers=headers, follow_redirects=False, **kwargs)
        for raw in response.headers.get_list("set-cookie"):
            pair = raw.split(";", 1)[0]
            name, _, value = pair.partition("=")
            value = value.strip('"')
            if not value or "max-age=0" in raw.lower():
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        client.cookies.clear()
        self.last = response
        codes = parse_qs(urlsplit(response.headers.get("location", "")).query).get("code", [])
        if response.is_redirect and codes and self.verifier:
            VERIFIERS[codes[0]] = self.verifier
        return response

    def get(self, url: str, **params: str) -> httpx.Response:
        if params.get("redirect_url"):
            self.verifier = None
            if self.pkce and "code_challenge" not in params and "code_challenge_method" not in params:
                self.verifier, challenge = pkce_pair()
                params = {**params, "code_challenge": challenge, "code_challenge_method": "S256"}
        # No params at all rather than an empty dict: httpx drops the URL's own query for `params={}`.
        return self._send("GET", url, params=params or None)

    def hidden(self) -> dict[str, str]:
        assert self.last is not None
        return {name: html.unescape(value) for name, value in HIDDEN.findall(self.last.text)}

    def submit(
        self, url: str, fields: dict[str, str], *, hidden: dict[str, str] | None = None
    ) -> httpx.Response:
        data = {**(self.hidden() if hidden is None else hidden), **fields}
        return self._send("POST", url, data=data)


def code_from(response: httpx.Response, redirect: str = REDIRECT) -> tuple[str, dict[str, list[str]]]:
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert location.startswith(redirect + "?"), location
    query = parse_qs(urlsplit(location).query)
    return query["code"][0], query


def sign_up(
    harness: Harness, project: CustomerProject, email: str, state: str = "st-1", *, pkce: bool = True
) -> tuple[Browser, str]:
    """Drive the sign-up page like a browser (with PKCE unless `pkce=False`); answers the browser and
    the code from the redirect."""
    browser = Browser(harness, pkce=pkce)
    page = browser.get(project.pages("sign-up"), redirect_url=REDIRECT, state=state)
    assert page.status_code == 200, page.text
    response = browser.submit(project.pages("sign-up"), {"email": email, "password": END_USER_PASSWORD})
    code, query = code_from(response)
    assert query["state"] == [state]
    return browser, code


def exchange(
    harness: Harness,
    project: CustomerProject,
    code: str,
    *,
    secret: bool = False,
    headers: dict[str, str] | None = None,
    **fields: Any,
) -> httpx.Response:
    """Exchange a code like the customer: with the publishable key (or the secret key if `secret`),
    REDIRECT and the code's PKCE verifier by default; `fields` override them, None leaves one out."""
    body = {"code": code, "redirect_url": REDIRECT, "code_verifier": VERIFIERS.get(code), **fields}
    harness.client.cookies.clear()
    return harness.client.post(
        "/v1/client/sessions/exchange",
        json={name: value for name, value in body.items() if value is not None},
        headers={**_client_key(project, secret), **(headers or {})},
    )


def refresh(
    harness: Harness,
    project: CustomerProject,
    session_token: str,
    *,
    secret: bool = False,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    harness.client.cookies.clear()
    return harness.client.post(
        "/v1/client/sessions/refresh",
        json={"session_token": session_token},
        headers={**_client_key(project, secret), **(headers or {})},
    )


def _client_key(project: CustomerProject, secret: bool) -> dict[str, str]:
    if secret:
        return {"authorization": f"Bearer {project.secret}"}
    return {"x-publishable-key": project.publishable}


def backend(
    harness: Harness, project: CustomerProject, method: str, path: str, **kwargs: Any
) -> httpx.Response:
    harness.client.cookies.clear()
    headers = {"authorization": f"Bearer {project.secret}", **kwargs.pop("headers", {})}
    return harness.client.request(method, f"/v1/backend{path}", headers=headers, **kwargs)


def warm(harness: Harness, *publishable: str) -> None:
    """Fill the key cache (a fill records the key's last use), so a snapshot taken next stays still."""
    for key in publishable:
        harness.client.cookies.clear()
        assert harness.client.get("/v1/client-config", headers={"x-publishable-key": key}).status_code == 200
