"""The app's route table, for tests that walk every route."""

from __future__ import annotations

import re
from dataclasses import dataclass

from tests.factories import Harness


@dataclass(frozen=True)
class RouteCall:
    method: str
    path: str
    """As Litestar declares it: `/console/api/orgs/{org_id:str}`."""
    methods: frozenset[str]
    """Every method of the route, OPTIONS included."""

    @property
    def template(self) -> str:
        """As the OpenAPI document spells it: `/console/api/orgs/{org_id}`."""
        return re.sub(r":\w+\}", "}", self.path)

    @property
    def url(self) -> str:
        """The path with a placeholder for each id: `/console/api/orgs/org_id_x`."""
        return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: f"{m.group(1)}_x", self.path)


def route_calls(harness: Harness) -> list[RouteCall]:
    """One per method of every route handler of the app."""
    return [
        RouteCall(method, route.path, frozenset(route.methods))
        for route in harness.client.app.routes
        for handler in getattr(route, "route_handlers", [])
        for method in sorted(handler.http_methods)
    ]
