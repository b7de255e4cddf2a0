"""Public service endpoints: health and service config (L1)."""

from __future__ import annotations

from typing import Any

from litestar import Response, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec

from silver_auth import __version__
from silver_auth.core.schemas import Output
from silver_auth.core.scope import EXCLUDED_FROM_MVP
from silver_auth.health.service import check_database
from silver_auth.plans.schemas import PlanPublic, plan_public
from silver_auth.plans.service import PLANS
from silver_auth.runtime import Runtime
from silver_auth.webhooks.events import PAYLOAD_VERSION, catalogue
from silver_auth.webhooks.signer import ED25519_PUBLIC_PREFIX, HMAC_PREFIX


class Health(Output):
    status: str
    checks: dict[str, str]


class Hosts(Output):
    accounts: str
    auth: str


class WebhookEventType(Output):
    type: str
    description: str
    sample: dict[str, Any]
    """A whole body as a receiver gets it: `type`, `version`, `timestamp`, `data`."""


class WebhookSignature(Output):
    signing: str
    """The endpoint's `signing` setting."""
    signature_version: str
    """The prefix of its signatures in `webhook-signature` (`v1,…` or `v1a,…`)."""
    algorithm: str
    verify_with: str


WEBHOOK_SIGNATURES = (
    WebhookSignature(
        signing="hmac",
        signature_version="v1",
        algorithm="HMAC-SHA256",
        verify_with=f"the endpoint's `{HMAC_PREFIX}` secret (any Standard Webhooks library)",
    ),
    WebhookSignature(
        signing="ed25519",
        signature_version="v1a",
        algorithm="Ed25519",
        verify_with=f"the endpoint's `{ED25519_PUBLIC_PREFIX}` public key (base64 of the raw 32 bytes)",
    ),
)


class WebhooksConfig(Output):
    """What a receiver needs to know (docs/webhooks.md)."""

    payload_version: int
    """Every body's `version`."""
    event_types: list[WebhookEventType]
    retry_schedule_seconds: list[float]
    """Seconds before each attempt, the first counted from the event; after the last, the message fails."""
    signature_schemes: list[WebhookSignature]


class ServiceConfig(Output):
    """Public and secret-free (G18)."""

    version: str
    environment: str
    identity: str
    hosts: Hosts
    plans: list[PlanPublic]
    """Free, Pro and Scale (L7) with every quota; a `quota-exceeded` problem names these."""
    webhooks: WebhooksConfig
    excluded_from_mvp: list[str]
    """`email_delivery` and `payment_collection`: no email is sent and no payment taken (invitations are
    one-time links, plan changes are platform-admin actions)."""


def limiter_check(runtime: Runtime) -> str:
    """`ok` while limits are counted where configured (memory, or Redis); with Redis unreachable, what
    the limiter does instead (G35: never unlimited)."""
    if runtime.limiter.storage == "memory-fallback":
        return "degraded: Redis unreachable, limits counted per process"
    return "ok"


@get(
    "/health",
    tags=["public"],
    summary="Liveness with a real database check",
    cache_control=None,
    responses={
        503: ResponseSpec(
            Health,
            description='`"status": "degraded"`: the database check failed, named in `checks` (a '
            "degraded `rate_limiter` alone answers 200: it still limits, per process)",
            generate_examples=False,
        )
    },
)
async def health(runtime: NamedDependency[Runtime]) -> Response[Health]:
    checks = {"database": await check_database(runtime.engine), "rate_limiter": limiter_check(runtime)}
    serving = checks["database"] == "ok"
    healthy = serving and checks["rate_limiter"] == "ok"
    return Response(
        Health(status="ok" if healthy else "degraded", checks=checks),
        # The limiter's fallback still limits (per process): degraded, but no reason to take the
        # replica out of rotation.
        status_code=200 if serving else 503,
        headers={"Cache-Control": "no-store"},
    )


@get(
    "/v1/config",
    tags=["public"],
    summary="Public service config: the plans and their quotas, the webhook event types and signatures",
)
async def service_config(runtime: NamedDependency[Runtime]) -> ServiceConfig:
    settings = runtime.settings
    return ServiceConfig(
        version=__version__,
        environment=settings.env,
        identity=settings.identity,
        hosts=Hosts(accounts=settings.accounts_url, auth=settings.auth_url),
        plans=[plan_public(plan) for plan in PLANS.values()],
        webhooks=WebhooksConfig(
            payload_version=PAYLOAD_VERSION,
            event_types=[WebhookEventType(**entry) for entry in catalogue()],
            retry_schedule_seconds=settings.webhook_retry_schedule,
            signature_schemes=list(WEBHOOK_SIGNATURES),
        ),
        excluded_from_mvp=list(EXCLUDED_FROM_MVP),
    )
