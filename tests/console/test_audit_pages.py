"""The audit log page and its export (admins and owners): filters narrow the list as the API's do, the
pages walk every event once, the export holds every matching event (the API's rows) as CSV or JSON,
with spreadsheet formulas defused; htmx gets the table alone."""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Any

from silver_auth.console.audit import csv_cell
from tests.console.support import assert_page
from tests.endusers.support import backend, customer_project
from tests.factories import ConsoleUser, Harness

NEXT_PAGE = re.compile(r'<a href="([^"]+)" rel="next">')
ACTION_CELL = re.compile(r'<th scope="row"><code>([a-z_.]+)</code></th>')


def audit_path(org_id: str) -> str:
    return f"/console/orgs/{org_id}/audit"


def api_events(owner: ConsoleUser, org_id: str, **filters: str) -> list[dict[str, Any]]:
    """Every event the JSON API lists for `filters`, walking its cursor."""
    items: list[dict[str, Any]] = []
    params: dict[str, Any] = {**filters, "limit": 200}
    while True:
        page = owner.ok("GET", f"/console/api/orgs/{org_id}/audit", params=params)
        items += page["items"]
        if page["next"] is None:
            return items
        params["cursor"] = page["next"]


def actions_shown(owner: ConsoleUser, path: str, **params: str) -> list[str]:
    response = owner.get(path, params=params)
    assert_page(response, 200)
    return ACTION_CELL.findall(response.text)


def test_filters_narrow_the_log(harness: Harness) -> None:
    project = customer_project(harness)  # org, project, two keys
    owner = project.owner
    admin = harness.member(owner, project.org_id, "admin")
    admin.ok(
        "POST",
        f"/console/api/projects/{project.project_id}/keys",
        201,
        json={"kind": "secret", "environment": "test"},
    )
    path = audit_path(project.org_id)

    everything = actions_shown(owner, path)
    assert {"org.created", "project.created", "key.created", "invitation.created"} <= set(everything)
    assert actions_shown(owner, path, action="key.created") == ["key.created"] * 3
    by_admin = set(actions_shown(owner, path, actor=admin.account_id))
    assert "key.created" in by_admin and "invitation.accepted" in by_admin and "org.created" not in by_admin
    assert actions_shown(owner, path, until="2000-01-01T00:00") == []
    assert actions_shown(owner, path, since="2999-01-01T00:00:00") == []
    assert len(actions_shown(owner, path, since="2000-01-01T00:00")) == len(everything)

    page = owner.get(path, params={"action": "key.created"}).text
    assert owner.email in page  # the actor named by email, a member's account
    assert "No event matches these filters" in owner.get(path, params={"until": "2000-01-01T00:00"}).text


def test_an_unreadable_time_is_explained(harness: Harness) -> None:
    owner = harness.user()
    org_id = harness.org(owner)["id"]
    response = owner.get(audit_path(org_id), params={"since": "yesterday"})
    assert_page(response, 422)
    assert "From: give a date and time" in response.text


def test_the_pages_walk_every_event_once(harness: Harness) -> None:
    project = customer_project(harness)
    made = set()
    for n in range(30):  # more than a page of end_user.created
        response = backend(harness, project, "POST", "/users", json={"email": f"u{n}@example.com"})
        made.add(response.json()["id"])
    seen: list[str] = []
    path: str | None = f"{audit_path(project.org_id)}?action=end_user.created"
    pages = 0
    while path is not None:
        response = project.owner.get(path)
        assert_page(response, 200)
        seen += re.findall(r'<code class="id">(usr_[A-Za-z0-9_-]+)</code>', response.text)
        link = NEXT_PAGE.search(response.text)
        path = link.group(1).replace("&amp;", "&") if link else None
        pages += 1
        if path:
            assert "action=end_user.created" in path  # the filter travels with the cursor
    assert pages == 2
    assert sorted(seen) == sorted(made) and len(seen) == len(set(seen))


def test_the_csv_export_holds_every_matching_event(harness: Harness) -> None:
    project = customer_project(harness)
    for n in range(30):
        backend(harness, project, "POST", "/users", json={"email": f"c{n}@example.com"})
    owner = project.owner
    response = owner.get(f"{audit_path(project.org_id)}/export", params={"format": "csv"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["content-disposition"].startswith("attachment; filename=")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    listed = api_events(owner, project.org_id)
    assert len(rows) == len(listed) > 30
    assert [(r["id"], r["action"], r["actor"], r["target"] or None) for r in rows] == [
        (e["id"], e["action"], e["actor"], e["target"]) for e in listed
    ]
    assert {r["actor_email"] for r in rows if r["actor"] == owner.account_id} == {owner.email}

    only_keys = owner.get(
        f"{audit_path(project.org_id)}/export", params={"format": "csv", "action": "key.created"}
    )
    keys = list(csv.DictReader(io.StringIO(only_keys.text)))
    assert [r["id"] for r in keys] == [
        e["id"] for e in api_events(owner, project.org_id, action="key.created")
    ]


def test_the_json_export_is_an_array_of_the_apis_events(harness: Harness) -> None:
    project = customer_project(harness)
    owner = project.owner
    response = owner.get(f"{audit_path(project.org_id)}/export", params={"format": "json"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["content-disposition"].endswith('.json"')
    exported = json.loads(response.text)
    assert isinstance(exported, list)

    def unsealed(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in e.items() if k != "seq"} for e in events]  # sealing runs meanwhile

    assert unsealed(exported) == unsealed(api_events(owner, project.org_id))


def test_the_page_links_to_the_export_of_its_filters(harness: Harness) -> None:
    owner = harness.user()
    org_id = harness.org(owner)["id"]
    page = owner.get(audit_path(org_id), params={"action": "org.created"}).text
    assert f'href="{audit_path(org_id)}/export?action=org.created&amp;format=csv"' in page
    assert f'href="{audit_path(org_id)}/export?action=org.created&amp;format=json"' in page


def test_formula_cells_are_defused(harness: Harness) -> None:
    owner = harness.user("=hyperlink(1)@example.com")  # a valid address a spreadsheet would run
    org_id = harness.org(owner)["id"]
    response = owner.get(f"{audit_path(org_id)}/export", params={"format": "csv"})
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert rows and {r["actor_email"] for r in rows} == {"'=hyperlink(1)@example.com"}
    assert [csv_cell(v) for v in ("+1", "-1", "@a", "=a", "a=b", None)] == [
        "'+1",
        "'-1",
        "'@a",
        "'=a",
        "a=b",
        "",
    ]


def test_htmx_gets_the_table_alone(harness: Harness) -> None:
    owner = harness.user()
    org_id = harness.org(owner)["id"]
    fragment = owner.get(audit_path(org_id), headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    assert fragment.text.lstrip().startswith('<div id="audit-results">')
    assert "<html" not in fragment.text and "org.created" in fragment.text
    restored = owner.get(
        audit_path(org_id), headers={"HX-Request": "true", "HX-History-Restore-Request": "true"}
    )
    assert "<html" in restored.text  # Back, with no cached copy: the whole page

    page = assert_page(owner.get(audit_path(org_id)), 200)
    assert page.forms[-1]["method"] == "get"  # the filter form, without JavaScript too
    text = owner.get(audit_path(org_id)).text
    assert 'hx-get="' in text and 'hx-target="#audit-results"' in text and 'hx-push-url="true"' in text


def test_below_admin_the_log_is_refused(harness: Harness) -> None:
    owner = harness.user()
    org_id = harness.org(owner)["id"]
    developer = harness.member(owner, org_id, "developer")
    assert_page(developer.get(audit_path(org_id)), 403)
    assert_page(developer.get(f"{audit_path(org_id)}/export", params={"format": "csv"}), 403)
    assert_page(harness.user().get(f"{audit_path(org_id)}/export"), 404)  # not a member
