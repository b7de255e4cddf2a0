"""G28: support views never show raw secrets. A world full of planted secrets, every admin answer
searched for each of them (and the audit table and the process output)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from silver_auth.accounts.models import Account
from silver_auth.accounts.sessions import ConsoleSession
from silver_auth.audit.models import AuditEvent
from silver_auth.keys.models import ApiKey
from silver_auth.mfa.models import RecoveryCode, TotpFactor
from silver_auth.orgs.models import Invitation
from tests.accounts.support import mfa_sign_in
from tests.admin.support import ADMIN, MFA_SECRETS, make_mfa_session, platform_admin
from tests.factories import PASSWORD, Harness


def column_values(harness: Harness) -> list[str]:
    """Every stored secret, hash or sealed value in the database."""

    async def work() -> list[str]:
        async with harness.runtime.sessionmaker() as db:
            found: list[str] = []
            for column in (
                ApiKey.lookup_hash,
                Account.password_hash,
                ConsoleSession.token_hash,
                TotpFactor.secret_sealed,
                RecoveryCode.code_hash,
                Invitation.token_hash,
            ):
                found += [str(v) for v in (await db.scalars(select(column))).all()]
            return found

    return harness.run(work)


def audit_text(harness: Harness) -> str:
    async def work() -> str:
        async with harness.runtime.sessionmaker() as db:
            events = (await db.scalars(select(AuditEvent))).all()
            return json.dumps([[e.action, e.target, e.actor, e.metadata_] for e in events])

    return harness.run(work)


def test_g28_support_views_and_admin_answers_hold_no_secret(
    harness: Harness, capfd: pytest.CaptureFixture[str]
) -> None:
    admin = platform_admin(harness)
    victim = make_mfa_session(harness, harness.user())
    org_id = harness.org(victim, "Canary Org")["id"]
    project_id = harness.project(victim, org_id)["id"]
    secret_keys = [harness.key(victim, project_id, "secret", env)["key"] for env in ("live", "test")]
    invitation = victim.ok("POST", f"/console/api/orgs/{org_id}/invitations", 201, json={"role": "viewer"})
    totp_secret, recovery_codes = (
        MFA_SECRETS[victim.account_id].secret,
        MFA_SECRETS[victim.account_id].recovery_codes,
    )
    other_device = mfa_sign_in(harness, victim.email, totp_secret)

    canaries = {
        *secret_keys,
        invitation["token"],
        totp_secret,
        *recovery_codes,
        PASSWORD,
        *column_values(harness),
    }
    for user in (admin, victim, other_device):
        token = user.cookie.partition(".")[0]
        canaries |= {user.cookie, token, user.csrf_token}
    canaries = {c for c in canaries if c}
    assert len(canaries) > 25

    answers = [
        admin.get(f"{ADMIN}/orgs"),
        admin.get(f"{ADMIN}/orgs/{org_id}"),
        admin.get(f"{ADMIN}/accounts"),
        admin.get(f"{ADMIN}/accounts/{victim.account_id}"),
        admin.get(f"{ADMIN}/accounts/{admin.account_id}"),
        admin.get(f"{ADMIN}/identity/users"),
        admin.get(f"{ADMIN}/identity/groups"),
        admin.request("PUT", f"{ADMIN}/orgs/{org_id}/plan", json={"plan": "pro"}),
        admin.request("POST", f"{ADMIN}/identity/users/{victim.account_id}/reset-mfa"),
        admin.request("POST", f"{ADMIN}/accounts/{victim.account_id}/sessions/revoke"),
        admin.request("POST", f"{ADMIN}/identity/users/{victim.account_id}/deactivate"),
        admin.get(f"{ADMIN}/accounts/{victim.account_id}"),
    ]
    assert all(a.status_code == 200 for a in answers), [(a.status_code, a.text) for a in answers]
    # The views did show the things support needs: key prefixes, sessions, devices.
    detail = answers[1].json()
    assert detail["projects"][0]["keys"][0]["prefix"] in secret_keys[0]
    assert len(answers[3].json()["sessions"]) == 2

    out, err = capfd.readouterr()
    texts = {"answers": "\n".join(a.text for a in answers), "audit": audit_text(harness), "output": out + err}
    for where, text in texts.items():
        leaked = [c[:12] + "…" for c in canaries if c in text]
        assert not leaked, f"{where} holds secrets: {leaked}"
