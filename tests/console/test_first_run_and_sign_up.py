"""First-run setup in the embedded default, and console sign-up by SILVER_CONSOLE_SIGN_UP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from silver_auth.accounts.models import Account
from silver_auth.orgs.models import Membership
from silver_auth.settings import Settings
from tests.accounts.support import changes
from tests.conftest import AppPool
from tests.console.support import Browser, assert_page
from tests.dbstate import snapshot
from tests.factories import PASSWORD, Harness


def accounts(harness: Harness) -> int:
    async def work() -> int:
        async with harness.runtime.sessionmaker() as db:
            return int(await db.scalar(select(func.count()).select_from(Account)) or 0)

    return harness.run(work)


def test_first_run_setup_creates_the_account_and_org_and_signs_in(harness: Harness) -> None:
    browser = Browser(harness)
    entry = browser.get("/console/")
    assert entry.status_code == 303 and entry.headers["location"] == "/console/setup"
    assert browser.get("/console/sign-in").headers["location"] == "/console/setup"
    done = browser.submit(
        "/console/setup", {"email": "first@example.com", "password": PASSWORD, "org_name": "First Org"}
    )
    overview = assert_page(browser.follow(done), 200)
    assert done.headers["location"].startswith("/console/orgs/org_")
    page = browser.get(done.headers["location"])
    assert "First Org" in page.text and "first@example.com" in page.text
    assert next(form["action"] for form in overview.forms) == "/console/sign-out"
    # The same sign-in the API knows: the account signs in with its password.
    assert harness.sign_in("first@example.com").email == "first@example.com"


def test_setup_is_refused_once_an_account_exists(harness: Harness) -> None:
    browser = Browser(harness)
    fields = browser.form("/console/setup")  # opened before anyone else finished the setup
    harness.create_account("someone@example.com")
    assert browser.get("/console/setup").headers["location"] == "/console/sign-in"
    before = snapshot(harness)
    refused = browser.post(
        "/console/setup", {**fields, "email": "late@example.com", "password": PASSWORD, "org_name": "Late"}
    )
    assert_page(refused, 403)
    assert "already set up" in refused.text
    assert changes(before, snapshot(harness)) == {}


def test_setup_answers_a_weak_password_on_the_form_and_writes_nothing(harness: Harness) -> None:
    browser = Browser(harness)
    refused = browser.submit(
        "/console/setup", {"email": "a@example.com", "password": "short", "org_name": "X"}
    )
    page = assert_page(refused, 422)
    assert any(form["action"] == "/console/setup" for form in page.forms)  # the form again, with the reason
    assert 'role="alert"' in refused.text
    assert accounts(harness) == 0


@pytest.fixture
def sign_up(request: pytest.FixtureRequest, apps: AppPool, settings: Settings) -> Iterator[Harness]:
    changed = settings.model_copy(update={"console_sign_up": request.param})
    with apps.serve(changed) as client:
        yield Harness(client, changed)


@pytest.mark.parametrize("sign_up", ["open"], indirect=True)
def test_open_sign_up_creates_an_account_and_signs_in(sign_up: Harness) -> None:
    sign_up.create_account()  # past the first run
    browser = Browser(sign_up)
    done = browser.submit("/console/sign-up", {"email": "new@example.com", "password": PASSWORD})
    assert done.headers["location"] == "/console/"
    assert browser.follow(done).headers["location"] == "/console/orgs"
    orgs_page = browser.get("/console/orgs")
    assert "new@example.com" in orgs_page.text and "not in any org yet" in orgs_page.text


@pytest.mark.parametrize("sign_up", ["invite-only"], indirect=True)
def test_invite_only_sign_up_needs_a_valid_invitation(sign_up: Harness) -> None:
    owner = sign_up.user()
    org_id = sign_up.org(owner)["id"]
    browser = Browser(sign_up)
    assert "needs an invitation" in browser.get("/console/sign-up").text
    before = snapshot(sign_up)
    refused = browser.submit("/console/sign-up", {"email": "x@example.com", "password": PASSWORD})
    assert_page(refused, 403)
    assert "needs an invitation" in refused.text
    bad = browser.post(
        "/console/sign-up",
        {
            **browser.form("/console/sign-up"),
            "email": "x@example.com",
            "password": PASSWORD,
            "invitation": "nope",
        },
    )
    assert bad.status_code >= 400 and bad.headers["content-type"].startswith("text/html")
    assert changes(before, snapshot(sign_up)) == {}  # not even the account: the invitation failed

    invite = owner.ok("POST", f"/console/api/orgs/{org_id}/invitations", 201, json={"role": "developer"})
    path = f"/console/sign-up?invitation={invite['token']}"
    fields = browser.form(path, "/console/sign-up")
    assert fields["invitation"] == invite["token"]
    done = browser.post("/console/sign-up", {**fields, "email": "invited@example.com", "password": PASSWORD})
    assert done.status_code == 303

    async def role() -> str | None:
        async with sign_up.runtime.sessionmaker() as db:
            account_id = await db.scalar(select(Account.id).where(Account.email == "invited@example.com"))
            membership = await db.get(Membership, (org_id, account_id))
            return membership.role.value if membership else None

    assert sign_up.run(role) == "developer"


@pytest.mark.parametrize("sign_up", ["closed"], indirect=True)
def test_closed_sign_up_is_refused_and_writes_nothing(sign_up: Harness) -> None:
    sign_up.create_account()
    browser = Browser(sign_up)
    page = assert_page(browser.get("/console/sign-up"), 200)
    assert "closed" in browser.get("/console/sign-up").text
    assert not any(form["action"] == "/console/sign-up" for form in page.forms)
    fields = browser.form("/console/sign-in")  # the signed-out token, from any signed-out form
    before = snapshot(sign_up)
    refused = browser.post("/console/sign-up", {**fields, "email": "x@example.com", "password": PASSWORD})
    assert_page(refused, 403)
    assert changes(before, snapshot(sign_up)) == {}


def test_sign_up_defaults_open_in_development_and_invite_only_in_production(settings: Settings) -> None:
    assert settings.console_sign_up is None
    assert settings.console_sign_up_mode == "open"
    assert settings.model_copy(update={"env": "production"}).console_sign_up_mode == "invite-only"
    production_open = settings.model_copy(update={"env": "production", "console_sign_up": "open"})
    assert production_open.console_sign_up_mode == "open"
