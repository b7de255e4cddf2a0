"""Driving the console pages as a browser would: forms, their hidden tokens, redirects, cookies."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

import httpx

from silver_auth.console.render import PAGE_CSP
from tests.factories import Harness

CSP = PAGE_CSP.decode()


@dataclass
class Parsed(HTMLParser):
    """The forms of a page (action, hidden fields, inputs) and anything inline a strict CSP forbids."""

    forms: list[dict[str, Any]] = field(default_factory=list)
    inline: list[str] = field(default_factory=list)
    _script_open: bool = False

    def __post_init__(self) -> None:
        super().__init__()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name, _ in attrs:
            if name == "style" or name.startswith("on"):
                self.inline.append(f"<{tag} {name}>")
        if tag == "style":
            self.inline.append("<style>")
        if tag == "script" and not values.get("src"):
            self.inline.append("<script> without src")
        if tag == "form":
            self.forms.append({"action": values.get("action"), "method": values.get("method"), "fields": {}})
        if tag == "input" and self.forms:
            self.forms[-1]["fields"][values.get("name")] = values.get("value") or ""


def parse(response: httpx.Response) -> Parsed:
    parsed = Parsed()
    parsed.feed(response.text)
    return parsed


def assert_page(response: httpx.Response, status: int) -> Parsed:
    """An HTML console page: its status, the strict CSP, no-store, nothing inline."""
    assert response.status_code == status, (response.status_code, response.text[:500])
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["content-security-policy"] == CSP
    assert response.headers["cache-control"] == "no-store"
    parsed = parse(response)
    assert parsed.inline == []
    return parsed


class Browser:
    """One browser: the harness client with its own cookie jar, redirects followed by hand."""

    def __init__(self, harness: Harness) -> None:
        self.harness = harness
        self.client = harness.client
        self.cookies = httpx.Cookies()

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        self.client.cookies = self.cookies
        response = self.client.request(method, path, follow_redirects=False, **kwargs)
        self.cookies = httpx.Cookies(self.client.cookies)
        self.client.cookies = httpx.Cookies()
        return response

    def get(self, path: str) -> httpx.Response:
        return self._send("GET", path)

    def post(self, path: str, data: dict[str, str]) -> httpx.Response:
        return self._send("POST", path, data=data)

    def form(self, path: str, action: str | None = None) -> dict[str, str]:
        """The hidden fields of the page's form posting to `action` (default: `path`)."""
        parsed = assert_page(self.get(path), 200)
        for form in parsed.forms:
            if form["action"] == (action or path):
                return {k: v for k, v in form["fields"].items() if k in {"csrf_token", "invitation"}}
        raise AssertionError(f"no form posting to {action or path} on {path}")

    def submit(self, path: str, values: dict[str, str], action: str | None = None) -> httpx.Response:
        return self.post(action or path, {**self.form(path, action), **values})

    def follow(self, response: httpx.Response) -> httpx.Response:
        assert response.status_code == 303, (response.status_code, response.text[:500])
        return self.get(response.headers["location"])
