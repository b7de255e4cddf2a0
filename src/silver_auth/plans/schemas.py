"""Plans as `/v1/config` publishes them, and an org's usage against its plan (L7)."""

from __future__ import annotations

from typing import Annotated

import msgspec

from silver_auth.core.schemas import Output
from silver_auth.plans.service import Plan, QuotaUse


class PlanPublic(Output):
    """A plan and every quota it sets. Names match the `quota` of a `quota-exceeded` problem."""

    id: Annotated[str, msgspec.Meta(examples=["free"])]
    name: Annotated[str, msgspec.Meta(examples=["Free"])]
    projects: int
    """Projects per org."""
    members: int
    """Members per org (pending invitations count when inviting)."""
    end_users: int
    """End-users per project, its test and live environments together."""
    webhook_endpoints: int
    """Webhook endpoints per project."""
    api_keys_per_project: int
    """Active API keys per project (a key rotated out, in its grace period, no longer counts)."""
    requests_per_minute: int
    """Backend requests per minute per secret key."""
    event_retention_days: int
    """How long the pull API keeps webhook events."""
    audit_retention_days: int
    """How long the org's audit log keeps its events."""


def plan_public(plan: Plan) -> PlanPublic:
    return PlanPublic(**plan.public())


class ProjectQuotaUse(Output):
    project_id: str
    name: str
    used: int


class QuotaUsage(Output):
    quota: str
    """`projects`, `members`, `end_users`, `webhook_endpoints`, `api_keys_per_project` or
    `requests_per_minute`: the names of `/v1/config` and of a `quota-exceeded` problem."""
    per: str
    """What the limit applies to: `org`, `project` or `key`."""
    limit: int
    used: int | None
    """Per org: the org's count. Per project: the fullest project's (each project's in `projects`).
    Null for the request rate: each answer's RateLimit headers say what is left."""
    projects: list[ProjectQuotaUse] | msgspec.UnsetType = msgspec.UNSET
    """Per project quotas only."""
    pending: int | msgspec.UnsetType = msgspec.UNSET
    """Members only: invitations that can still be accepted (they count when inviting)."""


class Retention(Output):
    audit_days: int
    """Audit events older than this are not listed, and `silver-auth purge` removes them."""
    webhook_event_days: int
    """Webhook events older than this are no longer served by the pull API."""


class OrgUsage(Output):
    org_id: str
    plan: str
    plan_name: str
    quotas: list[QuotaUsage]
    retention: Retention


def org_usage_public(org_id: str, plan: Plan, uses: list[QuotaUse]) -> OrgUsage:
    return OrgUsage(
        org_id=org_id,
        plan=plan.id,
        plan_name=plan.name,
        quotas=[
            QuotaUsage(
                quota=use.quota,
                per=use.per,
                limit=use.limit,
                used=use.used,
                projects=[
                    ProjectQuotaUse(project_id=p.project_id, name=p.name, used=p.used) for p in use.projects
                ]
                if use.per == "project"
                else msgspec.UNSET,
                pending=use.pending if use.quota == "members" else msgspec.UNSET,
            )
            for use in uses
        ],
        retention=Retention(
            audit_days=plan.audit_retention_days, webhook_event_days=plan.event_retention_days
        ),
    )
