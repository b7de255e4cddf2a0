"""The browser module (sdk/js): its unit tests under Node's test runner, the packaged copy the auth host
serves, and the serving route's headers (immutable, CORS for any origin, ETag; unknown versions 404)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from silver_auth.web.sdk_js import CACHE_CONTROL, STATIC
from tests.factories import Harness

ROOT = Path(__file__).resolve().parents[2]
SDK = ROOT / "sdk/js"
VERSION = json.loads((SDK / "package.json").read_text())["version"]
URL = f"/sdk/js/seqn-auth@{VERSION}.js"


def test_the_node_unit_tests_pass() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is missing (apt-get install nodejs)")
    # Only the test directory: a bare `node --test` would also collect files of the repository's peers.
    run = subprocess.run(
        [node, "--test", "test/"], cwd=SDK, capture_output=True, text=True, timeout=120, check=False
    )
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert re.search(r"^# fail 0$", run.stdout, re.MULTILINE), run.stdout[-2000:]


def test_the_packaged_copy_is_the_current_module() -> None:
    # `make sdk-js` copied it; a hand-edited or stale copy fails here
    source = (SDK / "seqn-auth.js").read_bytes()
    assert (STATIC / f"seqn-auth@{VERSION}.js").read_bytes() == source
    assert f'export const VERSION = "{VERSION}";'.encode() in source


def test_every_released_copy_says_its_own_version() -> None:
    released = sorted(STATIC.glob("seqn-auth@*.js"))
    assert released
    for path in released:
        version = path.name.removeprefix("seqn-auth@").removesuffix(".js")
        assert f'export const VERSION = "{version}";' in path.read_text(), path.name


def test_the_module_is_served_immutable_to_any_origin(harness: Harness) -> None:
    response = harness.client.get(URL, headers={"origin": "https://app.example.com"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert response.headers["cache-control"] == CACHE_CONTROL
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.content == (SDK / "seqn-auth.js").read_bytes()
    etag = response.headers["etag"]
    assert re.fullmatch(r'"[0-9a-f]{32}"', etag)

    again = harness.client.get(URL, headers={"if-none-match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    assert again.headers["cache-control"] == CACHE_CONTROL
    other = harness.client.get(URL, headers={"if-none-match": '"something-else"'})
    assert other.status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/sdk/js/seqn-auth@0.0.0.js",
        "/sdk/js/seqn-auth@latest.js",
        "/sdk/js/seqn-auth.js",
        f"/sdk/js/seqn-auth@{VERSION}.js.map",
        "/sdk/js/..%2Fsdk_js.py",
        "/sdk/js/",
        f"/sdk/js/{VERSION}/seqn-auth.js",
    ],
)
def test_unknown_versions_are_a_problem(harness: Harness, path: str) -> None:
    response = harness.client.get(path)
    assert response.status_code == 404, path
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["status"] == 404
    assert response.headers["cache-control"] == "no-store"
