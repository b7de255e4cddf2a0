"""The port through which key changes reach every cache of verified keys on this worker."""

from __future__ import annotations

from typing import Protocol


class KeyCache(Protocol):
    def forget_key(self, lookup_hash: str) -> None:
        """Drop one key (revoked or rotated): this worker refuses it at once."""

    def forget_project(self, project_id: str) -> None:
        """Drop every key of a project whose answers changed (origins, name) or that is gone."""
