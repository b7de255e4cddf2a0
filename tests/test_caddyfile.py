"""deploy/Caddyfile as Caddy reads it: `caddy validate` accepts it (production defaults, the test
placeholders, the compose snippets), and `caddy adapt`'s JSON holds what the guide asks of the edge:
HTTPS with the headers on every answer (G1-G3), one upstream (G4, G5), the blocklist first (G39), and
the console boundary, checked against every route the app serves. Paths are matched here the way Caddy's
path matcher does (lower case, cleaned, prefix, suffix or glob), so the check follows Caddy, not a guess.

deploy/caddy/ratelimit.caddy needs the caddy-ratelimit plugin, which Debian's Caddy lacks: its structure
is parsed here, and a copy with each `rate_limit` block replaced by a `respond` is adapted by the real
Caddy, so its matchers are Caddy's own; their paths must cover every route the app limits more strictly.
"""

from __future__ import annotations

import json
import posixpath
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar

from silver_auth.app import create_app
from silver_auth.settings import load_settings
from tests.caddy import CADDY, CADDYFILE, require_caddy

DEPLOY = CADDYFILE.parent
ACCOUNTS, AUTH = "accounts.seqn.test", "auth.seqn.test"
TEST_ENV = {
    "SEQN_ACCOUNTS_HOST": ACCOUNTS,
    "SEQN_AUTH_HOST": AUTH,
    "SEQN_UPSTREAM": "127.0.0.1:18000",
    "SEQN_HTTP_PORT": "18080",
    "SEQN_HTTPS_PORT": "18443",
    "SEQN_TLS": "internal",
    "SEQN_CADDY_BIND": "loopback",
    "SEQN_CADDY_ADMIN": "127.0.0.1:18019",
}
EDGE_HEADERS = {
    "Strict-Transport-Security": ["max-age=31536000; includeSubDomains"],
    "X-Content-Type-Options": ["nosniff"],
    "Referrer-Policy": ["strict-origin-when-cross-origin"],
    "X-Request-Id": ["{http.request.uuid}"],
}
BOTH_HOSTS = {"/health"}
"""Routes that answer on either host: monitors of each host read them."""


def _caddy(
    verb: str, tmp_path: Path, config: Path = CADDYFILE, **env: str
) -> subprocess.CompletedProcess[str]:
    require_caddy()
    home = tmp_path / "caddy-home"
    environment = {"PATH": "/usr/bin:/bin", "HOME": str(home), "XDG_DATA_HOME": str(home / "data")}
    environment["XDG_CONFIG_HOME"] = str(home / "config")
    return subprocess.run(
        [str(CADDY), verb, "--config", str(config), "--adapter", "caddyfile"],
        env=environment | env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _adapt(tmp_path: Path, config: Path = CADDYFILE, **env: str) -> dict[str, Any]:
    done = _caddy("adapt", tmp_path, config, **env)
    assert done.returncode == 0, done.stderr
    adapted: dict[str, Any] = json.loads(done.stdout)
    return adapted


@dataclass
class Handled:
    """One handler of the adapted config, with the matcher sets of every route around it, outermost first."""

    handler: dict[str, Any]
    matchers: list[list[dict[str, Any]]]

    def paths(self) -> list[str]:
        return [path for sets in self.matchers for matcher in sets for path in matcher.get("path", [])]

    def methods(self) -> list[str]:
        return [m for sets in self.matchers for matcher in sets for m in matcher.get("method", [])]


def _handlers(routes: list[dict[str, Any]], around: list[list[dict[str, Any]]]) -> Iterator[Handled]:
    for route in routes:
        chain = [*around, route["match"]] if "match" in route else around
        for handler in route.get("handle", []):
            yield Handled(handler, chain)
            if handler.get("handler") == "subroute":
                yield from _handlers(handler.get("routes", []), chain)


def _site(config: dict[str, Any], host: str) -> list[Handled]:
    """Every handler of the HTTPS site for `host`, in order."""
    for server in config["apps"]["http"]["servers"].values():
        for route in server["routes"]:
            if any(host in matcher.get("host", []) for matcher in route.get("match", [])):
                return list(_handlers(route["handle"][0]["routes"], []))
    raise AssertionError(f"no site for {host}")


def caddy_path_matches(pattern: str, path: str) -> bool:
    """Caddy's `path` matcher (modules/caddyhttp/matchers.go): case-insensitive on the cleaned path (slashes
    merged, dot segments resolved, a trailing slash kept); `*` alone matches all, `*x*` is a substring,
    one leading or trailing `*` a suffix or prefix, anything else a glob where `*` stops at `/`."""
    pattern, path = pattern.lower(), path.lower()
    merged = re.sub(r"/+", "/", path)
    cleaned = posixpath.normpath(merged) if merged else "/"
    if merged.endswith("/") and cleaned != "/":
        cleaned += "/"
    if pattern == "*":
        return True
    stars = pattern.count("*")
    if stars == 2 and pattern.startswith("*") and pattern.endswith("*"):
        return pattern[1:-1] in cleaned
    if stars == 1 and pattern.startswith("*"):
        return cleaned.endswith(pattern[1:])
    if stars == 1 and pattern.endswith("*"):
        return cleaned.startswith(pattern[:-1])
    glob = "".join("[^/]*" if ch == "*" else "[^/]" if ch == "?" else re.escape(ch) for ch in pattern)
    return re.fullmatch(glob, cleaned) is not None


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("/console/*", "/console/api/me", True),
        ("/console/*", "/CONSOLE/api/me", True),
        ("/console/*", "/consoles", False),
        ("/console", "/console/", False),
        ("/v1/*", "//v1//config", True),
        ("/v1/*", "/v1/../console/api/me", False),
        ("/p/*/*/sign-in", "/p/prj_1/test/sign-in", True),
        ("/p/*/*/sign-in", "/p/prj_1/sign-in", False),
        ("/p/*/*/account/two-step/*", "/p/a/b/account/two-step/confirm", True),
        ("/p/*/*/account/two-step/*", "/p/a/b/account/two-step/x/y", False),
    ],
)
def test_the_path_matcher_follows_caddy(pattern: str, path: str, matches: bool) -> None:
    assert caddy_path_matches(pattern, path) is matches


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Litestar:
    return create_app(load_settings(_env_file=None, SILVER_DATA_DIR=str(tmp_path_factory.mktemp("app"))))


def _sample(template: str) -> str:
    return re.sub(r"\{[^}]+\}", "x1", template)


def _app_routes(app: Litestar) -> list[tuple[str, set[str], str | None]]:
    """(sample path, methods, rate_limit opt) of every route handler the app serves."""
    found = []
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            found.append((_sample(route.path), set(handler.http_methods), handler.opt.get("rate_limit")))
    return found


# --- the Caddyfile as Caddy reads it ----------------------------------------------------------------


@pytest.mark.parametrize(
    "env",
    [{}, TEST_ENV, TEST_ENV | {"SEQN_EDGE_SSO": "caddy/sso", "SEQN_EDGE_BLOCKLIST": "/nowhere/*.caddy"}],
    ids=["production-defaults", "test-placeholders", "compose-snippets"],
)
def test_caddy_validate_accepts_the_caddyfile(tmp_path: Path, env: dict[str, str]) -> None:
    done = _caddy("validate", tmp_path, **env)
    assert done.returncode == 0, done.stderr
    assert "Valid configuration" in done.stdout + done.stderr


def test_the_caddyfile_is_formatted(tmp_path: Path) -> None:
    require_caddy()
    for path in [CADDYFILE, *sorted((DEPLOY / "caddy").glob("*.caddy"))]:
        done = subprocess.run(
            [str(CADDY), "fmt", str(path)], capture_output=True, text=True, timeout=30, check=False
        )
        assert done.returncode == 0 and done.stdout == path.read_text(), f"caddy fmt would change {path.name}"


def test_g1_both_hosts_are_https_sites_with_certificates(tmp_path: Path) -> None:
    production = _adapt(tmp_path)
    servers = production["apps"]["http"]["servers"]
    https = [server for server in servers.values() if server["listen"] == [":443"]]
    assert len(https) == 1
    assert [r["match"][0]["host"] for r in https[0]["routes"]] == [["accounts.seqn.in"], ["auth.seqn.in"]]
    assert "automatic_https" not in https[0]  # redirects and certificates stay automatic (ACME)
    plain = [server for server in servers.values() if server["listen"] == [":80"]]
    assert len(plain) == 1  # any other host over plain HTTP: 404 (the sites' own redirects go first)
    assert [h.handler for h in _handlers(plain[0]["routes"], [])] == [
        {"handler": "static_response", "status_code": 404}
    ]
    tested = _adapt(tmp_path, **TEST_ENV)
    policies = tested["apps"]["tls"]["automation"]["policies"]
    assert policies == [{"subjects": [ACCOUNTS, AUTH], "issuers": [{"module": "internal"}]}]
    assert tested["apps"]["pki"]["certificate_authorities"]["local"]["install_trust"] is False
    servers = tested["apps"]["http"]["servers"]
    assert {tuple(server["listen"]) for server in servers.values()} == {
        ("127.0.0.1:18443",),
        ("127.0.0.1:18080",),
    }
    assert tested["admin"]["listen"] == "127.0.0.1:18019"


@pytest.mark.parametrize("host", [ACCOUNTS, AUTH])
def test_g2_g3_g4_every_answer_gets_the_headers_and_only_the_api_is_upstream(
    tmp_path: Path, host: str
) -> None:
    handled = _site(_adapt(tmp_path, **TEST_ENV), host)
    headers = handled[0].handler
    assert headers["handler"] == "headers" and not handled[0].matchers  # first, for every request
    assert headers["response"] == {"deferred": True, "set": EDGE_HEADERS, "delete": ["Server"]}
    proxies = [h.handler for h in handled if h.handler["handler"] == "reverse_proxy"]
    assert len(proxies) == 1
    assert proxies[0]["upstreams"] == [{"dial": "127.0.0.1:18000"}]
    assert proxies[0]["headers"]["request"]["set"] == {"X-Request-Id": ["{http.request.uuid}"]}
    assert handled[-1].handler == {"handler": "static_response", "status_code": 404}
    assert handled[-1].matchers == []  # everything not routed is refused


@pytest.mark.parametrize("host", [ACCOUNTS, AUTH])
def test_g39_the_blocklist_and_dot_segments_come_before_any_route(tmp_path: Path, host: str) -> None:
    blocklist = tmp_path / "blocklist.caddy"
    blocklist.write_text("@edge_blocked {\n\tremote_ip 203.0.113.7/32\n}\nrespond @edge_blocked 403\n")
    handled = _site(_adapt(tmp_path, **TEST_ENV, SEQN_EDGE_BLOCKLIST=str(blocklist)), host)
    routed = [h for h in handled if h.handler["handler"] not in ("headers", "subroute")]
    assert routed[0].handler == {"handler": "static_response", "status_code": 403}
    assert routed[0].matchers == [[{"remote_ip": {"ranges": ["203.0.113.7/32"]}}]]
    assert routed[1].handler == {"handler": "static_response", "status_code": 404}
    assert "vars_regexp" in routed[1].matchers[0][0]
    empty = _site(_adapt(tmp_path, **TEST_ENV), host)  # the shipped list: nothing blocked, nothing refused
    assert not any("remote_ip" in str(h.matchers) for h in empty)


def test_the_console_boundary_covers_every_route_the_app_serves(tmp_path: Path, app: Litestar) -> None:
    config = _adapt(tmp_path, **TEST_ENV)
    proxied = {
        host: [h for h in _site(config, host) if h.handler["handler"] == "reverse_proxy"]
        for host in (ACCOUNTS, AUTH)
    }
    patterns = {host: proxied[host][0].paths() for host in proxied}
    assert patterns[ACCOUNTS] == ["/console", "/console/*", "/admin", "/admin/*", "/health"]
    problems = []
    for path, methods, _ in _app_routes(app):
        on = {
            host
            for host, host_patterns in patterns.items()
            if any(caddy_path_matches(p, path) for p in host_patterns)
        }
        console = path in ("/console", "/admin") or path.startswith(("/console/", "/admin/"))
        expected = {ACCOUNTS, AUTH} if path in BOTH_HOSTS else {ACCOUNTS} if console else {AUTH}
        if on != expected:
            problems.append(
                f"{sorted(methods)} {path}: served on {sorted(on) or 'no host'}, not {sorted(expected)}"
            )
    assert not problems, "\n".join(problems)


def test_the_console_root_redirects_to_the_console(tmp_path: Path) -> None:
    redirect = [
        h for h in _site(_adapt(tmp_path, **TEST_ENV), ACCOUNTS) if h.handler.get("status_code") == 302
    ]
    assert [(h.paths(), h.handler["headers"]["Location"]) for h in redirect] == [(["/"], ["/console/"])]


# --- the route limits (G36) ---------------------------------------------------------------------------

LIMITS = DEPLOY / "caddy" / "ratelimit.caddy"
RATE_LIMIT_BLOCK = re.compile(r"rate_limit (@\w+) \{")
ZONE = re.compile(
    r"\s*zone (?P<zone>\w+) \{\s*key (?P<key>\S+)"
    r"\s*events \{\$(?P<env>SEQN_EDGE_[A-Z_]+_PER_MINUTE):(?P<events>\d+)\}"
    r"\s*window (?P<window>\d+[smh])\s*\}\s*"
)


def _rate_limit_blocks(text: str) -> Iterator[tuple[int, int, str, str]]:
    """(start, end, matcher, body) of every `rate_limit @m { … }` block, braces balanced."""
    for match in RATE_LIMIT_BLOCK.finditer(text):
        depth, index = 1, match.end()
        while depth:
            depth += {"{": 1, "}": -1}.get(text[index], 0)
            index += 1
        yield match.start(), index, match.group(1), text[match.end() : index - 1]


def _limits_as_responds(tmp_path: Path) -> Path:
    """ratelimit.caddy with each rate_limit block turned into `respond @m "zone:<name>" 429`: the same
    matchers and snippets, in a form stock Caddy can adapt."""
    text = LIMITS.read_text()
    out, last = [], 0
    for start, end, matcher, body in _rate_limit_blocks(text):
        zone = ZONE.fullmatch(body)
        assert zone, f"a rate_limit block not of the form this test knows: {body!r}"
        out += [text[last:start], f'respond {matcher} "zone:{zone["zone"]}" 429']
        last = end
    copy = tmp_path / "ratelimit-as-respond.caddy"
    copy.write_text("".join([*out, text[last:]]))
    return copy


def test_g36_every_limit_is_one_zone_per_source_with_a_tunable_count() -> None:
    text = LIMITS.read_text()
    blocks = list(_rate_limit_blocks(text))
    assert len(blocks) >= 8
    zones = [ZONE.fullmatch(body) for _, _, _, body in blocks]
    assert all(zones), [body for (_, _, _, body), zone in zip(blocks, zones, strict=True) if not zone]
    names = [zone["zone"] for zone in zones if zone]
    assert len(set(names)) == len(names), "zone names are global to Caddy: each must be unique"
    for zone in zones:
        assert zone is not None
        assert zone["key"] == "{remote_host}" and zone["window"] == "1m"
        assert int(zone["events"]) > 0
    for _, _, matcher, _ in blocks:
        assert re.search(rf"^\t{re.escape(matcher)} ", text, re.MULTILINE), f"{matcher} is not defined"
    snippets = set(re.findall(r"^\((\S+)\) \{", text, re.MULTILINE))
    off = set(
        re.findall(r"^\((\S+)\) \{", (DEPLOY / "caddy" / "ratelimit-off.caddy").read_text(), re.MULTILINE)
    )
    assert snippets == off == {"limits-accounts", "limits-auth"}


def test_g36_the_limits_cover_every_route_the_app_limits_and_the_backend_api(
    tmp_path: Path, app: Litestar
) -> None:
    copy = _limits_as_responds(tmp_path)  # imported by absolute path: SEQN_EDGE_LIMITS names it, less .caddy
    config = _adapt(tmp_path, **TEST_ENV, SEQN_EDGE_LIMITS=str(copy.with_suffix("")))
    zones: dict[str, list[Handled]] = {}
    for host in (ACCOUNTS, AUTH):
        zones[host] = [h for h in _site(config, host) if str(h.handler.get("body", "")).startswith("zone:")]
        assert zones[host], host
    problems = []
    for path, methods, limit in _app_routes(app):
        if limit is None and not path.startswith("/v1/backend/"):
            continue
        host = ACCOUNTS if path.startswith(("/console/", "/admin/")) else AUTH
        covered = [
            zone.handler["body"]
            for zone in zones[host]
            if any(caddy_path_matches(p, path) for p in zone.paths())
            and (not zone.methods() or methods <= set(zone.methods()))
        ]
        if len(covered) != 1:
            problems.append(f"{sorted(methods)} {path} ({limit}): {covered or 'no edge limit'}")
    assert not problems, "\n".join(problems)
