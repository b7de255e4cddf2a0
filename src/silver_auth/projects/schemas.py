from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from silver_auth.core.schemas import Input, Name, Output

UrlList = Annotated[list[Annotated[str, msgspec.Meta(max_length=2048)]], msgspec.Meta(max_length=50)]
RedirectUrlList = Annotated[
    list[Annotated[str, msgspec.Meta(max_length=2048)]],
    msgspec.Meta(
        max_length=50,
        description="Replaces the whole list: URLs left out are unregistered. To add or remove one URL "
        "without sending the others, use POST or DELETE /console/api/projects/{project_id}/redirect-urls.",
        examples=[["https://app.example.com/callback", "com.example.app:/callback"]],
    ),
]
RedirectUrl = Annotated[
    str, msgspec.Meta(min_length=1, max_length=2048, examples=["https://app.example.com/callback"])
]


Origin = Annotated[str, msgspec.Meta(min_length=1, max_length=2048, examples=["https://app.example.com"])]


class ProjectCreate(Input):
    name: Name


class ProjectUpdate(Input):
    name: Name | None = None
    allowed_origins: UrlList | None = None
    redirect_urls: RedirectUrlList | None = None
    sign_in_methods: list[Literal["password"]] | None = None


class BrandingUpdate(Input):
    """Fields left out keep their value; an empty name or colour goes back to the default."""

    display_name: (
        Annotated[
            str,
            msgspec.Meta(
                max_length=60, examples=["Acme Cloud"], description="Shown instead of the project's name."
            ),
        ]
        | None
    ) = None
    primary_colour: (
        Annotated[
            str,
            msgspec.Meta(max_length=7, examples=["#1f5fbf"], description="`#rrggbb`: buttons, links, focus."),
        ]
        | None
    ) = None
    theme: Literal["auto", "light", "dark"] | None = None


class BrandingPublic(Output):
    project_id: str
    display_name: str | None
    primary_colour: str | None
    button_text_colour: str | None
    """White or near-black, whichever reaches WCAG AA on the primary colour."""
    theme: str
    logo_url: str | None
    """Changes with the logo (a content hash); the old URL answers 404. Upload on the console page."""


class RedirectUrlAdd(Input):
    url: RedirectUrl


class OriginAdd(Input):
    origin: Origin


class ProjectPublic(Output):
    id: str
    org_id: str
    name: str
    environments: list[str]
    allowed_origins: list[str]
    redirect_urls: list[str]
    sign_in_methods: list[str]
    created_at: datetime
    updated_at: datetime


class ProjectPage(Output):
    items: list[ProjectPublic]


class ClientProject(Output):
    id: str
    name: str


class ClientUrls(Output):
    sign_in: str
    sign_up: str
    jwks: str


class ClientConfig(Output):
    """What a customer's frontend may know: nothing secret (G10, G18)."""

    project: ClientProject
    environment: str
    sign_in_methods: list[str]
    urls: ClientUrls
