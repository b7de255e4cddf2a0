"""The console's pages, mounted by the app behind `page_guard` and the org-role guard."""

from __future__ import annotations

from typing import Any

from litestar import Router

from silver_auth.console.assets import console_asset
from silver_auth.console.auth import SignedOutPages, SignOutPage
from silver_auth.console.branding import BrandingPages
from silver_auth.console.orgs import OrgPages
from silver_auth.console.pages import PAGE_HANDLERS, page_guard
from silver_auth.orgs.guards import org_role_guard


def console_pages() -> Router:
    handlers: list[Any] = [
        console_asset,
        SignedOutPages,
        SignOutPage,
        OrgPages,
        BrandingPages,
    ]
    return Router(
        path="/",
        route_handlers=handlers,
        guards=[page_guard, org_role_guard],
        exception_handlers=PAGE_HANDLERS,  # HTML errors on every page, the stylesheet's too
    )
