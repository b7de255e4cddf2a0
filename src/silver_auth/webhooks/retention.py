"""How long the pull API keeps events: the org's plan decides (Free 7 days, Pro 30, Scale 90)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.core import clock
from silver_auth.orgs.models import Org
from silver_auth.plans.service import DEFAULT_PLAN, PLANS
from silver_auth.projects.models import Project
from silver_auth.webhooks.models import WebhookEvent


async def purge_expired_events(db: AsyncSession) -> int:
    """Delete events older than their org's plan keeps them (their deliveries and attempts go with them);
    events whose project or org no longer exists go after the shortest retention."""
    now = clock.now()
    deleted = 0
    for plan in PLANS.values():
        on_plan = Org.plan == plan.id
        if plan.id == DEFAULT_PLAN:  # an org on an unknown plan gets the default plan's quotas
            on_plan = on_plan | Org.plan.not_in(list(PLANS))
        orgs = select(Org.id).where(on_plan)
        projects = select(Project.id).where(Project.org_id.in_(orgs))
        result = await db.execute(
            delete(WebhookEvent).where(
                WebhookEvent.created_at < now - timedelta(days=plan.event_retention_days),
                or_(WebhookEvent.org_id.in_(orgs), WebhookEvent.project_id.in_(projects)),
            )
        )
        deleted += int(result.rowcount)  # type: ignore[attr-defined]
    shortest = min(plan.event_retention_days for plan in PLANS.values())
    orphaned = await db.execute(
        delete(WebhookEvent).where(
            WebhookEvent.created_at < now - timedelta(days=shortest),
            WebhookEvent.org_id.not_in(select(Org.id)) | WebhookEvent.org_id.is_(None),
            WebhookEvent.project_id.not_in(select(Project.id)) | WebhookEvent.project_id.is_(None),
        )
    )
    return deleted + int(orphaned.rowcount)  # type: ignore[attr-defined]
