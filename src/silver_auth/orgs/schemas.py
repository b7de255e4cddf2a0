from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

from silver_auth.core.schemas import Input, Name, Output
from silver_auth.core.text import MAX_EMAIL
from silver_auth.orgs.models import Role


class OrgCreate(Input):
    name: Name


class OrgUpdate(Input):
    name: Name


class Usage(Output):
    projects: int
    members: int


class OrgPublic(Output):
    id: str
    name: str
    plan: str
    role: Role
    """The caller's role in this org."""
    created_at: datetime


class OrgDetail(OrgPublic):
    usage: Usage
    limits: dict[str, int]


class OrgPage(Output):
    items: list[OrgPublic]


class MemberPublic(Output):
    account_id: str
    email: str
    role: Role
    joined_at: datetime


class MemberPage(Output):
    items: list[MemberPublic]


class MemberUpdate(Input):
    role: Role


class InvitationCreate(Input):
    role: Role
    email: Annotated[str, msgspec.Meta(max_length=MAX_EMAIL)] | None = None
    """Who the link is for; a note only (no email is sent, L8)."""


class InvitationPublic(Output):
    id: str
    org_id: str
    role: Role
    email: str | None
    status: str
    created_at: datetime
    expires_at: datetime


class InvitationCreated(InvitationPublic):
    token: str
    url: str
    """The one-time link; shown in this answer only."""


class InvitationPage(Output):
    items: list[InvitationPublic]


class InvitationAccept(Input):
    token: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
