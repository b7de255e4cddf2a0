"""A real API process for the SDK's tests, a project made through the harness, and an end-user signed
up on the process's hosted page (plain httpx, like a browser without JavaScript) so that every token
the tests verify was issued by the running service."""

from __future__ import annotations

import html
import re
import secrets
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import httpx

from seqn_auth import ClientSession, SeqnClient, new_pkce, new_state, sign_up_url
from tests.endusers.support import END_USER_PASSWORD, REDIRECT, CustomerProject
from tests.processes import ApiProcess

HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


@dataclass
class SignedIn:
    email: str
    session: ClientSession


def hosted_code(service: ApiProcess | str, project: CustomerProject, email: str) -> tuple[str, str]:
    """Sign `email` up on the service's hosted page with PKCE: the redirect's code and the verifier."""
    url_of_service = service if isinstance(service, str) else service.url
    verifier, challenge = new_pkce()
    state = new_state()
    url = sign_up_url(
        url_of_service,
        project.project_id,
        project.environment,
        redirect_url=REDIRECT,
        state=state,
        code_challenge=challenge,
    )
    with httpx.Client(follow_redirects=False, timeout=10) as browser:
        page = browser.get(url)
        assert page.status_code == 200, page.text
        fields = {name: html.unescape(value) for name, value in HIDDEN.findall(page.text)}
        fields |= {"email": email, "password": END_USER_PASSWORD}
        posted = browser.post(url.split("?", 1)[0], data=fields)
    assert posted.status_code == 303, posted.text
    location = posted.headers["location"]
    assert location.startswith(REDIRECT + "?"), location
    query = parse_qs(urlsplit(location).query)
    assert query["state"] == [state]
    return query["code"][0], verifier


def sign_in(service: ApiProcess | str, project: CustomerProject, email: str | None = None) -> SignedIn:
    """A new end-user with a session, the code exchanged server-side with the secret key."""
    email = email or f"end-{secrets.token_hex(4)}@example.com"
    code, verifier = hosted_code(service, project, email)
    with SeqnClient(service if isinstance(service, str) else service.url, project.secret) as client:
        session = client.exchange_code(code, REDIRECT, code_verifier=verifier)
    return SignedIn(email, session)
