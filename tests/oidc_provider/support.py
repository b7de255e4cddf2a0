"""A running service for the OpenID Provider tests, a project whose issuer it serves, and a cookie-
keeping "browser" that signs a user in on the hosted pages the authorize endpoint sends it to."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pytest

from tests.endusers.support import END_USER_PASSWORD, CustomerProject, customer_project
from tests.factories import Harness
from tests.processes import ApiProcess, free_port, settings_env

CALLBACK = "https://app.example.com/callback"
SIGNED_OUT = "https://app.example.com/signed-out"
HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


@dataclass
class Provider:
    url: str
    project: CustomerProject

    @property
    def issuer(self) -> str:
        return f"{self.url}/p/{self.project.project_id}/{self.project.environment}"

    def metadata(self) -> dict[str, object]:
        answer = httpx.get(f"{self.issuer}/.well-known/openid-configuration")
        assert answer.status_code == 200, answer.text
        metadata: dict[str, object] = answer.json()
        return metadata


@pytest.fixture
def provider(harness: Harness, tmp_path: Path) -> Iterator[Provider]:
    """The service as a real process on the test's database, and a project registered with CALLBACK."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    project = customer_project(harness, redirect_urls=[CALLBACK, SIGNED_OUT])
    own = {"SILVER_AUTH_URL": url, "SILVER_ACCOUNTS_URL": url}
    api = ApiProcess(settings_env(harness.settings, **own), tmp_path / "api.log", port)
    api.start()
    yield Provider(url, project)
    api.stop()


class HostedBrowser:
    """Follows the service's own redirects, keeps its cookies, submits the hosted forms; stops at the
    first redirect that leaves the service (the client's redirect URI) and returns it."""

    def __init__(self, service_url: str) -> None:
        self.service_url = service_url
        self.http = httpx.Client(follow_redirects=False, timeout=10)
        self.page = ""

    def open(self, url: str) -> httpx.Response:
        """GET `url` and the service's redirects after it; the last answer (a page, or a redirect away)."""
        answer = self.http.get(url)
        while answer.is_redirect and self._own(answer.headers["location"], answer.url):
            answer = self.http.get(urljoin(str(answer.url), answer.headers["location"]))
        self.page = answer.text
        return answer

    def _own(self, location: str, base: httpx.URL) -> bool:
        return urljoin(str(base), location).startswith(self.service_url)

    def submit(self, action: str, **fields: str) -> httpx.Response:
        """Post the current page's hidden fields and `fields` to `action` (a path of the hosted pages)."""
        hidden = {name: html.unescape(value) for name, value in HIDDEN.findall(self.page)}
        answer = self.http.post(f"{self.service_url}{action}", data={**hidden, **fields})
        if not answer.is_redirect:
            self.page = answer.text
        return answer

    def sign_up(self, authorize_url: str, project: CustomerProject, email: str) -> str:
        """Through authorize to the sign-in page, over to sign-up, and back: the redirect it ends with."""
        page = self.open(authorize_url)
        assert page.status_code == 200 and "authorization" in page.text, page.text
        link = re.search(r'href="([^"]*sign-up[^"]*)"', page.text)
        assert link is not None, page.text
        self.open(f"{self.service_url}{html.unescape(link.group(1))}")
        answer = self.submit(project.pages("sign-up"), email=email, password=END_USER_PASSWORD)
        assert answer.status_code == 303, answer.text
        return answer.headers["location"]

    def sign_in(self, authorize_url: str, project: CustomerProject, email: str) -> str:
        page = self.open(authorize_url)
        if page.is_redirect:  # already signed in: straight back with a code
            return page.headers["location"]
        answer = self.submit(project.pages("sign-in"), email=email, password=END_USER_PASSWORD)
        assert answer.status_code == 303, answer.text
        return answer.headers["location"]


def query_of(url: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}
