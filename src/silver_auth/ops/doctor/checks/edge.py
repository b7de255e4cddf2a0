"""The live edge (G1-G3), asked over the network as a browser would: the public URLs answer over HTTPS
with a certificate that verifies, plain http redirects to https, and every answer carries HSTS with
includeSubDomains, nosniff and the Referrer-Policy. Without --url nothing is asked, and these lines say
so as warnings: configuration alone does not show what the edge serves."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx

from silver_auth.core import production_guard as guard
from silver_auth.ops.doctor.context import Doctor, one_line
from silver_auth.ops.doctor.report import Finding, failed, from_problems, passed, warned

LINES = ("G1", "G2", "G3")
REFERRER_POLICY = "strict-origin-when-cross-origin"
MAX_AGE = re.compile(r"max-age\s*=\s*\"?(\d+)\"?", re.IGNORECASE)
NOT_CHECKED = "not checked: pass --url https://auth… (and --accounts-url https://accounts…)"
CADDY_FIX = "serve the hosts through deploy/Caddyfile (docs/deployment.md#the-caddy-setup)"


@dataclass
class HostReport:
    url: str
    https_error: str | None = None
    headers: httpx.Headers = field(default_factory=httpx.Headers)
    plain_http: str | None = None
    """Why plain http is wrong (it serves content, or redirects elsewhere than https); None when fine."""
    plain_http_note: str = ""


async def check(doctor: Doctor) -> list[Finding]:
    configured = guard.public_url_problems(doctor.settings)
    targets = [
        (name, url)
        for name, url in (("auth", doctor.options.url), ("accounts", doctor.options.accounts_url))
        if url
    ]
    if not targets:
        g1 = from_problems("G1", "the public URLs", configured, CADDY_FIX)
        if g1.status == "pass":
            g1 = warned("G1", "HTTPS only, plain http redirected", NOT_CHECKED)
        return [
            g1,
            warned("G2", "Strict-Transport-Security with includeSubDomains", NOT_CHECKED),
            warned("G3", "nosniff and Referrer-Policy", NOT_CHECKED),
        ]
    hosts = [await _probe(doctor, url) for _, url in targets]
    missing = [name for name in ("auth", "accounts") if name not in {n for n, _ in targets}]
    return [_g1(hosts, configured, missing), _g2(hosts), _g3(hosts)]


async def _probe(doctor: Doctor, url: str) -> HostReport:
    report = HostReport(url)
    try:
        answer = await doctor.http.get(url)
        report.headers = answer.headers
    except httpx.HTTPError as exc:
        report.https_error = one_line(exc)
    parts = urlsplit(url)
    host = parts.hostname or ""
    shown_host = f"[{host}]" if ":" in host else host
    port = doctor.options.http_port
    plain = f"http://{shown_host}{'' if port == 80 else f':{port}'}{parts.path or '/'}"
    try:
        answer = await doctor.http.get(plain)
    except httpx.ConnectError:
        report.plain_http_note = f"{plain} refuses connections"
        return report
    except httpx.HTTPError as exc:
        report.plain_http_note = f"{plain}: {one_line(exc)}"
        return report
    location = answer.headers.get("location", "")
    if answer.is_redirect and location.startswith("https://"):
        report.plain_http_note = f"{plain} redirects to https"
    elif answer.is_redirect:
        report.plain_http = f"{plain} redirects to {location or 'nowhere'}, not to https"
    else:
        report.plain_http = f"{plain} serves content ({answer.status_code}) instead of redirecting to https"
    return report


def _g1(hosts: list[HostReport], configured: list[str], missing: list[str]) -> Finding:
    check = "HTTPS answers, plain http redirected"
    problems = [
        f"{host.url} did not answer over HTTPS: {host.https_error}" for host in hosts if host.https_error
    ]
    problems += [host.plain_http for host in hosts if host.plain_http]
    problems += [guard_problem.partition(": ")[2] for guard_problem in configured]
    if problems:
        return failed("G1", check, "; ".join(problems), CADDY_FIX)
    seen = "; ".join(f"{host.url} answers over HTTPS, {host.plain_http_note}" for host in hosts)
    if missing:
        return warned("G1", check, f"{seen}; the {' and '.join(missing)} host not checked", NOT_CHECKED)
    return passed("G1", check, seen)


def _answered(hosts: list[HostReport]) -> list[HostReport]:
    return [host for host in hosts if host.https_error is None]


def _g2(hosts: list[HostReport]) -> Finding:
    check = "Strict-Transport-Security with includeSubDomains"
    answered = _answered(hosts)
    if not answered:
        return warned("G2", check, "not checked: no HTTPS answer (G1)")
    problems = []
    for host in answered:
        value = host.headers.get("strict-transport-security")
        if value is None:
            problems.append(f"{host.url} sends no Strict-Transport-Security")
            continue
        age = MAX_AGE.search(value)
        if age is None or int(age.group(1)) == 0:
            problems.append(f"{host.url} sends Strict-Transport-Security without a max-age ({value!r})")
        if "includesubdomains" not in value.lower().replace(" ", ""):
            problems.append(
                f"{host.url} sends Strict-Transport-Security without includeSubDomains ({value!r})"
            )
    if problems:
        return failed(
            "G2",
            check,
            "; ".join(problems),
            'header Strict-Transport-Security "max-age=31536000; includeSubDomains" in the Caddyfile',
        )
    return passed(
        "G2", check, "; ".join(f"{h.url}: {h.headers['strict-transport-security']}" for h in answered)
    )


def _g3(hosts: list[HostReport]) -> Finding:
    check = "X-Content-Type-Options: nosniff, Referrer-Policy: strict-origin-when-cross-origin"
    answered = _answered(hosts)
    if not answered:
        return warned("G3", check, "not checked: no HTTPS answer (G1)")
    problems = []
    for host in answered:
        # Fetch reads the first value of X-Content-Type-Options (a proxy and the app may both send it).
        nosniff = host.headers.get("x-content-type-options", "")
        if nosniff.split(",")[0].strip().lower() != "nosniff":
            problems.append(f"{host.url} sends X-Content-Type-Options {nosniff or 'not at all'}")
        # A browser applies the last policy it knows in a comma-separated list.
        policies = [
            p.strip().lower() for p in host.headers.get("referrer-policy", "").split(",") if p.strip()
        ]
        if not policies or policies[-1] != REFERRER_POLICY:
            problems.append(f"{host.url} sends Referrer-Policy {', '.join(policies) or 'not at all'}")
    if problems:
        return failed(
            "G3",
            check,
            "; ".join(problems),
            "header X-Content-Type-Options nosniff and Referrer-Policy strict-origin-when-cross-origin "
            "in the Caddyfile",
        )
    return passed("G3", check, "both headers on " + ", ".join(host.url for host in answered))
