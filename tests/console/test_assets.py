"""The console's browser assets: served by the app from the package, htmx exactly the npm lock's file."""

from __future__ import annotations

import json
from pathlib import Path

from tests.factories import Harness

ROOT = Path(__file__).resolve().parents[2]
VENDOR = ROOT / "vendor/console"
STATIC = ROOT / "src/silver_auth/console/static"


def test_the_vendored_htmx_is_the_locked_npm_package() -> None:
    locked = json.loads((VENDOR / "package-lock.json").read_text())["packages"]["node_modules/htmx.org"]
    installed = VENDOR / "node_modules/htmx.org"
    assert json.loads((installed / "package.json").read_text())["version"] == locked["version"]
    # `make vendor` copied it; a hand-edited or stale copy fails here
    assert (STATIC / "htmx.min.js").read_bytes() == (installed / "dist/htmx.min.js").read_bytes()


def test_assets_are_served_and_nothing_else(harness: Harness) -> None:
    for name, media_type in (
        ("console.css", "text/css"),
        ("console.js", "text/javascript"),
        ("htmx.min.js", "text/javascript"),
    ):
        response = harness.client.get(f"/console/assets/{name}")
        assert response.status_code == 200, name
        assert response.headers["content-type"].startswith(media_type)
        assert response.content == (STATIC / name).read_bytes()
    for name in ("nope.js", "..%2Fpages.py", "console.css.map"):
        response = harness.client.get(f"/console/assets/{name}")
        assert response.status_code == 404, name
        assert response.headers["content-type"].startswith("text/html")


def test_pages_load_the_scripts_with_the_csrf_header_for_htmx(harness: Harness) -> None:
    owner = harness.user()
    org_id = harness.org(owner)["id"]
    body = owner.get(f"/console/orgs/{org_id}").text
    assert '<script src="/console/assets/htmx.min.js" defer></script>' in body
    assert f'hx-headers=\'{{"X-CSRF-Token": "{owner.csrf_token}"}}\'' in body
