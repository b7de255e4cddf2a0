"""Fixtures of the SDK tests: a real API process on the test's database and a customer project."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.endusers.support import CustomerProject, customer_project
from tests.factories import Harness
from tests.processes import ApiProcess, free_port, settings_env


@pytest.fixture
def service_env() -> dict[str, str]:
    """Extra environment of the service process: override this fixture in a module for other settings."""
    return {}


@pytest.fixture
def service(harness: Harness, service_env: dict[str, str], tmp_path: Path) -> Iterator[ApiProcess]:
    """The API as a real uvicorn process, serving the test's database, at the URL it issues tokens for."""
    port = free_port()
    own = {"SILVER_ACCOUNTS_URL": f"http://127.0.0.1:{port}", "SILVER_AUTH_URL": f"http://127.0.0.1:{port}"}
    api = ApiProcess(settings_env(harness.settings, **(own | service_env)), tmp_path / "api.log", port)
    api.start()
    yield api
    api.stop()


@pytest.fixture
def project(harness: Harness) -> CustomerProject:
    return customer_project(harness)
