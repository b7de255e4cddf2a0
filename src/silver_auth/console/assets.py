"""The console's browser assets: its stylesheet and script, and htmx (vendored from npm, `make vendor`).
Served by the app from the package; nothing is fetched from elsewhere at run time."""

from __future__ import annotations

from litestar import Response, get
from litestar.params import FromPath

from silver_auth.console.pages import page_opt
from silver_auth.console.render import ASSETS, PREFIX
from silver_auth.core.errors import NotFound


@get(f"{PREFIX}/assets/{{name:str}}", opt=page_opt("public"), include_in_schema=False)
async def console_asset(name: FromPath[str]) -> Response[bytes]:
    if name not in ASSETS:
        raise NotFound("no such asset")
    media_type, body = ASSETS[name]
    return Response(body, media_type=media_type, headers={"Cache-Control": "public, max-age=3600"})
