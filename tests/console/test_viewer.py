"""A viewer's console: every page shows only the controls a viewer may use, and forcing any other gets
403 and writes nothing. Both walk the rows of the pages' role matrix (PAGES, with `path_ids`), so a
page added there is covered here without a line of this file changing."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest

from tests.accounts.support import changes
from tests.authz.test_console_pages import PAGES, path_ids
from tests.authz.test_matrix import RANK, set_plan
from tests.console.support import assert_page
from tests.dbstate import snapshot
from tests.factories import ConsoleUser, Harness

VIEWER_MAY = frozenset({"public", "account", "viewer"})
"""Access rules a viewer meets: signed-out forms, its own account's (sign-out, its account pages, a new
org of its own, accepting an invitation) and a viewer's own (leaving the org)."""
HX_METHODS = {"hx-post": "POST", "hx-put": "PUT", "hx-patch": "PATCH", "hx-delete": "DELETE"}


def _matcher(template: str) -> re.Pattern[str]:
    return re.compile(re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "/?")


ROWS = [(method, _matcher(template), access) for (method, template), access in PAGES.items()]


def access_of(method: str, url: str) -> str | None:
    """The access rule of the page row a control sends to (None: no page answers it)."""
    path = urlsplit(url).path
    return next((a for m, pattern, a in ROWS if m == method and pattern.fullmatch(path)), None)


@dataclass
class Controls(HTMLParser):
    """Every mutation control of a page: (method, target) of post forms and hx-post/put/patch/delete."""

    found: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "form" and (values.get("method") or "get").lower() != "get":
            self.found.append(((values.get("method") or "").upper(), values.get("action") or ""))
        for attribute, method in HX_METHODS.items():
            if attribute in values:
                self.found.append((method, values[attribute] or ""))


def controls(text: str) -> list[tuple[str, str]]:
    parsed = Controls()
    parsed.feed(text)
    return parsed.found


@pytest.fixture
def viewer_world(harness: Harness) -> tuple[ConsoleUser, dict[str, str]]:
    owner = harness.user()
    org_id = harness.org(owner)["id"]
    set_plan(harness, org_id, "scale")  # room for the members path_ids makes
    viewer = harness.member(owner, org_id, "viewer")
    return viewer, path_ids(harness, owner, org_id)


def test_access_of_reads_the_rows() -> None:
    assert access_of("POST", "/console/sign-out") == "account"
    assert access_of("POST", "/console/orgs/org_1/projects") == "admin"
    assert access_of("POST", "/console/orgs/org_1/projects/") == "admin"
    assert access_of("POST", "/console/orgs/org_1/projects/more") is None
    assert access_of("POST", "/elsewhere") is None


def test_a_viewer_sees_no_control_above_its_role_on_any_page(
    harness: Harness, viewer_world: tuple[ConsoleUser, dict[str, str]]
) -> None:
    viewer, ids = viewer_world
    walked = 0
    for (method, template), access in PAGES.items():
        if method != "GET":
            continue
        path = template.format(**ids)
        response = viewer.get(path, follow_redirects=True)
        if access == "platform-admin" or (access in RANK and RANK[access] > RANK["viewer"]):
            assert response.status_code == 403, path  # above a viewer (the audit log, the admin area)
            continue
        if not response.headers.get("content-type", "").startswith("text/html"):
            continue  # the stylesheet and scripts
        assert response.status_code == 200, (path, response.status_code, response.text[:300])
        walked += 1
        for control_method, target in controls(response.text):
            sent_to = access_of(control_method, target)
            assert sent_to is not None, f"{path}: a {control_method} to {target}, which no page answers"
            assert sent_to in VIEWER_MAY, f"{path} shows a viewer a {control_method} to {target} ({sent_to})"
    assert walked >= 3


def test_a_viewer_forcing_any_control_above_its_role_gets_403_and_nothing_is_written(
    harness: Harness, viewer_world: tuple[ConsoleUser, dict[str, str]]
) -> None:
    viewer, ids = viewer_world
    above = [
        (method, template)
        for (method, template), access in PAGES.items()
        if method != "GET" and access in RANK and RANK[access] > RANK["viewer"]
    ]
    assert above, "no row above the viewer's role"
    before = snapshot(harness)
    for method, template in above:
        path = template.format(**ids)
        form = {"csrf_token": viewer.csrf_token, "name": "Forced", "role": "owner", "email": "x@example.com"}
        refused = viewer.request(method, path, data=form, csrf=False, follow_redirects=False)
        assert_page(refused, 403)
    assert changes(before, snapshot(harness)) == {}
