from __future__ import annotations

from datetime import datetime

from silver_auth.core.schemas import Output


class ProjectIdentityPublic(Output):
    """A project's Authentik application: public OIDC facts only, never the client secret (G10, G18)."""

    project_id: str
    application_slug: str
    client_id: str
    issuer: str
    created_at: datetime
    secret_rotated_at: datetime | None
