"""An admin in a real browser: finds an end-user their backend created, ends that user's session and
bans them; reads the audit log filtered by action and downloads its CSV export."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page

from tests.browser.console_flow import sign_in
from tests.browser.steps_users_audit import (
    ban_end_user,
    export_audit_csv,
    find_end_user,
    open_audit,
    revoke_end_user_session,
)
from tests.browser.support import Recorder
from tests.endusers.support import END_USER_PASSWORD, REDIRECT, Browser, backend, code_from, customer_project
from tests.factories import Harness


def test_an_admin_manages_an_end_user_and_reads_the_audit_log(
    page: Page, recorder: Recorder, harness: Harness, tmp_path: Path
) -> None:
    owner = harness.user("owner@example.com")
    project = customer_project(harness, owner=owner)  # test-environment keys
    created = backend(
        harness, project, "POST", "/users", json={"email": "end@example.com", "password": END_USER_PASSWORD}
    )
    assert created.status_code == 201, created.text
    hosted = Browser(harness)  # the end-user signs in on the hosted page: a session to end
    hosted.get(project.pages("sign-in"), redirect_url=REDIRECT)
    code_from(
        hosted.submit(project.pages("sign-in"), {"email": "end@example.com", "password": END_USER_PASSWORD})
    )
    session_id = backend(harness, project, "GET", f"/users/{created.json()['id']}/sessions").json()["items"][
        0
    ]["id"]

    sign_in(page, owner.email)
    user_id = find_end_user(page, project.project_id, "end@example.com", environment="test")
    assert user_id == created.json()["id"]
    assert page.get_by_text(session_id).is_visible()
    assert "Ended the session" in revoke_end_user_session(page, session_id)
    assert backend(harness, project, "GET", f"/sessions/{session_id}").json()["status"] == "revoked"
    assert "Banned end@example.com" in ban_end_user(page)
    assert backend(harness, project, "GET", f"/users/{user_id}").json()["banned"] is True

    keys = open_audit(page, project.org_id, action="key.created")
    assert [row["action"] for row in keys] == ["key.created", "key.created"]
    assert {row["actor"] for row in keys} == {"owner@example.com"}
    swapped = [seen for seen in recorder.responses if "action=key.created" in seen.url]
    # htmx asked for the table alone and swapped it in
    assert swapped and swapped[0].body.lstrip().startswith('<div id="audit-results">')
    everything = open_audit(page, project.org_id)
    assert {"end_user.banned", "end_user.session_revoked"} <= {row["action"] for row in everything}

    exported = export_audit_csv(page, tmp_path)
    listed = owner.ok("GET", f"/console/api/orgs/{project.org_id}/audit", params={"limit": 200})["items"]
    assert [row["id"] for row in exported] == [event["id"] for event in listed]
    assert recorder.csp_violations == []
