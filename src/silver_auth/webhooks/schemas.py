from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from silver_auth.core.schemas import Input, Output
from silver_auth.webhooks.targets import MAX_URL

# The schema only bounds the body: the URL rules (at most MAX_URL characters among them) answer with
# their own problem type, `webhook-url-refused`, which a schema error would hide.
Url = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=4 * MAX_URL,
        description=f"At most {MAX_URL} characters.",
        examples=["https://api.example.com/webhooks"],
    ),
]
EventTypes = Annotated[list[str], msgspec.Meta(max_length=50, examples=[["user.created", "session.created"]])]
Description = Annotated[str, msgspec.Meta(max_length=300)]


class WebhookEndpointCreate(Input):
    url: Url
    """https in live (G30); in test also http://localhost or http://127.0.0.1."""
    environment: Literal["test", "live"]
    event_types: EventTypes | None = None
    """Subscribed types (GET /v1/config lists them); omitted or empty: every type."""
    description: Description | None = None
    signing: Literal["hmac", "ed25519"] = "hmac"
    """`hmac`: a `whsec_` secret (v1); `ed25519`: receivers verify with the `whpk_` public key (v1a)."""


class WebhookEndpointUpdate(Input):
    url: Url | None = None
    event_types: EventTypes | None = None
    description: Description | None = None
    enabled: bool | None = None
    """Re-enabling an endpoint the service disabled clears its failure record."""


class WebhookSecretRotate(Input):
    overlap_hours: Annotated[float, msgspec.Meta(ge=0, le=168)] | None = None
    """How long deliveries also carry the old secret's signature (default:
SILVER_WEBHOOK_SECRET_OVERLAP_HOURS)."""


class WebhookEndpointPublic(Output):
    id: str
    project_id: str
    environment: str
    url: str
    description: str | None
    event_types: list[str]
    """Empty: every type."""
    enabled: bool
    disabled_reason: str | None
    signing: str
    public_key: str | None
    """`whpk_…` (ed25519 endpoints): what receivers verify with; public."""
    previous_public_key: str | None
    previous_secret_until: datetime | None
    """While set and in the future, deliveries are signed with the previous secret too."""
    failing_since: datetime | None
    created_at: datetime
    updated_at: datetime


class WebhookEndpointCreated(WebhookEndpointPublic):
    secret: str
    """`whsec_…` (or `whsk_…` for ed25519): shown in this one answer, never again (G16)."""


class WebhookEndpointPage(Output):
    items: list[WebhookEndpointPublic]


class WebhookAttemptPublic(Output):
    at: datetime
    outcome: str
    http_status: int | None
    """The receiver's HTTP status; null when no answer came (timeout, network error, refused address)."""
    duration_ms: int
    error_class: str | None
    response_excerpt: str | None


class WebhookMessagePublic(Output):
    id: str
    """The `webhook-id` header and the pull API's id: the same for every attempt and every endpoint."""
    event_type: str
    status: str
    """`pending`, `succeeded`, or `failed` (every scheduled attempt failed; replayable)."""
    attempt_count: int
    """Every attempt ever made, replays included."""
    next_attempt_at: datetime | None
    created_at: datetime
    cursor: int
    payload: dict[str, Any]
    attempts: list[WebhookAttemptPublic]


class WebhookMessagePage(Output):
    items: list[WebhookMessagePublic]
    next: int | None
    """Pass as `before` for the next (older) page; null at the end."""


class WebhookReplay(Input):
    since: datetime
    """Every failed message created from this time on is sent again."""


class WebhookQueued(Output):
    queued: int


class WebhookTestSent(Output):
    id: str
    """The test message's id (`webhook-id`)."""


class EndpointHealthPublic(Output):
    endpoint_id: str
    attempts: int
    failures: int
    failure_rate: float


class WebhookMetricsPublic(Output):
    by_status: dict[str, int]
    """Deliveries by state: pending, succeeded, failed (dead letters, replayable)."""
    outcomes: dict[str, int]
    """Attempts of the last hour by outcome: succeeded, http_error, gone, timeout, network_error, …"""
    backlog: int
    retrying: int
    oldest_pending_at: datetime | None
    endpoints: list[EndpointHealthPublic]
    """Over the last hour."""


class EventItem(Output):
    id: str
    type: str
    version: int
    timestamp: str
    data: dict[str, Any]
    cursor: str


class EventPage(Output):
    items: list[EventItem]
    next: str
    """Pass as `after` to continue; with no new events it is the cursor you sent, so keep polling with it."""
    has_more: bool
