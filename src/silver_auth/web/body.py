"""How JSON request bodies are read: the request class every route gets (`Litestar(request_class=…)`).

Litestar decodes a route's `data` through `Request.json()`; this class checks two things there first:
- the body says it is JSON (`application/json` or any `…/…+json`), else 415. A cross-site page can
  post `text/plain` or a form without a preflight; it cannot send `application/json`. Form routes (the
  hosted pages) read `Request.form()` and are not affected.
- it nests at most MAX_JSON_DEPTH arrays and objects, else 400. msgspec recurses once per level and
  stops only at the interpreter's recursion limit (a RecursionError: a 500), so the depth is measured
  before decoding, on the bytes.
and, once decoded, that its values have the JSON types the route's `data` declares (and the OpenAPI
document says), else 422: Litestar converts leniently (`"force": 0` would be false, `"limit": "5"` 5).
"""

from __future__ import annotations

import re
from typing import Any, Final

import msgspec
import structlog
from litestar import Request
from litestar.exceptions import ValidationException

from silver_auth.core.errors import TooDeeplyNested, UnsupportedMediaType

MAX_JSON_DEPTH: Final = 32
"""Arrays and objects inside one another; the deepest body any route takes nests 3."""

log = structlog.get_logger("silver_auth.http")

# A JSON string, escapes included; an unterminated one runs to the end. It cannot fail once it has
# started at a quote, so the scan never restarts inside a string (linear time on any input).
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
_NOT_BRACKETS: Final = bytes(b for b in range(256) if b not in b"[]{}")
_OPENERS: Final = frozenset(b"[{")


def is_json_media_type(content_type: str) -> bool:
    """`application/json` or a structured `+json` type (RFC 6839), parameters ignored."""
    media = content_type.partition(";")[0].strip().lower()
    kind, slash, subtype = media.partition("/")
    return bool(kind and slash) and (media == "application/json" or subtype.endswith("+json"))


def nests_deeper_than(body: bytes, limit: int) -> bool:
    """Whether the arrays and objects of a JSON text nest deeper than `limit` (brackets in strings do
    not count). Malformed input may count wrongly; the decoder refuses it anyway."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False  # too few openers to get that deep: nearly every body stops here
    depth = 0
    for byte in _STRING.sub(b"", body).translate(None, _NOT_BRACKETS):
        depth += 1 if byte in _OPENERS else -1
        if depth > limit:
            return True
    return False


class JsonBodyRequest(Request[Any, Any, Any]):
    """A request whose JSON body is checked for its media type and nesting before it is decoded."""

    async def json(self) -> Any:
        content_type = self.headers.get("content-type", "")
        if not is_json_media_type(content_type):
            self._refused(415, "unsupported content type")
            raise UnsupportedMediaType(
                "this route takes a JSON body: send it with Content-Type: application/json"
            )
        if nests_deeper_than(await self.body(), MAX_JSON_DEPTH):
            self._refused(400, "too deeply nested")
            raise TooDeeplyNested(
                f"the JSON body nests arrays and objects deeper than {MAX_JSON_DEPTH} levels"
            )
        value = await super().json()
        self._check_types(value)
        return value

    def _check_types(self, value: Any) -> None:
        handler = self.scope.get("route_handler")
        data = handler.parsed_fn_signature.parameters.get("data") if handler is not None else None
        if data is None:
            return
        try:
            msgspec.convert(value, data.annotation, strict=True)
        except msgspec.ValidationError as exc:
            try:
                msgspec.convert(value, data.annotation, strict=False)
            except msgspec.ValidationError:
                return  # invalid either way: Litestar refuses it with its own field errors
            message, _, where = str(exc).partition(" - at `$")
            key = where.rstrip("`").lstrip(".")
            raise ValidationException(
                "the request has invalid or missing fields",
                extra=[{"message": message, "key": key, "source": "body"}],
            ) from None

    def _refused(self, status: int, reason: str) -> None:
        # The caller's mistake, not ours: info, never error (an error line pages someone).
        log.info("client_error", status=status, reason=reason, method=self.method, path=self.url.path)
