"""Public service endpoints: health and service config (L1)."""

from __future__ import annotations

from litestar import Response, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec

from silver_auth import __version__
from silver_auth.core.schemas import Output
from silver_auth.health.service import check_database
from silver_auth.plans.service import PLANS
from silver_auth.runtime import Runtime


class Health(Output):
    status: str
    checks: dict[str, str]


class Hosts(Output):
    accounts: str
    auth: str


class ServiceConfig(Output):
    """Public and secret-free (G18)."""

    version: str
    environment: str
    identity: str
    hosts: Hosts
    plans: list[dict[str, object]]


@get(
    "/health",
    tags=["public"],
    summary="Liveness with a real database check",
    cache_control=None,
    responses={
        503: ResponseSpec(
            Health,
            description='`"status": "degraded"`: a check failed, named in `checks`',
            generate_examples=False,
        )
    },
)
async def health(runtime: NamedDependency[Runtime]) -> Response[Health]:
    checks = {"database": await check_database(runtime.engine)}
    healthy = all(value == "ok" for value in checks.values())
    return Response(
        Health(status="ok" if healthy else "degraded", checks=checks),
        status_code=200 if healthy else 503,
        headers={"Cache-Control": "no-store"},
    )


@get("/v1/config", tags=["public"], summary="Public service config, with the plans and their quotas")
async def service_config(runtime: NamedDependency[Runtime]) -> ServiceConfig:
    settings = runtime.settings
    return ServiceConfig(
        version=__version__,
        environment=settings.env,
        identity=settings.identity,
        hosts=Hosts(accounts=settings.accounts_url, auth=settings.auth_url),
        plans=[plan.public() for plan in PLANS.values()],
    )
