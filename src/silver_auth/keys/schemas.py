from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from silver_auth.core.schemas import Input, Output


class ApiKeyCreate(Input):
    kind: Literal["secret", "publishable"]
    environment: Literal["test", "live"]
    name: Annotated[str, msgspec.Meta(max_length=100)] | None = None


class ApiKeyRotate(Input):
    grace_seconds: Annotated[int, msgspec.Meta(ge=0, le=7 * 86400)] = 0
    """How long the old key keeps working (0: refused at once; at most 7 days)."""


class ApiKeyPublic(Output):
    id: str
    project_id: str
    kind: str
    environment: str
    prefix: str
    """Display prefix only; the whole secret key is never shown again (G16)."""
    name: str | None
    status: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None
    replaced_by: str | None
    publishable_key: str | None
    """Publishable keys are public; their whole value is always available."""


class ApiKeyCreated(ApiKeyPublic):
    key: str
    """The whole key. For a secret key this is the only time it is shown."""


class ApiKeyRotated(Output):
    new: ApiKeyCreated
    old: ApiKeyPublic


class ApiKeyPage(Output):
    items: list[ApiKeyPublic]


class BackendProject(Output):
    id: str
    name: str
    org_id: str


class BackendKey(Output):
    id: str
    prefix: str
    expires_at: datetime | None


class BackendProjectAnswer(Output):
    """The backend-key check (L1): which project and environment this secret key acts for."""

    project: BackendProject
    environment: str
    key: BackendKey
