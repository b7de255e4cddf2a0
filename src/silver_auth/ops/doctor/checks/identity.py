"""Identity (G6-G8, L5, L6): every platform admin (a member of SEQN-A) is an active account with a
confirmed second factor, the group is small enough to review, and the Authentik provisioning token
holds no more than provisioning needs. The members are read where the identity engine keeps them: the
accounts tables (builtin) or Authentik itself (SILVER_IDENTITY=authentik)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from silver_auth.accounts.models import Account, AccountGroup
from silver_auth.accounts.service import PLATFORM_ADMIN_GROUP
from silver_auth.core.errors import ProblemError
from silver_auth.mfa.factors import confirmed_owners
from silver_auth.ops.doctor.context import DatabaseUnavailable, Doctor, one_line
from silver_auth.ops.doctor.report import Finding, failed, passed, warned

LINES = ("G6", "G7", "G8", "L5", "L6")
PAGE = 100


@dataclass(frozen=True, slots=True)
class Admin:
    name: str
    active: bool
    mfa: bool


class MembersUnknown(Exception):
    pass


async def check(doctor: Doctor) -> list[Finding]:
    try:
        admins = await (
            _authentik_admins(doctor) if doctor.settings.identity == "authentik" else _builtin_admins(doctor)
        )
    except (DatabaseUnavailable, MembersUnknown) as exc:
        reason = exc.reason if isinstance(exc, DatabaseUnavailable) else str(exc)
        unknown = [failed(line, "SEQN-A members", reason) for line in ("G6", "G7", "L5", "L6")]
        return [*unknown[:2], await _g8(doctor), *unknown[2:]]
    g6, g7 = _mfa(doctor, "G6", admins), _membership(doctor, "G7", admins)
    return [g6, g7, await _g8(doctor), _mfa(doctor, "L5", admins), _membership(doctor, "L6", admins)]


async def _builtin_admins(doctor: Doctor) -> list[Admin]:
    sessionmaker = await doctor.database()
    async with sessionmaker() as db:
        accounts = list(
            await db.scalars(
                select(Account)
                .join(AccountGroup, AccountGroup.account_id == Account.id)
                .where(AccountGroup.group_name == PLATFORM_ADMIN_GROUP)
                .order_by(Account.email)
            )
        )
        with_mfa = await confirmed_owners(db, [account.id for account in accounts])
    return [Admin(account.email, account.is_active, account.id in with_mfa) for account in accounts]


async def _authentik_admins(doctor: Doctor) -> list[Admin]:
    from silver_auth.identity.providers.authentik import build_authentik_provider  # noqa: PLC0415

    try:
        provider = build_authentik_provider(doctor.settings)
    except RuntimeError as exc:
        raise MembersUnknown(str(exc)) from None
    try:
        members = []
        offset = 0
        while True:  # Authentik lists users with their groups; SEQN-A's members are picked from them
            page = await provider.list_users(None, search=None, limit=PAGE, offset=offset)  # type: ignore[arg-type]
            members += [user for user in page if PLATFORM_ADMIN_GROUP in user.groups]
            if len(page) < PAGE:
                break
            offset += PAGE
        admins = []
        for user in members:  # the list carries no devices: each admin's are read on its own
            detailed = await provider.get_user(None, user.id)  # type: ignore[arg-type]
            admins.append(
                Admin(user.email or user.name or f"user {user.id}", user.is_active, detailed.mfa_devices > 0)
            )
        return sorted(admins, key=lambda admin: admin.name)
    except ProblemError as exc:
        raise MembersUnknown(f"Authentik did not answer: {exc.detail}") from None
    finally:
        provider.close()


def _names(admins: list[Admin]) -> str:
    return ", ".join(admin.name for admin in admins)


def _mfa(doctor: Doctor, line: str, admins: list[Admin]) -> Finding:
    check = "every active SEQN-A member has MFA enrolled"
    active = [admin for admin in admins if admin.active]
    if not active:
        return warned(
            line,
            check,
            "no platform admin (active SEQN-A member) yet",
            "silver-auth account create --platform-admin",
        )
    without = [admin for admin in active if not admin.mfa]
    if without:
        return failed(
            line,
            check,
            f"{len(without)} of {len(active)} without a confirmed second factor: {_names(without)}",
            "have each enrol TOTP (POST /console/api/mfa/totp, then /confirm), or take the account out "
            "of SEQN-A (docs/runbooks.md#g6-admin-mfa)",
        )
    return passed(line, check, f"{len(active)} platform admin(s), each with MFA: {_names(active)}")


def _membership(doctor: Doctor, line: str, admins: list[Admin]) -> Finding:
    check = "SEQN-A holds active platform admins only"
    inactive = [admin for admin in admins if not admin.active]
    if inactive:
        return failed(
            line,
            check,
            f"deactivated account(s) still in SEQN-A: {_names(inactive)}",
            f"silver-auth account group remove EMAIL {PLATFORM_ADMIN_GROUP} "
            "(docs/runbooks.md#g7-l6-seqn-a-membership-review)",
        )
    most = doctor.settings.doctor_max_platform_admins
    if len(admins) > most:
        return warned(
            line,
            check,
            f"{len(admins)} members (more than SILVER_DOCTOR_MAX_PLATFORM_ADMINS={most}): {_names(admins)}",
            "review the list: SEQN-A is for platform admins only "
            "(docs/runbooks.md#g7-l6-seqn-a-membership-review)",
        )
    return passed(line, check, f"{len(admins)} member(s), all active: {_names(admins) or 'none'}")


async def _g8(doctor: Doctor) -> Finding:
    check = "the Authentik provisioning token's permissions"
    if doctor.settings.identity != "authentik":
        return passed("G8", check, "not applicable: builtin identity, no Authentik token in use")
    from silver_auth.identity.providers.authentik import build_authentik_provider  # noqa: PLC0415

    try:
        provider = build_authentik_provider(doctor.settings)
    except RuntimeError as exc:
        return failed("G8", check, str(exc), "set SILVER_AUTHENTIK_URL and SILVER_AUTHENTIK_TOKEN")
    try:
        report = await provider.token_report()
    except ProblemError as exc:
        return failed("G8", check, f"Authentik did not answer: {exc.detail}", "check SILVER_AUTHENTIK_URL")
    except Exception as exc:  # the generated client's own errors: one line
        return failed("G8", check, f"Authentik did not answer: {one_line(exc)}", "check SILVER_AUTHENTIK_URL")
    finally:
        provider.close()
    fix = "give the token's user one role with exactly docs/authentik.md's permissions"
    if report.over_privileged:
        return failed("G8", check, f"over-privileged: {'; '.join(report.beyond)}", fix)
    if report.missing:
        return warned("G8", check, f"least privilege, but lacks {', '.join(report.missing)}", fix)
    return passed("G8", check, f"token user {report.username} holds exactly what provisioning needs")
