"""The test harness itself: apps are shared between tests, their per-process state never is."""

from __future__ import annotations

import base64
import secrets
from pathlib import Path

from silver_auth.runtime import Runtime
from tests.conftest import AppPool, base_settings
from tests.factories import Harness


def test_a_shared_app_serves_each_test_with_a_runtime_of_its_own(
    apps: AppPool, database_url: str, tmp_path: Path
) -> None:
    # The same secrets both times, so a key cache carried over would answer for the same key.
    same = {
        "DATABASE_URL": database_url,
        "SESSION_SECRET": secrets.token_urlsafe(40),
        "SILVER_KEY_PEPPER": secrets.token_urlsafe(40),
        "SILVER_SEALING_KEYS": "t1:" + base64.b64encode(secrets.token_bytes(32)).decode(),
    }
    first_settings = base_settings(tmp_path / "first", **same)
    with apps.serve(first_settings) as client:
        harness = Harness(client, first_settings)
        owner = harness.user()
        project = harness.project(owner, harness.org(owner)["id"])
        pk = harness.key(owner, project["id"], "publishable", "live")["key"]
        harness.client.cookies.clear()
        assert harness.client.get("/v1/client-config", headers={"X-Publishable-Key": pk}).status_code == 200
        first: Runtime = client.app.state.runtime
        assert first.keys.cached(pk, "publishable") is not None
        with apps.serve(first_settings) as beside:
            assert beside.app is not client.app  # two at once (two workers) never share an app

    second_settings = base_settings(tmp_path / "second", **same)
    with apps.serve(second_settings) as client_again:
        assert client_again.app is client.app
        second: Runtime = client_again.app.state.runtime
        assert second is not first and second.engine is not first.engine
        assert second.settings is second_settings
        assert second.keys.cached(pk, "publishable") is None
