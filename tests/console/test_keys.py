"""The API keys and signing keys pages: a new secret key is shown once, in the POST's own answer, and
never again (no later page, redirect, cookie, log line, audit or outbox row holds it); rotation with a
grace period, revocation, and the roles of the API routes."""

from __future__ import annotations

import json
from html import unescape

import httpx
import pytest

from silver_auth.console.render import FLASH_COOKIE
from silver_auth.keys.service import DISPLAY_CHARS
from tests.authz.test_matrix import set_plan
from tests.console.support import Browser, assert_page, parse
from tests.console.test_sign_in import signed_in_browser
from tests.dbstate import snapshot
from tests.factories import ConsoleUser, Harness


def text(response: httpx.Response) -> str:
    return unescape(response.text)


def setup(harness: Harness) -> tuple[ConsoleUser, str, str, Browser]:
    owner = harness.user()
    org_id = harness.org(owner, "Acme")["id"]
    set_plan(harness, org_id, "scale")  # room for a member of each role
    project_id = harness.project(owner, org_id, "Web")["id"]
    return owner, org_id, project_id, signed_in_browser(harness, owner.email)


def shown_key(response: httpx.Response) -> str:
    """The whole key of a show-once answer (the element the copy button copies)."""
    start = response.text.index('id="new-key" class="secret">') + len('id="new-key" class="secret">')
    return response.text[start : response.text.index("</code>", start)]


def create_key(
    browser: Browser, project_id: str, kind: str = "secret", environment: str = "live"
) -> httpx.Response:
    path = f"/console/projects/{project_id}/keys"
    return browser.submit(path, {"kind": kind, "environment": environment, "name": "billing"})


def assert_show_once(response: httpx.Response) -> str:
    """A show-once answer: the page itself (no redirect, no cookie), never stored, with the copy button
    and the plain words; answers the key."""
    assert_page(response, 201)
    assert "location" not in response.headers
    raw = shown_key(response)
    assert "set-cookie" not in response.headers or raw not in response.headers["set-cookie"]
    assert 'class="show-once"' in response.text and 'data-copy="new-key"' in response.text
    assert (
        "This secret key will not be shown again. Copy it now and store it in your secrets manager."
        in text(response)
    )
    return raw


def test_a_secret_key_is_shown_once_and_never_again(
    harness: Harness, capfd: pytest.CaptureFixture[str]
) -> None:
    owner, org_id, project_id, browser = setup(harness)
    created = create_key(browser, project_id)
    raw = assert_show_once(created)
    assert raw.startswith("sk_live_") and len(raw) == len("sk_live_") + 43
    prefix = raw[: len("sk_live_") + DISPLAY_CHARS]
    secret_part = raw[len(prefix) :]
    assert harness.backend("/v1/backend/project", raw).status_code == 200  # the key shown is the key made

    # Everything after the answer: pages, a rotation of another key, a revocation and its redirect.
    keys_path = f"/console/projects/{project_id}/keys"
    later: list[httpx.Response] = [
        browser.get(keys_path),
        browser.get(f"/console/projects/{project_id}"),
        browser.get(f"/console/projects/{project_id}/signing-keys"),
        browser.get(f"/console/orgs/{org_id}/projects"),
        browser.get(f"/console/orgs/{org_id}"),
        owner.get(f"/console/api/projects/{project_id}/keys"),
        owner.get(f"/console/api/orgs/{org_id}/audit"),
    ]
    other = shown_key(create_key(browser, project_id, environment="test"))
    listing = parse(browser.get(keys_path))
    rotate_actions = [f["action"] for f in listing.forms if f["action"].endswith("/rotate")]
    rotated = browser.submit(keys_path, {"grace_seconds": "3600"}, action=rotate_actions[0])
    later.append(rotated)
    key_id = rotate_actions[1].split("/")[3]
    revoked = browser.submit(keys_path, {}, action=f"/console/keys/{key_id}/revoke")
    later += [revoked, browser.follow(revoked), browser.get(keys_path)]
    for response in later:
        seen = response.text + json.dumps(dict(response.headers))
        assert secret_part not in seen, response.request.url
        assert raw[-12:] not in seen, response.request.url
    assert prefix in text(later[0])  # the list names the key by its display prefix
    assert all(raw not in value for value in browser.cookies.values())
    assert other not in rotated.text  # a rotation shows the new key, never the old one

    rows = json.dumps(snapshot(harness))  # every table: audit events, the outbox, keys (hashed)
    assert secret_part not in rows
    out, err = capfd.readouterr()
    assert secret_part not in out + err  # the request log and anything else the service printed
    assert prefix in rows  # the audit names the key by its prefix


def test_a_publishable_key_is_public_and_readable_any_time(harness: Harness) -> None:
    _owner, _org_id, project_id, browser = setup(harness)
    created = create_key(browser, project_id, kind="publishable", environment="test")
    assert_page(created, 201)
    raw = shown_key(created)
    assert raw.startswith("pk_test_")
    assert "not a secret" in text(created) and "read it on this page any time" in text(created)
    assert raw in browser.get(f"/console/projects/{project_id}/keys").text


def test_the_list_shows_kind_environment_times_and_status(harness: Harness) -> None:
    owner, _org_id, project_id, browser = setup(harness)
    raw = harness.key(owner, project_id, "secret", "test")["key"]
    assert harness.backend("/v1/backend/project", raw).status_code == 200
    page = text(browser.get(f"/console/projects/{project_id}/keys"))
    for shown in ("secret", "test", '<span class="badge ok">active</span>', "<time datetime="):
        assert shown in page, shown
    assert "never" not in page.split("Last used")[1].split("</tr>")[1]  # the key was used just now


def test_rotate_shows_the_new_key_once_and_when_the_old_one_stops(harness: Harness) -> None:
    owner, _org_id, project_id, browser = setup(harness)
    old = harness.key(owner, project_id, "secret", "live")
    keys_path = f"/console/projects/{project_id}/keys"
    rotated = browser.submit(
        keys_path, {"grace_seconds": "86400"}, action=f"/console/keys/{old['id']}/rotate"
    )
    new = assert_show_once(rotated)
    assert new.startswith("sk_live_") and new != old["key"]
    assert f"The old key {old['prefix']}… keeps working until" in text(rotated)
    assert harness.backend("/v1/backend/project", old["key"]).status_code == 200  # in its grace period
    page = text(browser.get(keys_path))
    assert "rotating</span> until" in page
    assert new not in page and new[-12:] not in page

    # No grace: the old key stops at once; the API's bounds are the page's.
    again = browser.submit(
        keys_path,
        {"grace_seconds": "0"},
        action=f"/console/keys/{_id_of(harness, owner, project_id, new)}/rotate",
    )
    assert "stopped working now" in text(again)
    assert harness.backend("/v1/backend/project", new).status_code == 401
    third = harness.key(owner, project_id, "secret", "test")
    too_long = browser.submit(
        keys_path, {"grace_seconds": str(8 * 86400)}, action=f"/console/keys/{third['id']}/rotate"
    )
    assert_page(too_long, 422)
    assert "grace_seconds must be between 0 and 604800" in text(too_long)
    # The page offers no second rotation; forced, the service refuses it as the API does.
    rotated_twice = browser.post(
        f"/console/keys/{old['id']}/rotate", {**browser.form(keys_path), "grace_seconds": "60"}
    )
    assert_page(rotated_twice, 409)


def _id_of(harness: Harness, owner: ConsoleUser, project_id: str, raw: str) -> str:
    items = owner.ok("GET", f"/console/api/projects/{project_id}/keys")["items"]
    return next(item["id"] for item in items if raw.startswith(item["prefix"]) and item["status"] == "active")


def test_revoke_asks_first_then_refuses_the_key(harness: Harness) -> None:
    owner, _org_id, project_id, browser = setup(harness)
    key = harness.key(owner, project_id, "secret", "live")
    keys_path = f"/console/projects/{project_id}/keys"
    page = browser.get(keys_path)
    assert 'class="confirm"' in page.text and f'action="/console/keys/{key["id"]}/revoke"' in page.text
    revoked = browser.submit(keys_path, {}, action=f"/console/keys/{key['id']}/revoke")
    assert revoked.headers["location"] == keys_path
    assert key["prefix"] in unescape(revoked.headers["set-cookie"].split(f"{FLASH_COOKIE}=")[1])
    after = text(browser.follow(revoked))
    assert "calls with it are refused from now on" in after and "revoked</span>" in after
    assert harness.backend("/v1/backend/project", key["key"]).status_code == 401


def test_bad_choices_are_refused_on_the_page(harness: Harness) -> None:
    _owner, _org_id, project_id, browser = setup(harness)
    before = snapshot(harness)
    for values in ({"kind": "root", "environment": "live"}, {"kind": "secret", "environment": "prod"}):
        refused = browser.submit(f"/console/projects/{project_id}/keys", values)
        assert_page(refused, 422)
        assert "choose the" in text(refused)
        assert 'class="show-once"' not in refused.text
    assert snapshot(harness) == before


def test_roles_see_and_may_use_what_the_api_allows(harness: Harness) -> None:
    owner, org_id, project_id, _browser = setup(harness)
    key = harness.key(owner, project_id, "secret", "live")
    keys_path = f"/console/projects/{project_id}/keys"
    signing_path = f"/console/projects/{project_id}/signing-keys"
    viewer = harness.member(owner, org_id, "viewer")
    assert [f["action"] for f in assert_page(viewer.get(keys_path), 200).forms] == ["/console/sign-out"]
    assert key["prefix"] in viewer.get(keys_path).text
    before = snapshot(harness)
    for action, data in (
        (keys_path, {"kind": "secret", "environment": "live"}),
        (f"/console/keys/{key['id']}/rotate", {"grace_seconds": "0"}),
        (f"/console/keys/{key['id']}/revoke", {}),
        (f"{signing_path}/rotate", {}),
    ):
        forced = viewer.post(
            action, data={**data, "csrf_token": viewer.csrf_token}, csrf=False, follow_redirects=False
        )
        assert_page(forced, 403)
    assert snapshot(harness) == before

    developer = harness.member(owner, org_id, "developer")
    actions = [f["action"] for f in parse(developer.get(keys_path)).forms]
    assert keys_path in actions and f"/console/keys/{key['id']}/revoke" in actions
    assert f"{signing_path}/rotate" not in [f["action"] for f in parse(developer.get(signing_path)).forms]
    forced = developer.post(
        f"{signing_path}/rotate",
        data={"csrf_token": developer.csrf_token},
        csrf=False,
        follow_redirects=False,
    )
    assert_page(forced, 403)
    made = developer.post(
        keys_path,
        data={"kind": "secret", "environment": "test", "csrf_token": developer.csrf_token},
        csrf=False,
        follow_redirects=False,
    )
    assert_show_once(made)
    admin = harness.member(owner, org_id, "admin")
    assert f"{signing_path}/rotate" in [f["action"] for f in parse(admin.get(signing_path)).forms]
    assert_page(harness.user().get(keys_path), 404)


def test_signing_keys_show_the_jwks_and_rotate(harness: Harness) -> None:
    _owner, _org_id, project_id, browser = setup(harness)
    path = f"/console/projects/{project_id}/signing-keys"
    assert "No signing key yet" in text(browser.get(path))
    harness.client.cookies.clear()
    jwks = harness.client.get(f"/v1/projects/{project_id}/jwks.json").json()  # makes the first key
    first_kid = jwks["keys"][0]["kid"]
    page = browser.get(path)
    assert_page(page, 200)
    shown = text(page)
    assert f"/v1/projects/{project_id}/jwks.json" in shown and 'data-copy="jwks-url"' in shown
    assert first_kid in shown and '<span class="badge ok">current</span>' in shown
    assert json.loads(shown.split('<code id="jwks-json">')[1].split("</code>")[0]) == jwks
    assert '"d"' not in shown  # public members only

    rotated = browser.submit(path, {}, action=f"{path}/rotate")
    assert rotated.headers["location"] == path
    after = text(browser.follow(rotated))
    assert "Rotated: new session tokens are signed with" in after
    assert "previous</span> published until" in after
    assert after.count("<tr>") == 3  # the header, the new key and the previous one
