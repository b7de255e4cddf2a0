"""The launch checks (L1), each a named probe of the live service over HTTP with an outcome and a
one-line reason: `health`, `config`, `client-config`, `backend-key` and `console-boundary`.

Nothing here raises: a connection refused, a TLS failure, a timeout or an answer that is not JSON is a
failed check with its reason. The canary secret key is sent only in `Authorization` and never enters a
reason: every reason is redacted, and the key's exact value scrubbed, before it leaves this module."""

from __future__ import annotations

import asyncio
import os
import re
import ssl
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx

from silver_auth import __version__
from silver_auth.core import clock
from silver_auth.core.redaction import REDACTED, SECRET_PATTERN, redact_text
from silver_auth.ops.files import permission_problem
from silver_auth.ops.monitor.target import MonitorTarget
from silver_auth.ops.probing import probe_client

Outcome = Literal["pass", "warn", "fail"]
CHECK_NAMES = ("health", "config", "client-config", "backend-key", "console-boundary")
PUBLIC_PLAN_NAMES = ("Free", "Pro", "Scale")  # L7
REFUSED = frozenset({401, 403, 404})
CONSOLE_PATHS = ("/console/api/me", "/console/api/orgs")
ADMIN_PATHS = ("/admin/api/orgs", "/admin/api/alerts")
REASON_LENGTH = 500
PROBLEMS_SHOWN = 5
SECRET_KEY = re.compile(r"sk_(?:live|test)_[A-Za-z0-9]{43}")
AUTHENTIK_TOKEN = re.compile(r"[A-Za-z0-9]{50,128}")
"""An Authentik API token is a bare random string of letters and digits (60 by default)."""


class CheckFailed(Exception):
    """Ends a check as failed; the message is its reason."""


class Unreachable(CheckFailed):
    """No answer from the service at all: refused, timed out, TLS not trusted."""

    def __init__(self, url: str, why: str) -> None:
        super().__init__(f"GET {url}: {why}")
        parts = httpx.URL(url)
        self.origin = f"{parts.scheme}://{parts.netloc.decode()}"
        self.why = why


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    outcome: Outcome
    reason: str
    duration_ms: int


def secret_shaped_paths(value: Any, known: Iterable[str] = (), path: str = "$") -> list[str]:
    """Where in a JSON document a secret-shaped value sits (its path, never the value): anything the
    redaction patterns catch (`sk_…`, `whsec_…`, bearer tokens, JWTs, URL credentials), a bare string
    shaped like an Authentik token, or one of the `known` secrets."""
    secrets = [secret for secret in known if secret]
    if isinstance(value, dict):
        found = []
        for name, item in value.items():
            shaped = _secret_shaped(str(name), secrets)
            if shaped:
                found.append(f"{path} (a key)")
            found += secret_shaped_paths(item, secrets, f"{path}.{REDACTED if shaped else name}")
        return found
    if isinstance(value, list):
        return [
            hit
            for index, item in enumerate(value)
            for hit in secret_shaped_paths(item, secrets, f"{path}[{index}]")
        ]
    if isinstance(value, str) and _secret_shaped(value, secrets):
        return [path]
    return []


def _secret_shaped(text: str, secrets: list[str]) -> bool:
    if SECRET_PATTERN.search(text) or any(secret in text for secret in secrets):
        return True
    # Mixed case and digits: a long word, a hex digest or a base32 id is not a token.
    return AUTHENTIK_TOKEN.fullmatch(text) is not None and all(
        any(test(char) for char in text) for test in (str.islower, str.isupper, str.isdigit)
    )


@dataclass(frozen=True, slots=True)
class SecretKeyFile:
    """The canary secret key as read from its file: the key, or why there is none."""

    key: str | None = field(repr=False)
    problem: str | None = None
    warning: str | None = None


def read_secret_key(path: Path | None) -> SecretKeyFile:
    if path is None:
        return SecretKeyFile(
            None, "no canary secret key: set SILVER_MONITOR_SECRET_KEY_FILE or --secret-key-file"
        )
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return SecretKeyFile(None, f"the secret key file {path} does not exist")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        return SecretKeyFile(None, f"the secret key file {path} cannot be read: {why}")
    if not SECRET_KEY.fullmatch(text):  # its content is never repeated, whatever it is
        return SecretKeyFile(None, f"the secret key file {path} does not hold one sk_live_… or sk_test_… key")
    return SecretKeyFile(text, warning=permission_problem(path))  # G23: a secret closed to others


@dataclass(slots=True)
class _Probe:
    """One run's HTTP client, the secret to scrub, and the public answers read (scanned for secrets)."""

    target: MonitorTarget
    client: httpx.AsyncClient
    secret_key: str | None
    timeout: float
    public_bodies: dict[str, Any] = field(default_factory=dict)

    async def get(self, url: str, *, headers: dict[str, str] | None = None) -> httpx.Response:
        try:
            return await self.client.get(url, headers=headers)
        except httpx.TimeoutException:
            raise Unreachable(url, f"no answer within {self.timeout:g}s") from None
        except httpx.HTTPError as exc:
            raise Unreachable(url, transport_reason(exc)) from None

    def backend_headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.secret_key}"} if self.secret_key else {}

    def clean(self, text: str) -> str:
        text = redact_text(" ".join(text.split()))
        if self.secret_key:
            text = text.replace(self.secret_key, REDACTED)
        return text[:REASON_LENGTH]


def transport_reason(exc: BaseException) -> str:
    """Why a request got no answer, in a few words: the OS's or TLS's reason when there is one."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return f"TLS certificate not trusted ({seen.verify_message}); for a private CA pass --ca-file"
        if isinstance(seen, ssl.SSLError):
            return f"TLS failed: {seen.reason or type(seen).__name__}"
        if isinstance(seen, OSError) and (seen.errno or seen.strerror):
            why = os.strerror(seen.errno) if seen.errno else str(seen.strerror)
            return f"cannot connect: {why.lower()}"
        seen = seen.__cause__ or seen.__context__
    text = str(exc).strip()
    return f"cannot connect: {text.splitlines()[0] if text else type(exc).__name__}"


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise CheckFailed(
            f"GET {response.request.url}: answered {response.status_code} but not JSON "
            f"({response.headers.get('content-type', 'no content type')})"
        ) from None


def _status(response: httpx.Response) -> str:
    return f"GET {response.request.url.path} answered {response.status_code}"


async def _health(probe: _Probe) -> tuple[Outcome, str]:
    response = await probe.get(probe.target.url("/health"))
    if response.status_code not in (200, 503):  # an edge's 502 page, a redirect: not the service's answer
        raise CheckFailed(_status(response))
    body = _json(response)
    probe.public_bodies["/health"] = body
    status = body.get("status") if isinstance(body, dict) else None
    checks = body.get("checks") if isinstance(body, dict) else None
    detail = (
        ", ".join(f"{name} {value}" for name, value in checks.items()) if isinstance(checks, dict) else ""
    )
    if response.status_code == 200 and status == "ok":
        return "pass", f"ok ({detail})" if detail else "ok"
    if response.status_code == 200 and status == "degraded":
        # The limiter's fallback still limits, per process: serving, with a warning (its own alert).
        return "warn", f"degraded but serving ({detail})"
    raise CheckFailed(f"{_status(response)}, status {status!r}" + (f" ({detail})" if detail else ""))


async def _config(probe: _Probe) -> tuple[Outcome, str]:
    response = await probe.get(probe.target.url("/v1/config"))
    if response.status_code != 200:
        raise CheckFailed(_status(response))
    body = _json(response)
    probe.public_bodies["/v1/config"] = body
    plans = body.get("plans") if isinstance(body, dict) else None
    if not isinstance(plans, list):
        raise CheckFailed("GET /v1/config has no plans list")
    names = [plan.get("name") if isinstance(plan, dict) else None for plan in plans]
    if sorted(map(str, names)) != sorted(PUBLIC_PLAN_NAMES):
        raise CheckFailed(
            f"the public plans are {', '.join(map(str, names)) or 'none'}; "
            f"L7 wants {', '.join(PUBLIC_PLAN_NAMES)}"
        )
    return "pass", f"plans {', '.join(PUBLIC_PLAN_NAMES)}; version {body.get('version', '?')}"


def _project(body: Any) -> tuple[str, str]:
    project = body.get("project") if isinstance(body, dict) else None
    if not isinstance(project, dict) or not project.get("id"):
        raise CheckFailed("the answer names no project")
    return str(project["id"]), str(project.get("name", ""))


async def _client_config(probe: _Probe) -> tuple[Outcome, str]:
    key = probe.target.publishable_key
    if not key:
        raise CheckFailed("no publishable key: set SILVER_MONITOR_PUBLISHABLE_KEY or --publishable-key")
    response = await probe.get(probe.target.url("/v1/client-config"), headers={"x-publishable-key": key})
    if response.status_code == 404:
        raise CheckFailed(
            f"{_status(response)}: no project for the publishable key (revoked, or of another deployment)"
        )
    if response.status_code != 200:
        raise CheckFailed(_status(response))
    body = _json(response)
    probe.public_bodies["/v1/client-config"] = body
    project_id, name = _project(body)
    environment = body.get("environment", "?")
    return "pass", f"project {project_id} ({name}), environment {environment}"


async def _backend_key(probe: _Probe, key_file: SecretKeyFile) -> tuple[Outcome, str]:
    if key_file.key is None:
        raise CheckFailed(key_file.problem or "no canary secret key")
    response = await probe.get(probe.target.url("/v1/backend/project"), headers=probe.backend_headers())
    if response.status_code == 401:
        raise CheckFailed(
            f"{_status(response)}: the canary key was refused (revoked, expired, or of another deployment)"
        )
    if response.status_code != 200:
        raise CheckFailed(_status(response))
    body = _json(response)
    project_id, _ = _project(body)
    key = body.get("key") if isinstance(body, dict) else None
    key_id = key.get("id") if isinstance(key, dict) else None
    reason = f"project {project_id}, environment {body.get('environment', '?')}, key {key_id or '?'}"
    if key_file.warning:
        return "warn", f"{reason}; but {key_file.warning}"
    return "pass", reason


async def _refused(probe: _Probe, url: str, who: str, headers: dict[str, str]) -> str | None:
    """None when the route is refused; else what is wrong."""
    try:
        response = await probe.get(url, headers=headers)
    except Unreachable as exc:  # the same reason for every probe of a host: said once, below
        return f"{exc.origin}: {exc.why}"
    if response.status_code in REFUSED:
        return None
    return f"GET {url} {who} answered {response.status_code} (must be refused: 401, 403 or 404)"


async def _console_boundary(probe: _Probe) -> tuple[Outcome, str]:
    target = probe.target
    console_host = target.console_url
    probes: list[Awaitable[str | None]] = []
    callers: list[tuple[str, dict[str, str]]] = [("anonymously", {})]
    if probe.secret_key:
        callers.append(("with the backend key", probe.backend_headers()))
    hosts = [console_host] if console_host == target.base_url else [console_host, target.base_url]
    for host in hosts:
        for path in (*CONSOLE_PATHS, *ADMIN_PATHS):
            for who, headers in callers:
                probes.append(_refused(probe, f"{host}{path}", who, headers))
    metrics = await asyncio.gather(*(probe.get(f"{host}/metrics") for host in hosts), return_exceptions=True)
    problems = [problem for problem in await asyncio.gather(*probes) if problem]
    for host, answer in zip(hosts, metrics, strict=True):
        if isinstance(answer, Unreachable):
            problems.append(f"{answer.origin}: {answer.why}")
        elif isinstance(answer, BaseException):
            problems.append(str(answer))
        elif answer.status_code != 404:
            problems.append(
                f"GET {host}/metrics answered {answer.status_code} (metrics stay off the edge: 404)"
            )
    scanned = []
    for path, body in probe.public_bodies.items():
        scanned.append(path)
        problems += [
            f"{path} holds a secret-shaped value at {where}"
            for where in secret_shaped_paths(body, [probe.secret_key or ""])
        ]
    if problems:
        problems = list(dict.fromkeys(problems))  # one line per distinct problem, in order
        more = f" (and {len(problems) - PROBLEMS_SHOWN} more)" if len(problems) > PROBLEMS_SHOWN else ""
        raise CheckFailed("; ".join(problems[:PROBLEMS_SHOWN]) + more)
    unread = [path for path in ("/v1/config", "/v1/client-config") if path not in scanned]
    note = f"; not scanned (unread): {', '.join(unread)}" if unread else ""
    return "pass", (
        f"{len(probes)} console and admin probes refused, /metrics 404, no secret-shaped value in "
        f"{', '.join(scanned) or 'nothing read'}{note}"
    )


async def _timed(
    name: str, probe: _Probe, check: Callable[[], Awaitable[tuple[Outcome, str]]]
) -> CheckResult:
    started = clock.monotonic()
    try:
        outcome, reason = await check()
    except CheckFailed as exc:
        outcome, reason = "fail", str(exc)
    except Exception as exc:  # a check never raises: an unforeseen failure is its reason, in one line
        text = str(exc).strip()
        outcome, reason = "fail", f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"
    return CheckResult(name, outcome, probe.clean(reason), int((clock.monotonic() - started) * 1000))


async def run_checks(
    target: MonitorTarget, *, timeout_seconds: float, verify: ssl.SSLContext
) -> list[CheckResult]:
    """Every launch check against `target`, in CHECK_NAMES order. The four reads run at once; the console
    boundary runs after them, to scan what they read."""
    key_file = read_secret_key(target.secret_key_file)
    # No redirect is followed: a redirect to a sign-in page is not a refusal worth trusting blindly.
    async with probe_client(
        verify=verify,
        timeout=timeout_seconds,
        pins=target.pins,
        headers={"user-agent": f"silver-auth-monitor/{__version__}"},
    ) as client:
        probe = _Probe(target, client, key_file.key, timeout_seconds)
        first = await asyncio.gather(
            _timed("health", probe, lambda: _health(probe)),
            _timed("config", probe, lambda: _config(probe)),
            _timed("client-config", probe, lambda: _client_config(probe)),
            _timed("backend-key", probe, lambda: _backend_key(probe, key_file)),
        )
        boundary = await _timed("console-boundary", probe, lambda: _console_boundary(probe))
    return [*first, boundary]
