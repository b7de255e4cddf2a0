"""Platform-admin request and answer bodies. Support views carry display prefixes and ids, never a
secret, key hash, session token, password hash or TOTP secret (G28)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from silver_auth.core.schemas import Input, Output
from silver_auth.orgs.models import Role

PlanId = Literal["free", "pro", "scale"]


class AdminOrgSummary(Output):
    id: str
    name: str
    plan: str
    members: int
    projects: int
    created_at: datetime


class AdminOrgPage(Output):
    items: list[AdminOrgSummary]
    next_offset: int | None
    """Pass as `offset` for the next page; null at the end."""


class AdminMember(Output):
    account_id: str
    email: str
    role: Role
    joined_at: datetime


class AdminKey(Output):
    id: str
    kind: str
    environment: str
    prefix: str
    """Display prefix only (G16, G28)."""
    status: str
    created_at: datetime
    last_used_at: datetime | None


class AdminProject(Output):
    id: str
    name: str
    created_at: datetime
    keys: list[AdminKey]


class QuotaUse(Output):
    quota: str
    used: int
    limit: int


class AdminOrgDetail(Output):
    id: str
    name: str
    plan: str
    created_at: datetime
    usage: list[QuotaUse]
    members: list[AdminMember]
    projects: list[AdminProject]


class PlanChange(Input):
    plan: Annotated[PlanId, msgspec.Meta(examples=["pro"])]
    force: bool = False
    """Downgrade even when the org uses more than the new plan allows (it keeps what it has but can add
    nothing over the limits); without it such a downgrade is refused with 409."""


class PlanChanged(Output):
    org_id: str
    previous: str
    plan: str
    over_quota: list[QuotaUse]
    """Quotas the org now exceeds (only after a forced downgrade)."""


class AdminAccountSummary(Output):
    id: str
    email: str
    is_active: bool
    groups: list[str]
    created_at: datetime


class AdminAccountPage(Output):
    items: list[AdminAccountSummary]
    next_offset: int | None


class AdminAccountOrg(Output):
    org_id: str
    name: str
    role: Role


class AdminSession(Output):
    id: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    ip: str | None
    user_agent: str | None
    mfa: bool


class AdminAccountDetail(AdminAccountSummary):
    mfa_enabled: bool | None
    """A confirmed TOTP factor (builtin identity); null when Authentik holds the devices (see
    /admin/api/identity/users)."""
    orgs: list[AdminAccountOrg]
    sessions: list[AdminSession]
    """Active sessions: device, IP, times; never the token."""


class AccountSessionsRevoked(Output):
    account_id: str
    revoked: int
    kept_current: bool
    """True when admins revoke their own account's sessions: the session making the call stays."""


class DirectoryUserPublic(Output):
    id: str
    email: str | None
    name: str | None
    is_active: bool
    groups: list[str]
    mfa_devices: int


class DirectoryUserPage(Output):
    items: list[DirectoryUserPublic]
    next_offset: int | None


class DirectoryGroupPublic(Output):
    id: str
    name: str
    member_count: int | None


class DirectoryGroupPage(Output):
    items: list[DirectoryGroupPublic]


class MfaReset(Output):
    user_id: str
    removed: int
    """Second-factor devices removed."""
