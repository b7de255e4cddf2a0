"""Webhooks (G30): no endpoint of a `live` environment delivers over plain http. The service refuses
to store one; a row from before that rule, or written around the service, is what this finds."""

from __future__ import annotations

from urllib.parse import urlsplit

from sqlalchemy import func, select

from silver_auth.ops.doctor.context import DatabaseUnavailable, Doctor
from silver_auth.ops.doctor.report import Finding, failed, passed
from silver_auth.webhooks.models import WebhookEndpoint

LINES = ("G30",)
SHOWN = 5


async def check(doctor: Doctor) -> list[Finding]:
    check = "live webhook endpoints use https"
    try:
        sessionmaker = await doctor.database()
    except DatabaseUnavailable as exc:
        return [failed("G30", check, exc.reason)]
    async with sessionmaker() as db:
        live = await db.scalar(
            select(func.count()).select_from(WebhookEndpoint).where(WebhookEndpoint.environment == "live")
        )
        plain = list(
            await db.execute(
                select(WebhookEndpoint.id, WebhookEndpoint.url, WebhookEndpoint.enabled)
                .where(
                    WebhookEndpoint.environment == "live",
                    ~func.lower(WebhookEndpoint.url).startswith("https://"),
                )
                .order_by(WebhookEndpoint.id)
            )
        )
    if plain:
        # An endpoint's host only: a receiver's URL may carry a token in its path or query (G28).
        shown = ", ".join(
            f"{endpoint_id} ({urlsplit(url).scheme}://{urlsplit(url).hostname or '?'}"
            f"{'' if enabled else ', disabled'})"
            for endpoint_id, url, enabled in plain[:SHOWN]
        )
        more = f" and {len(plain) - SHOWN} more" if len(plain) > SHOWN else ""
        return [
            failed(
                "G30",
                check,
                f"{len(plain)} live endpoint(s) without https: {shown}{more}",
                "PATCH each endpoint's url to https:// (or delete it): /console/api/webhooks/endpoints/{id}",
            )
        ]
    return [passed("G30", check, f"{live or 0} live endpoint(s), all https")]
