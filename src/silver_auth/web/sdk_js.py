"""The browser module (sdk/js, npm `@seqn/auth`) served from the auth host at a versioned URL,
`/sdk/js/seqn-auth@{version}.js`, for pages that import it without a bundler.

Every released version stays in `static/` (`make sdk-js` copies the current one there), so a page
pinned to a version keeps working after an upgrade and the answer can be cached for good. Any origin
may import it: a cross-origin `<script type="module">` is fetched in CORS mode, and the file is public.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from litestar import Request, Response, get
from litestar.params import FromPath

from silver_auth.core.errors import NotFound

STATIC = Path(__file__).parent / "static"
FILE_NAME = re.compile(r"seqn-auth@(\d+\.\d+\.\d+(?:-[0-9A-Za-z.]+)?)\.js")
PATH = "/sdk/js"
CACHE_CONTROL = "public, max-age=31536000, immutable"


@dataclass(frozen=True, slots=True)
class Release:
    body: bytes
    etag: str


def _releases() -> dict[str, Release]:
    found = {}
    for path in STATIC.glob("seqn-auth@*.js"):
        if FILE_NAME.fullmatch(path.name):
            body = path.read_bytes()
            found[path.name] = Release(body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')
    return found


RELEASES = _releases()
"""File name -> contents, read once: the files never change once released."""


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in tags or etag in tags


@get(f"{PATH}/{{name:str}}", include_in_schema=False)
async def sdk_js(request: Request[Any, Any, Any], name: FromPath[str]) -> Response[bytes]:
    release = RELEASES.get(name)
    if release is None:
        raise NotFound("no such version of the browser module (sdk/js/README.md lists the URL)")
    headers = {
        "Cache-Control": CACHE_CONTROL,
        "ETag": release.etag,
        "Access-Control-Allow-Origin": "*",
    }
    if _matches(request.headers.get("if-none-match"), release.etag):
        return Response(b"", status_code=304, headers=headers)
    return Response(release.body, media_type="text/javascript; charset=utf-8", headers=headers)
