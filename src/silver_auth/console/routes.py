"""The console's pages, mounted by the app behind `page_guard` and the org-role guard."""

from __future__ import annotations

from typing import Any

from litestar import Router

from silver_auth.console.account import AccountPages
from silver_auth.console.admin import AdminPages
from silver_auth.console.assets import console_asset
from silver_auth.console.audit import AuditPages
from silver_auth.console.auth import SignedOutPages, SignOutPage
from silver_auth.console.branding import BrandingPages
from silver_auth.console.endusers import EndUserPages
from silver_auth.console.keys import KeyPages, SigningKeyPages
from silver_auth.console.members import InvitationPages, MemberPages
from silver_auth.console.orgs import OrgPages
from silver_auth.console.pages import PAGE_HANDLERS, page_guard
from silver_auth.console.projects import ProjectPages
from silver_auth.console.try_sign_in import TrySignInPages
from silver_auth.console.webhooks import WebhookPages
from silver_auth.orgs.guards import org_role_guard


def console_pages() -> Router:
    handlers: list[Any] = [
        console_asset,
        SignedOutPages,
        SignOutPage,
        OrgPages,
        TrySignInPages,
        WebhookPages,
        MemberPages,
        InvitationPages,
        AdminPages,
        AccountPages,
        ProjectPages,
        KeyPages,
        SigningKeyPages,
        EndUserPages,
        AuditPages,
        BrandingPages,
    ]
    return Router(
        path="/",
        route_handlers=handlers,
        guards=[page_guard, org_role_guard],
        exception_handlers=PAGE_HANDLERS,  # HTML errors on every page, the stylesheet's too
    )
