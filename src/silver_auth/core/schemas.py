"""Base structs for request and response bodies."""

from __future__ import annotations

from typing import Annotated

import msgspec


class Input(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Request bodies: unknown fields are an error, not silently dropped."""


class Output(msgspec.Struct, kw_only=True):
    """Response bodies: built explicitly from service results, never a table row."""


Name = Annotated[str, msgspec.Meta(min_length=1, max_length=100, examples=["Acme"])]


class RevokedCount(Output):
    """How many sessions a revocation ended."""

    revoked: int
