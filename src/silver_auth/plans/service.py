"""Plans and their quotas (L7: the public names are Free, Pro and Scale; no payment flow, L8).

What counts against each quota is said once, here: the check on every creation path and the console's
usage view call the same counting functions, and every refusal is the same `quota-exceeded` problem,
made by `check_quota`. The callers lock before they count (the org row, or the project row for keys),
so two concurrent creates cannot both squeeze under a limit.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Final, Literal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.core import clock
from silver_auth.core.errors import QuotaExceeded
from silver_auth.endusers.models import EndUser
from silver_auth.keys.models import ApiKey
from silver_auth.orgs.models import Invitation, Membership
from silver_auth.projects.models import Project
from silver_auth.webhooks.models import WebhookEndpoint

QuotaName = Literal[
    "projects", "members", "end_users", "webhook_endpoints", "api_keys_per_project", "requests_per_minute"
]
Per = Literal["org", "project", "key"]


@dataclass(frozen=True, slots=True)
class Plan:
    id: str
    name: str
    projects: int
    """Projects per org."""
    members: int
    """Members per org; pending invitations count when inviting."""
    end_users: int
    """End-users per project (its test and live environments together)."""
    webhook_endpoints: int
    """Webhook endpoints per project."""
    api_keys_per_project: int
    """Active API keys per project: neither revoked nor rotated out (a rotated key in its grace period
    gives its place to its successor, so a rotation is never refused)."""
    requests_per_minute: int
    """Backend requests per minute per secret key (the rate limiter applies it)."""
    event_retention_days: int
    """How long the pull API (GET /v1/backend/events) keeps events."""
    audit_retention_days: int
    """How long the org's audit log keeps its events; `silver-auth purge` removes older ones."""

    def public(self) -> dict[str, Any]:
        return asdict(self)

    def limit(self, quota: QuotaName) -> int:
        value: int = getattr(self, quota)
        return value


@dataclass(frozen=True, slots=True)
class Quota:
    """One limit a plan sets on how many of a thing there may be (or how many requests a minute)."""

    name: QuotaName
    """The Plan field, and the problem's `quota`."""
    per: Per
    singular: str
    plural: str


QUOTAS: Final[dict[QuotaName, Quota]] = {
    quota.name: quota
    for quota in (
        Quota("projects", "org", "project", "projects"),
        Quota("members", "org", "member", "members"),
        Quota("end_users", "project", "end-user", "end-users"),
        Quota("webhook_endpoints", "project", "webhook endpoint", "webhook endpoints"),
        Quota("api_keys_per_project", "project", "active API key", "active API keys"),
        Quota("requests_per_minute", "key", "backend request a minute", "backend requests a minute"),
    )
}
COUNTED: Final = tuple(name for name in QUOTAS if name != "requests_per_minute")
"""The quotas on things that are created (the request rate is the limiter's)."""

PLANS: dict[str, Plan] = {
    plan.id: plan
    for plan in (
        Plan(
            "free",
            "Free",
            projects=3,
            members=3,
            end_users=1_000,
            webhook_endpoints=2,
            api_keys_per_project=10,
            requests_per_minute=600,
            event_retention_days=7,
            audit_retention_days=30,
        ),
        Plan(
            "pro",
            "Pro",
            projects=20,
            members=25,
            end_users=50_000,
            webhook_endpoints=10,
            api_keys_per_project=25,
            requests_per_minute=6_000,
            event_retention_days=30,
            audit_retention_days=180,
        ),
        Plan(
            "scale",
            "Scale",
            projects=200,
            members=500,
            end_users=1_000_000,
            webhook_endpoints=50,
            api_keys_per_project=50,
            requests_per_minute=60_000,
            event_retention_days=90,
            audit_retention_days=365,
        ),
    )
}
DEFAULT_PLAN = "free"
PLAN_FIELDS: Final = tuple(field.name for field in fields(Plan))


def plan_for(plan_id: str) -> Plan:
    """The plan of that id; an unknown id gets the default plan's quotas."""
    return PLANS.get(plan_id, PLANS[DEFAULT_PLAN])


def allowance(plan: Plan, quota: QuotaName) -> str:
    """`the Free plan allows 3 projects per org`: what a refusal and the docs say."""
    about, limit = QUOTAS[quota], plan.limit(quota)
    things = about.singular if limit == 1 else about.plural
    return f"the {plan.name} plan allows {limit} {things} per {about.per}"


def quota_exceeded(plan: Plan, quota: QuotaName, *, used: int, advice: str = "") -> QuotaExceeded:
    """The one refusal for every quota: the plan (id and name), the quota, its limit and the use."""
    detail = allowance(plan, quota) + (f"; {advice}" if advice else "")
    return QuotaExceeded(
        detail, plan=plan.id, plan_name=plan.name, quota=quota, limit=plan.limit(quota), used=used
    )


def check_quota(plan: Plan, quota: QuotaName, used: int, *, advice: str = "") -> None:
    """Refuse one more when `used` has reached the plan's limit (call it under the caller's lock)."""
    if used >= plan.limit(quota):
        raise quota_exceeded(plan, quota, used=used, advice=advice)


# --- what counts ---------------------------------------------------------------------------------


async def _count(db: AsyncSession, query: Any) -> int:
    return int(await db.scalar(query) or 0)


async def projects_used(db: AsyncSession, org_id: str) -> int:
    return await _count(db, select(func.count()).select_from(Project).where(Project.org_id == org_id))


async def members_used(db: AsyncSession, org_id: str) -> int:
    return await _count(db, select(func.count()).select_from(Membership).where(Membership.org_id == org_id))


async def pending_invitations(db: AsyncSession, org_id: str) -> int:
    """Invitations that can still be accepted: each would add a member."""
    pending = select(func.count()).select_from(Invitation)
    return await _count(
        db,
        pending.where(
            Invitation.org_id == org_id,
            Invitation.accepted_at.is_(None),
            Invitation.revoked_at.is_(None),
            Invitation.expires_at > clock.now(),
        ),
    )


async def end_users_used(db: AsyncSession, project_id: str) -> int:
    return await _count(db, select(func.count()).select_from(EndUser).where(EndUser.project_id == project_id))


async def webhook_endpoints_used(db: AsyncSession, project_id: str) -> int:
    endpoints = select(func.count()).select_from(WebhookEndpoint)
    return await _count(db, endpoints.where(WebhookEndpoint.project_id == project_id))


ACTIVE_KEY: Final = ApiKey.revoked_at.is_(None) & ApiKey.expires_at.is_(None)
"""Only a rotation sets `expires_at`: the key's successor counts in its place from then on."""


async def api_keys_used(db: AsyncSession, project_id: str) -> int:
    keys = select(func.count()).select_from(ApiKey)
    return await _count(db, keys.where(ApiKey.project_id == project_id, ACTIVE_KEY))


# --- an org's usage against a plan ---------------------------------------------------------------

PER_PROJECT: Final[tuple[QuotaName, ...]] = ("end_users", "webhook_endpoints", "api_keys_per_project")


@dataclass(frozen=True, slots=True)
class ProjectUse:
    project_id: str
    name: str
    used: int


@dataclass(frozen=True, slots=True)
class QuotaUse:
    quota: QuotaName
    per: Per
    limit: int
    used: int | None
    """Per org: the org's count. Per project: the fullest project's. None for the request rate."""
    projects: tuple[ProjectUse, ...] = ()
    """Per project quotas: each project's count."""
    pending: int = 0
    """Members: invitations that can still be accepted (they count when inviting)."""


async def _per_project(db: AsyncSession, org_id: str, quota: QuotaName) -> dict[str, int]:
    """Each of the org's projects' count (projects with none are left out), in one grouped query."""
    if quota == "end_users":
        column, query = EndUser.project_id, select(EndUser.project_id, func.count())
    elif quota == "webhook_endpoints":
        column, query = WebhookEndpoint.project_id, select(WebhookEndpoint.project_id, func.count())
    else:
        column = ApiKey.project_id
        query = select(ApiKey.project_id, func.count()).where(ACTIVE_KEY)
    query = query.join(Project, Project.id == column).where(Project.org_id == org_id).group_by(column)
    return {str(project_id): int(count) for project_id, count in (await db.execute(query)).all()}


async def org_usage(db: AsyncSession, org_id: str, plan: Plan) -> list[QuotaUse]:
    """What the org uses of every quota against `plan`'s limits (its own plan, or one it may move to)."""
    listed = await db.execute(
        select(Project.id, Project.name).where(Project.org_id == org_id).order_by(Project.id)
    )
    projects = [(str(project_id), str(name)) for project_id, name in listed]
    uses = [
        QuotaUse("projects", "org", plan.projects, len(projects)),
        QuotaUse(
            "members",
            "org",
            plan.members,
            await members_used(db, org_id),
            pending=await pending_invitations(db, org_id),
        ),
    ]
    for name in PER_PROJECT:
        counts = await _per_project(db, org_id, name)
        each = tuple(ProjectUse(pid, pname, counts.get(pid, 0)) for pid, pname in projects)
        uses.append(QuotaUse(name, "project", plan.limit(name), max(counts.values(), default=0), each))
    uses.append(QuotaUse("requests_per_minute", "key", plan.requests_per_minute, None))
    return uses


def over_limits(uses: list[QuotaUse]) -> list[QuotaUse]:
    """The quotas used beyond their limit (after a forced downgrade, or the plan a downgrade would set)."""
    return [use for use in uses if use.used is not None and use.used > use.limit]
