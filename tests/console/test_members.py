"""The members, roles and invitations pages, and the page an invitation link opens: the same services as
`/console/api/orgs/{id}/members` and `/invitations`, their owner and last-owner rules and the member
quota shown as page errors, the one-time link shown once and never kept."""

from __future__ import annotations

import re
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import select

from silver_auth.accounts.models import Account
from silver_auth.console.auth import return_path
from silver_auth.orgs.models import Membership
from tests.accounts.support import changes, enable_mfa, next_code
from tests.authz.test_matrix import set_plan
from tests.console.support import Browser, assert_page, parse
from tests.console.test_sign_in import signed_in_browser
from tests.dbstate import snapshot
from tests.factories import PASSWORD, ConsoleUser, Harness

LINK = re.compile(r"(https?://[^\s\"<]+)?/console/invitations/([A-Za-z0-9_-]{20,})")


def members_path(org_id: str) -> str:
    return f"/console/orgs/{org_id}/members"


def role_of(harness: Harness, org_id: str, email: str) -> str | None:
    async def work() -> str | None:
        async with harness.runtime.sessionmaker() as db:
            account_id = await db.scalar(select(Account.id).where(Account.email == email))
            membership = await db.get(Membership, (org_id, account_id)) if account_id else None
            return membership.role.value if membership else None

    return harness.run(work)


def invite(browser: Browser, org_id: str, role: str, email: str = "") -> tuple[str, str]:
    """Create an invitation on the members page: (the page's HTML, the link's token)."""
    shown = browser.submit(
        members_path(org_id), {"role": role, "email": email}, action=f"/console/orgs/{org_id}/invitations"
    )
    assert_page(shown, 201)
    match = LINK.search(shown.text)
    assert match, shown.text[:800]
    return shown.text, match.group(2)


def members_page_text(browser: Browser, org_id: str) -> str:
    return browser.get(members_path(org_id)).text


def csrf_of(browser: Browser) -> str:
    """The CSRF token of the browser's console session, as its pages' forms carry it."""
    token: str = parse(browser.get("/console/orgs")).forms[0]["fields"]["csrf_token"]
    return token


def assert_page_text(response: httpx.Response, status: int) -> str:
    assert_page(response, status)
    return response.text


@pytest.fixture
def owned(harness: Harness) -> tuple[ConsoleUser, str, Browser]:
    owner = harness.user()
    org_id = harness.org(owner, "Acme")["id"]
    return owner, org_id, signed_in_browser(harness, owner.email)


def test_an_invitation_link_is_shown_once_and_never_stored(
    harness: Harness, owned: tuple[ConsoleUser, str, Browser]
) -> None:
    _owner, org_id, browser = owned
    page, token = invite(browser, org_id, "developer", "dev@example.com")
    assert f"{harness.settings.accounts_url.rstrip('/')}/console/invitations/{token}" in page
    assert "shown only once" in page and 'data-copy="invitation-link"' in page
    assert "dev@example.com" in page
    state = snapshot(harness)
    assert not any(token in row for rows in state.values() for row in rows), "the token is stored in clear"
    members = assert_page(browser.get(members_path(org_id)), 200)
    assert token not in members_page_text(browser, org_id)
    assert "dev@example.com" in members_page_text(browser, org_id)  # pending, with its revoke control
    assert any(form["action"].endswith("/revoke") for form in members.forms)


def test_the_invitation_page_never_accepts_on_get_and_a_signed_in_account_accepts(
    harness: Harness, owned: tuple[ConsoleUser, str, Browser]
) -> None:
    _owner, org_id, browser = owned
    _, token = invite(browser, org_id, "developer")
    link = f"/console/invitations/{token}"
    joiner = harness.user()
    joining = signed_in_browser(harness, joiner.email)
    before = snapshot(harness)
    opened = joining.get(link)
    page = assert_page(opened, 200)
    assert "Acme" in opened.text and "developer" in opened.text
    assert '<meta name="referrer" content="same-origin">' in opened.text  # the token stays on this origin
    assert changes(before, snapshot(harness)) == {}  # looking is not accepting
    assert [f["action"] for f in page.forms if f["action"] == link] == [link]
    done = joining.submit(link, {})
    assert done.headers["location"] == f"/console/orgs/{org_id}"
    assert "You joined Acme as developer." in joining.follow(done).text
    assert role_of(harness, org_id, joiner.email) == "developer"
    # The link is spent: both the page and another click say so.
    assert "already used" in assert_page_text(joining.get(link), 410)
    again = joining.post(link, {"csrf_token": page.forms[-1]["fields"]["csrf_token"]})
    assert again.status_code == 410 and "already used" in again.text


def test_a_member_opening_the_link_is_told_so(
    harness: Harness, owned: tuple[ConsoleUser, str, Browser]
) -> None:
    _owner, org_id, browser = owned
    _, token = invite(browser, org_id, "viewer")
    text = assert_page_text(browser.get(f"/console/invitations/{token}"), 200)
    assert "already a member" in text


def test_unknown_revoked_and_expired_links_say_so(
    harness: Harness, owned: tuple[ConsoleUser, str, Browser]
) -> None:
    _owner, org_id, browser = owned
    signed_out = Browser(harness)
    assert "not valid" in assert_page_text(signed_out.get("/console/invitations/nope-not-a-token"), 404)
    _, token = invite(browser, org_id, "viewer")
    members = assert_page(browser.get(members_path(org_id)), 200)
    revoke = next(f for f in members.forms if f["action"].endswith("/revoke"))
    done = browser.post(revoke["action"], revoke["fields"])
    assert "Revoked the invitation" in browser.follow(done).text
    assert "revoked" in assert_page_text(signed_out.get(f"/console/invitations/{token}"), 410)


def test_signed_out_the_link_offers_sign_up_and_a_sign_in_that_returns_to_it(
    harness: Harness, owned: tuple[ConsoleUser, str, Browser]
) -> None:
    _owner, org_id, browser = owned
    _, token = invite(browser, org_id, "developer")
    link = f"/console/invitations/{token}"
    signed_out = Browser(harness)
    page = assert_page(signed_out.get(link), 200)
    assert page.forms == []  # nothing to post before signing in
    text = signed_out.get(link).text
    sign_in = f"/console/sign-in?next=/console/invitations/{token}"
    assert f'href="{sign_in}"' in text and f'href="/console/sign-up?invitation={token}"' in text

    # An account that exists signs in and comes back to the invitation, then accepts.
    joiner = harness.create_account("back@example.com")
    assert joiner
    form = signed_out.form(sign_in, "/console/sign-in")
    assert parse(signed_out.get(sign_in)).forms[0]["fields"]["next"] == link
    done = signed_out.post(
        "/console/sign-in", {**form, "next": link, "email": "back@example.com", "password": PASSWORD}
    )
    assert done.headers["location"] == link
    accepted = signed_out.submit(link, {})
    assert accepted.headers["location"] == f"/console/orgs/{org_id}"
    assert role_of(harness, org_id, "back@example.com") == "developer"


def test_a_new_account_signs_up_through_the_link_and_joins(
    harness: Harness, owned: tuple[ConsoleUser, str, Browser]
) -> None:
    _owner, org_id, browser = owned
    _, token = invite(browser, org_id, "developer")
    newcomer = Browser(harness)
    path = f"/console/sign-up?invitation={token}"
    done = newcomer.post(
        "/console/sign-up",
        {**newcomer.form(path, "/console/sign-up"), "email": "new@example.com", "password": PASSWORD},
    )
    assert done.headers["location"] == f"/console/orgs/{org_id}"
    assert "you joined Acme as developer" in newcomer.follow(done).text
    assert role_of(harness, org_id, "new@example.com") == "developer"


def test_the_return_path_survives_the_mfa_code_step(
    harness: Harness, owned: tuple[ConsoleUser, str, Browser]
) -> None:
    _owner, org_id, browser = owned
    _, token = invite(browser, org_id, "viewer")
    link = f"/console/invitations/{token}"
    joiner = harness.user()
    mfa = enable_mfa(joiner)
    signing_in = Browser(harness)
    pending = signing_in.submit(
        f"/console/sign-in?next={link}",
        {"email": joiner.email, "password": PASSWORD, "next": link},
        action="/console/sign-in",
    )
    code_step = pending.headers["location"]
    assert code_step == f"/console/sign-in/code?next={quote(link, safe='')}"
    assert parse(signing_in.get(code_step)).forms[-1]["fields"]["next"] == link
    done = signing_in.submit(
        code_step, {"code": next_code(mfa.secret), "next": link}, action="/console/sign-in/code"
    )
    assert done.headers["location"] == link


@pytest.mark.parametrize(
    "value",
    [
        "//evil.example/console/x",
        "https://evil.example/console/",
        "/\\evil.example",
        "/console/../admin",
        "/console//evil.example",
        "/console/api/me",
        "/elsewhere",
        "javascript:alert(1)",
        "/console/x\n",
        "",
    ],
)
def test_sign_in_returns_only_to_a_console_page(value: str) -> None:
    assert return_path(value) == ""


def test_sign_in_returns_to_a_console_page() -> None:
    assert return_path("/console/invitations/abc") == "/console/invitations/abc"
    assert return_path("/console/orgs/org_1/members?x=1") == "/console/orgs/org_1/members?x=1"


def test_a_foreign_next_signs_in_to_the_console_entry(harness: Harness) -> None:
    harness.create_account("plain@example.com")
    browser = Browser(harness)
    done = browser.submit(
        "/console/sign-in?next=//evil.example/",
        {"email": "plain@example.com", "password": PASSWORD, "next": "//evil.example/"},
        action="/console/sign-in",
    )
    assert done.headers["location"] == "/console/"


def test_the_member_quota_refuses_an_invitation_and_an_acceptance_by_name(
    harness: Harness, owned: tuple[ConsoleUser, str, Browser]
) -> None:
    owner, org_id, browser = owned
    set_plan(harness, org_id, "scale")
    _, token = invite(browser, org_id, "developer")
    harness.member(owner, org_id, "developer")
    harness.member(owner, org_id, "viewer")
    set_plan(harness, org_id, "free")  # three members now: the Free plan's limit
    joiner = signed_in_browser(harness, harness.user().email)
    before = snapshot(harness)
    refused = browser.submit(
        members_path(org_id), {"role": "viewer"}, action=f"/console/orgs/{org_id}/invitations"
    )
    assert "The Free plan allows 3 members per org" in assert_page_text(refused, 403)
    assert changes(before, snapshot(harness)) == {}

    link = f"/console/invitations/{token}"
    refused = joiner.submit(link, {})
    text = assert_page_text(refused, 403)
    assert "Acme has no room for another member" in text and "the Free plan allows 3 members" in text
    assert changes(before, snapshot(harness)) == {}


def test_role_changes_follow_the_owner_rules(
    harness: Harness, owned: tuple[ConsoleUser, str, Browser]
) -> None:
    owner, org_id, browser = owned
    set_plan(harness, org_id, "scale")
    admin = harness.member(owner, org_id, "admin")
    developer = harness.member(owner, org_id, "developer")
    as_admin = signed_in_browser(harness, admin.email)
    page = assert_page(as_admin.get(members_path(org_id)), 200)
    actions = [form["action"] for form in page.forms]
    # An admin changes the developer but not the owner, and cannot hand out the owner role.
    assert f"/console/orgs/{org_id}/members/{developer.account_id}/role" in actions
    assert f"/console/orgs/{org_id}/members/{owner.account_id}/role" not in actions
    assert 'value="owner"' not in as_admin.get(members_path(org_id)).text
    role_path = f"/console/orgs/{org_id}/members/{developer.account_id}/role"
    done = as_admin.post(role_path, {"csrf_token": csrf_of(as_admin), "role": "viewer"})
    assert f"{developer.email} is now viewer." in as_admin.follow(done).text
    assert role_of(harness, org_id, developer.email) == "viewer"

    before = snapshot(harness)
    forced = as_admin.post(
        f"/console/orgs/{org_id}/members/{owner.account_id}/role",
        {"csrf_token": csrf_of(as_admin), "role": "viewer"},
    )
    assert "Only an owner can grant, change or remove the owner role." in assert_page_text(forced, 403)
    promote = as_admin.post(role_path, {"csrf_token": csrf_of(as_admin), "role": "owner"})
    assert "owner role" in assert_page_text(promote, 403)
    no_role = as_admin.post(role_path, {"csrf_token": csrf_of(as_admin), "role": "emperor"})
    assert "Choose one of the roles" in assert_page_text(no_role, 400)
    owner_invite = as_admin.post(
        f"/console/orgs/{org_id}/invitations", {"csrf_token": csrf_of(as_admin), "role": "owner"}
    )
    assert "Only an owner can invite an owner." in assert_page_text(owner_invite, 403)
    # The last owner cannot step down.
    last = browser.post(
        f"/console/orgs/{org_id}/members/{owner.account_id}/role",
        {"csrf_token": csrf_of(browser), "role": "admin"},
    )
    assert "keeps at least one owner" in assert_page_text(last, 409)
    assert changes(before, snapshot(harness)) == {}


def test_removing_a_member_ends_their_access_and_sessions(
    harness: Harness, owned: tuple[ConsoleUser, str, Browser]
) -> None:
    owner, org_id, browser = owned
    set_plan(harness, org_id, "scale")
    developer = harness.member(owner, org_id, "developer")
    page = assert_page(browser.get(members_path(org_id)), 200)
    remove = next(f for f in page.forms if f["action"].endswith(f"{developer.account_id}/remove"))
    assert not any(f["action"].endswith(f"{owner.account_id}/remove") for f in page.forms)  # not yourself
    done = browser.post(remove["action"], remove["fields"])
    assert f"Removed {developer.email}" in browser.follow(done).text
    assert role_of(harness, org_id, developer.email) is None
    assert developer.get("/console/api/me").status_code == 401  # signed out everywhere (G29)
    # The last owner cannot be removed, even by another owner's hand forced onto the form.
    forced = browser.post(
        f"/console/orgs/{org_id}/members/{owner.account_id}/remove", {"csrf_token": csrf_of(browser)}
    )
    assert "keeps at least one owner" in assert_page_text(forced, 409)


def test_a_member_leaves_and_the_owner_cannot(
    harness: Harness, owned: tuple[ConsoleUser, str, Browser]
) -> None:
    owner, org_id, browser = owned
    set_plan(harness, org_id, "scale")
    developer = harness.member(owner, org_id, "developer")
    as_developer = signed_in_browser(harness, developer.email)
    page = assert_page(as_developer.get(members_path(org_id)), 200)
    leave = next(f for f in page.forms if f["action"] == f"/console/orgs/{org_id}/leave")
    assert not any(f["action"].endswith("/invitations") for f in page.forms)  # no invite form below admin
    assert "Pending invitations" not in as_developer.get(members_path(org_id)).text
    done = as_developer.post(leave["action"], leave["fields"])
    assert done.headers["location"] == "/console/orgs"
    assert "You left Acme." in as_developer.follow(done).text  # still signed in, elsewhere
    assert role_of(harness, org_id, developer.email) is None

    owners_page = assert_page(browser.get(members_path(org_id)), 200)
    assert not any(f["action"].endswith("/leave") for f in owners_page.forms)
    forced = browser.post(f"/console/orgs/{org_id}/leave", {"csrf_token": csrf_of(browser)})
    assert "keeps at least one owner" in assert_page_text(forced, 409)
