"""Plans and their quotas (L7: the public names are Free, Pro and Scale)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Plan:
    id: str
    name: str
    projects: int
    members: int
    end_users: int
    webhook_endpoints: int
    api_keys_per_project: int
    requests_per_minute: int
    event_retention_days: int
    """How long the pull API (GET /v1/backend/events) keeps events."""

    def public(self) -> dict[str, Any]:
        return asdict(self)


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
        ),
    )
}
DEFAULT_PLAN = "free"


def plan_for(plan_id: str) -> Plan:
    return PLANS.get(plan_id, PLANS[DEFAULT_PLAN])
