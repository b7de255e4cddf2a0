"""The npm `oidc-provider` peer (tests/peers/oidc-provider/server.js) as a running process, and a
non-interactive browser that signs in through it."""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
import pytest

PEER_DIR = Path(__file__).resolve().parent / "oidc-provider"
CLIENT_ID = "silver-console"


@dataclass
class OpenIdProvider:
    issuer: str
    client_id: str
    client_secret: str
    redirect_uri: str
    origin: str = ""
    """Where it listens (the issuer differs when it stands in for an Authentik application)."""

    def account(self, sub: str, **claims: Any) -> None:
        httpx.post(
            f"{self.origin or self.issuer}/__test/accounts", json={"sub": sub, **claims}
        ).raise_for_status()

    def tamper(self, **change: Any) -> None:
        """Rewrite the next ID token the provider issues (see server.js)."""
        httpx.post(f"{self.origin or self.issuer}/__test/tamper", json=change).raise_for_status()

    def authorize(self, authorization_url: str, sub: str, amr: str) -> str:
        """Play the browser at the provider: log in as `sub` and return the redirect back to Silver."""
        with httpx.Client(follow_redirects=False, timeout=10) as browser:
            url = authorization_url
            for _ in range(10):
                if url.startswith(self.redirect_uri):
                    return url
                if "/interaction/" in url and not url.endswith("/login"):
                    page = browser.get(url)
                    assert page.status_code == 200, page.text
                    response = browser.post(url + "/login", data={"sub": sub, "amr": amr})
                else:
                    response = browser.get(url)
                assert response.status_code in (302, 303), f"{url}: {response.status_code} {response.text}"
                url = urljoin(url, response.headers["location"])
        raise AssertionError("the provider never sent the browser back")


def run_oidc_provider(
    redirect_uri: str,
    *,
    client_id: str = CLIENT_ID,
    client_secret: str | None = None,
    issuer: str | None = None,
) -> Iterator[OpenIdProvider]:
    """Start the provider; with `issuer`, it stands in for one Authentik application (see server.js)."""
    node = shutil.which("node")
    if node is None or not (PEER_DIR / "node_modules" / "oidc-provider").exists():
        pytest.fail("the oidc-provider peer is not installed: run npm ci --prefix tests/peers/oidc-provider")
    secret = client_secret or secrets.token_urlsafe(32)
    process = subprocess.Popen(
        [node, str(PEER_DIR / "server.js")],
        env={
            "PATH": "/usr/bin:/bin",
            "CLIENT_ID": client_id,
            "CLIENT_SECRET": secret,
            "REDIRECT_URI": redirect_uri,
            **({"ISSUER": issuer} if issuer else {}),
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            pytest.fail("the oidc-provider peer did not start")
        started = json.loads(line)
        yield OpenIdProvider(started["issuer"], client_id, secret, redirect_uri, started["origin"])
    finally:
        process.terminate()
        process.wait(timeout=10)
