"""Quota tests compare whole-database snapshots around a refused request: no webhook worker of the
app's own may write delivery rows meanwhile."""

from __future__ import annotations

from pathlib import Path

import pytest

from silver_auth.settings import Settings
from tests.conftest import base_settings


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return base_settings(tmp_path, DATABASE_URL=database_url, SILVER_WEBHOOK_WORKER="external")
