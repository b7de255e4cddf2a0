"""The production edge for real: Debian's Caddy running deploy/Caddyfile (with its internal CA, on loopback
ports) in front of `silver-auth serve`. HTTPS only and the redirect (G1), the headers on every answer
(G2, G3), the console boundary by host, a blocked source refused at the edge (G39), and the API's own
port on loopback only (G4, G5). One Caddy and one API serve the whole module."""

from __future__ import annotations

import ipaddress
import json
import os
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.caddy import ACCOUNTS_HOST, AUTH_HOST, SILVER_AUTH, Edge, LoopbackTransport, edge_on_test_database
from tests.processes import free_port

pytestmark = pytest.mark.slow
EDGE_HEADERS = {
    "strict-transport-security": "max-age=31536000; includeSubDomains",
    "x-content-type-options": "nosniff",
    "referrer-policy": "strict-origin-when-cross-origin",
}


@pytest.fixture(scope="module")
def edge(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    with edge_on_test_database(
        request, tmp_path_factory.mktemp("edge"), SILVER_METRICS_PORT=str(free_port())
    ) as running:
        yield running


@pytest.fixture(scope="module")
def accounts(edge: Edge) -> Iterator[httpx.Client]:
    with edge.client(base_url=edge.accounts) as client:
        yield client


@pytest.fixture(scope="module")
def auth(edge: Edge) -> Iterator[httpx.Client]:
    with edge.client(base_url=edge.auth) as client:
        yield client


def _from_edge(response: httpx.Response) -> bool:
    """An answer Caddy made itself: the API puts a Content-Security-Policy on every answer it gives."""
    return "content-security-policy" not in response.headers and response.content == b""


def _assert_edge_headers(response: httpx.Response) -> None:
    for name, value in EDGE_HEADERS.items():
        assert response.headers.get_list(name) == [value], (name, response.headers)
    assert "server" not in response.headers
    assert re.fullmatch(r"[0-9a-f-]{36}", response.headers["x-request-id"])


# --- G1: HTTPS only ----------------------------------------------------------------------------------


@pytest.mark.parametrize("host", [ACCOUNTS_HOST, AUTH_HOST])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_g1_plain_http_redirects_to_https(edge: Edge, host: str, method: str) -> None:
    with edge.client() as client:
        response = client.request(method, f"http://{host}:{edge.caddy.http_port}/v1/config?x=1")
    assert response.status_code == 308  # the method and body are kept on the way to https
    # Caddy takes its https_port for the public 443, so the redirect names no port: production's URL
    assert response.headers["location"] == f"https://{host}/v1/config?x=1"
    assert response.content == b""


def test_g1_plain_http_for_another_host_is_refused(edge: Edge) -> None:
    with edge.client() as client:
        response = client.get(f"http://evil.test:{edge.caddy.http_port}/health")
    assert response.status_code == 404
    assert response.content == b""


def test_g1_the_https_port_speaks_tls_only(edge: Edge) -> None:
    with edge.client() as client:
        response = client.get(f"http://{AUTH_HOST}:{edge.caddy.https_port}/health")
    assert response.status_code == 400  # "Client sent an HTTP request to an HTTPS server"
    assert b'"status"' not in response.content


def test_g1_certificates_are_checked_and_unknown_names_get_none(edge: Edge) -> None:
    with httpx.Client(transport=LoopbackTransport(), timeout=10) as client, pytest.raises(httpx.ConnectError):
        client.get(f"{edge.auth}/health")  # the system's CAs do not know Caddy's internal CA
    with edge.client() as client, pytest.raises(httpx.ConnectError):
        client.get(f"https://evil.test:{edge.caddy.https_port}/health")  # no certificate for that name


# --- G2, G3: headers on every answer, once ------------------------------------------------------------


def test_g2_g3_api_answers_carry_each_header_once(auth: httpx.Client, accounts: httpx.Client) -> None:
    for client in (auth, accounts):
        response = client.get("/health")
        assert response.status_code == 200
        assert not _from_edge(response)
        _assert_edge_headers(response)


def test_g2_g3_the_edges_own_refusals_carry_them_too(auth: httpx.Client, accounts: httpx.Client) -> None:
    for response in (auth.get("/console/api/me"), accounts.get("/v1/config"), auth.get("/")):
        assert response.status_code == 404
        assert _from_edge(response)
        _assert_edge_headers(response)


def _logged_requests(edge: Edge, request_id: str) -> list[dict[str, object]]:
    """The API's access-log lines for one request id; they are written when the event loop's turn ends,
    so wait for them a bounded while."""
    deadline = time.monotonic() + 10
    while True:
        logged = [json.loads(line) for line in edge.api.output().splitlines() if line.startswith("{")]
        found = [
            line for line in logged if line.get("event") == "request" and line.get("request_id") == request_id
        ]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_the_request_id_is_the_edges_end_to_end(edge: Edge, auth: httpx.Client) -> None:
    """Caddy's id reaches the API's log line and comes back on the answer; a client's own is replaced."""
    response = auth.get("/v1/config", headers={"x-request-id": "client-chosen"})
    request_id = response.headers["x-request-id"]
    assert request_id != "client-chosen"
    lines = _logged_requests(edge, request_id)
    assert [line["route"] for line in lines] == ["/v1/config"]
    assert lines[0]["client_ip"] == "127.0.0.1"  # X-Forwarded-For from a trusted proxy (G4)


# --- the console boundary, by host ---------------------------------------------------------------------

CONSOLE_ONLY = ["/console/api/me", "/console/api/orgs", "/admin/api/orgs", "/console/", "/admin/api/alerts"]
AUTH_ONLY = [
    "/v1/config",
    "/v1/client-config",
    "/v1/backend/project",
    "/v1/projects/prj_x/jwks.json",
    "/p/assets/hosted.css",
    "/p/prj_x/test/sign-in",
    "/openapi.json",
    "/schema",
]


@pytest.mark.parametrize("path", CONSOLE_ONLY)
def test_console_routes_answer_on_the_accounts_host_only(
    auth: httpx.Client, accounts: httpx.Client, path: str
) -> None:
    refused = auth.get(path)
    assert refused.status_code == 404 and _from_edge(refused), path
    reached = accounts.get(path)
    # The API answered: 401 without a session, 303 from a console page to its sign-in, 404 for no page.
    assert not _from_edge(reached), path
    assert reached.status_code in (303, 401, 404)


@pytest.mark.parametrize("path", AUTH_ONLY)
def test_api_routes_answer_on_the_auth_host_only(
    auth: httpx.Client, accounts: httpx.Client, path: str
) -> None:
    refused = accounts.get(path)
    assert refused.status_code == 404 and _from_edge(refused), path
    reached = auth.get(path)
    assert not _from_edge(reached), path


def test_health_answers_on_both_hosts_and_the_console_root_redirects(
    auth: httpx.Client, accounts: httpx.Client
) -> None:
    assert auth.get("/health").json()["status"] == "ok"
    assert accounts.get("/health").json()["status"] == "ok"
    root = accounts.get("/")
    assert (root.status_code, root.headers["location"]) == (302, "/console/")


@pytest.mark.parametrize(
    ("host", "path"),
    [
        (AUTH_HOST, "/v1/../console/api/me"),
        (AUTH_HOST, "/v1/%2e%2e/console/api/me"),
        (AUTH_HOST, "/CONSOLE/api/me"),
        (AUTH_HOST, "//console/api/me"),
        (ACCOUNTS_HOST, "/console/../v1/config"),
        (ACCOUNTS_HOST, "/V1/config"),
        (ACCOUNTS_HOST, "/metrics"),
    ],
)
def test_the_boundary_holds_for_tricky_paths(edge: Edge, host: str, path: str) -> None:
    """Sent raw (httpx would normalise dot segments): dot segments, case and doubled slashes get the
    edge's 404, never the other host's route."""
    port = edge.caddy.https_port
    context = edge.ssl_context()
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        tls.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode())
        answer = b""
        while chunk := tls.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode().lower().splitlines()
    assert lines[0].split()[1] == "404", lines
    assert not any(line.startswith("content-security-policy:") for line in lines), lines  # not the API
    assert "content-length: 0" in lines and body == b"", lines


# --- G39: a blocked source is refused at the edge -----------------------------------------------------


def _edge_cli(edge: Edge, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SILVER_AUTH), "edge", *args],
        env=edge.cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_g39_a_blocked_source_gets_403_on_both_hosts_until_unblocked(
    edge: Edge, auth: httpx.Client, accounts: httpx.Client
) -> None:
    blocked = _edge_cli(edge, "block", "127.0.0.1", "--reason", "e2e", "--reload")
    try:
        assert blocked.returncode == 0, blocked.stderr
        assert blocked.stdout.splitlines()[-1] == "edge reloaded"
        for client, path in ((auth, "/v1/config"), (accounts, "/console/api/me"), (auth, "/health")):
            response = client.get(path)
            assert response.status_code == 403, path
            assert _from_edge(response)
            _assert_edge_headers(response)
        listed = _edge_cli(edge, "blocklist", "--json")
        assert json.loads(listed.stdout)[0]["network"] == "127.0.0.1/32"
    finally:
        unblocked = _edge_cli(edge, "unblock", "127.0.0.1", "--reload")
    assert unblocked.returncode == 0, unblocked.stderr
    assert auth.get("/v1/config").status_code == 200
    assert accounts.get("/health").status_code == 200


# --- G4, G5: the API's own port is on loopback only ---------------------------------------------------


def _process_tree(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    tree, todo = set(), [pid]
    while todo:
        current = todo.pop()
        tree.add(current)
        todo.extend(children.get(current, []))
    return tree


def _listening(pids: set[int]) -> set[tuple[str, int]]:
    """(address, port) of every TCP socket in LISTEN that one of `pids` holds, from /proc."""
    inodes = set()
    for pid in pids:
        with os.scandir(f"/proc/{pid}/fd") as fds:
            for fd in fds:
                try:
                    target = os.readlink(fd.path)
                except OSError:
                    continue
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
    found = set()
    for table, width in (("/proc/net/tcp", 4), ("/proc/net/tcp6", 16)):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state != "0A" or inode not in inodes:  # 0A: LISTEN
                continue
            hex_address, hex_port = local.split(":")
            raw = bytes.fromhex(hex_address)
            # /proc prints each 32-bit word in host (little-endian) order
            ordered = b"".join(raw[i : i + 4][::-1] for i in range(0, width, 4))
            found.add((str(ipaddress.ip_address(ordered)), int(hex_port, 16)))
    return found


def test_g4_g5_the_api_listens_on_loopback_only(edge: Edge) -> None:
    assert edge.api.process is not None
    sockets = _listening(_process_tree(edge.api.process.pid))
    assert ("127.0.0.1", edge.api.port) in sockets
    metrics_port = int(edge.api.env["SILVER_METRICS_PORT"])
    assert ("127.0.0.1", metrics_port) in sockets
    assert all(ipaddress.ip_address(address).is_loopback for address, _ in sockets), sockets
    # Caddy, the only public face, listens on the HTTPS and HTTP ports (loopback in this test)
    assert edge.caddy.process is not None
    caddy_sockets = _listening(_process_tree(edge.caddy.process.pid))
    assert {edge.caddy.https_port, edge.caddy.http_port} <= {port for _, port in caddy_sockets}
    assert edge.api.port not in {port for _, port in caddy_sockets}
