"""The production guard: settings that break the hardening guide stop the service before it starts."""

from __future__ import annotations

import ipaddress
import itertools
import math
import re
from collections import Counter

from silver_auth.core.logging import quiet_apprise
from silver_auth.settings import Settings

PLACEHOLDER_WORDS = ("changeme", "change-me", "change_me", "secret", "password", "example", "default")
PLACEHOLDER_FILL = ("xxxx", "XXXX")  # case-sensitive: random base64 holds `XxxX` about once in 25,000
MIN_SESSION_SECRET = 32
MIN_DB_PASSWORD = 16
# Generated values must pass: 32 hex characters (`openssl rand -hex 16`) or 16 alphanumerics carry
# as little as ~2.9 bits of letter entropy and 8 distinct characters, so the bars sit below that.
MIN_DISTINCT = 8
MIN_ENTROPY_BITS = 2.5


def looks_random(value: str) -> bool:
    """Reject values a person typed: placeholders, tiny alphabets, repeated units, low entropy."""
    lowered = value.lower()
    if any(word in lowered for word in PLACEHOLDER_WORDS) or any(f in value for f in PLACEHOLDER_FILL):
        return False
    if len(set(value)) < min(MIN_DISTINCT, len(value) // 2):
        return False
    for size in range(1, len(value) // 2 + 1):
        if len(value) % size == 0 and value[:size] * (len(value) // size) == value:
            return False
    steps = [ord(b) - ord(a) for a, b in itertools.pairwise(value)]
    if steps and sum(abs(step) == 1 for step in steps) * 2 >= len(steps):  # abcdef…, 123456…
        return False
    counts = Counter(value)
    entropy = -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())
    return entropy >= MIN_ENTROPY_BITS


def is_private_bind(host: str) -> bool:
    """A loopback or private address (a Docker network's): not every interface, not a public one."""
    if host in ("localhost",):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False  # a hostname can resolve anywhere: name an address
    if address.is_unspecified:  # 0.0.0.0 and :: listen on every interface, public ones included
        return False
    return address.is_loopback or address.is_private


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a hostname can resolve anywhere: name an address


# One function per guide line, each answering that line's problems ("G11: …"), whatever SILVER_ENV
# says: the guard asks them in production, `silver-auth doctor` everywhere.


def public_url_problems(settings: Settings) -> list[str]:
    """G1: both public URLs are https."""
    problems = []
    for name, url in (("SILVER_ACCOUNTS_URL", settings.accounts_url), ("SILVER_AUTH_URL", settings.auth_url)):
        if not url:
            problems.append(f"G1: {name} must be set in production (the public https:// URL)")
        elif not url.startswith("https://"):
            problems.append(f"G1: {name} must be an https:// URL in production (is {url!r})")
    return problems


def bind_problems(settings: Settings) -> list[str]:
    """G5: the API binds a loopback or private address, the metrics listener loopback only."""
    problems = []
    if not is_private_bind(settings.bind_host):
        problems.append(
            f"G5: SILVER_BIND_HOST={settings.bind_host} is not a loopback or private address; "
            "expose the API only through Caddy"
        )
    if settings.metrics_enabled and not is_loopback(settings.metrics_host):
        problems.append(
            f"G5: SILVER_METRICS_HOST={settings.metrics_host} is not a loopback address; the metrics "
            "listener is for a scraper on this host only (or set SILVER_METRICS_PORT=0)"
        )
    return problems


def cookie_secure_problems(settings: Settings) -> list[str]:
    """G11."""
    return [] if settings.cookie_secure else ["G11: SESSION_COOKIE_SECURE must be true in production"]


def samesite_problems(settings: Settings) -> list[str]:
    """G12: Lax, or another value with its reviewed reason."""
    if settings.session_cookie_samesite != "Lax" and not (settings.samesite_override or "").strip():
        return [
            f"G12: SESSION_COOKIE_SAMESITE={settings.session_cookie_samesite} needs a reviewed reason "
            "in SESSION_COOKIE_SAMESITE_OVERRIDE (or use Lax)"
        ]
    return []


def session_secret_problems(settings: Settings) -> list[str]:
    """G13: at least 32 characters that look random."""
    secret = settings.session_secret.get_secret_value() if settings.session_secret else ""
    if len(secret) < MIN_SESSION_SECRET:
        return [f"G13: SESSION_SECRET must be at least {MIN_SESSION_SECRET} random characters"]
    if not looks_random(secret):
        return ["G13: SESSION_SECRET looks typed by hand or patterned; generate a random one"]
    return []


def server_key_problems(settings: Settings) -> list[str]:
    """G17: the pepper of the stored hashes and the sealing key ring."""
    problems = []
    pepper = settings.key_pepper.get_secret_value() if settings.key_pepper else ""
    if len(pepper) < MIN_SESSION_SECRET or not looks_random(pepper):
        problems.append("G17: SILVER_KEY_PEPPER must be set to at least 32 random characters")
    try:
        ring = settings.sealing_key_ring()
    except ValueError:
        ring = []
    if not ring or any(len(key) != 32 for _, key in ring):
        problems.append("G17: SILVER_SEALING_KEYS must hold at least one `kid:base64(32 bytes)` key")
    return problems


def database_engine_problems(settings: Settings) -> list[str]:
    """G20, G22: production runs Postgres (private ports, pg_dump backups), never SQLite."""
    if settings.is_sqlite:
        return ["G20/G22: production needs Postgres (SILVER_POSTGRES_* or DATABASE_URL), not SQLite"]
    return []


def limiter_problems(settings: Settings) -> list[str]:
    """G35."""
    if not settings.rate_limit_enabled:
        return ["G35: SILVER_RATE_LIMIT_ENABLED=false: the app limiter stays on in production"]
    return []


def production_violations(settings: Settings) -> list[str]:
    """One line per violated guide line; empty when the settings are fit for production."""
    if not settings.is_production:
        return []
    rules = (
        public_url_problems,
        bind_problems,
        cookie_secure_problems,
        samesite_problems,
        session_secret_problems,
        server_key_problems,
        database_engine_problems,
        limiter_problems,
        database_password_problems,
        authentik_problems,
        alert_channel_violations,
    )
    return [problem for rule in rules for problem in rule(settings)]


def authentik_problems(settings: Settings) -> list[str]:
    """With Authentik as the identity engine: its API and the console's OIDC client, over https (G8, G10)."""
    if settings.identity != "authentik":
        return []
    problems = []
    for name, url in (
        ("SILVER_AUTHENTIK_URL", settings.authentik_url),
        ("SILVER_CONSOLE_OIDC_ISSUER", settings.console_oidc_issuer),
    ):
        if not url:
            problems.append(f"G8: {name} is required with SILVER_IDENTITY=authentik")
        elif not url.startswith("https://"):
            problems.append(f"G8: {name} must be an https:// URL in production (is {url!r})")
    if settings.authentik_token is None or not settings.authentik_token.get_secret_value().strip():
        problems.append("G8: SILVER_AUTHENTIK_TOKEN (the least-privilege provisioning token) is not set")
    if not settings.console_oidc_client_id:
        problems.append("G10: SILVER_CONSOLE_OIDC_CLIENT_ID is not set")
    secret = settings.console_oidc_client_secret
    if secret is None or not secret.get_secret_value().strip():
        problems.append("G10: SILVER_CONSOLE_OIDC_CLIENT_SECRET is not set (it stays server-side)")
    if not settings.authentik_verify_tls:
        problems.append("G8: SILVER_AUTHENTIK_VERIFY_TLS must stay true in production")
    return problems


EMAIL_SCHEMES = frozenset(
    {"mailto", "mailtos", "o365", "azure", "brevo", "groundmail", "mailersend", "mailgun", "postmark"}
    | {"resend", "sendgrid", "ses", "smtp2go", "sparkpost"}
)
"""apprise's email services (L2 asks for a channel that is not email)."""
SCHEME = re.compile(r"[a-z][a-z0-9+.-]{0,30}")


def alert_channel_violations(settings: Settings) -> list[str]:
    """L2: alerts reach an attended, non-email channel, each URL one apprise can send to."""
    urls = settings.alert_channel_urls()
    if not urls:
        return [
            "L2: SILVER_ALERT_URLS is not set: production needs an attended, non-email alert channel "
            "(apprise URLs: Slack, Mattermost, ntfy, Matrix, PagerDuty, json://…)"
        ]
    import apprise  # noqa: PLC0415 - about 0.4 s to import: production start-up only

    quiet_apprise()
    problems = []
    for index, url in enumerate(urls, start=1):
        # The scheme alone names the entry: the rest of an apprise URL is its tokens (G28).
        scheme = url.partition("://")[0].lower() if "://" in url else "?"
        scheme = scheme if SCHEME.fullmatch(scheme) else "?"
        if scheme in EMAIL_SCHEMES:
            problems.append(
                f"L2: SILVER_ALERT_URLS entry {index} ({scheme}://) is email; alerts need a non-email channel"
            )
        elif apprise.Apprise.instantiate(url) is None:
            problems.append(
                f"L2: SILVER_ALERT_URLS entry {index} ({scheme}://) is not a URL apprise can send to"
            )
    return problems


def database_password_problems(settings: Settings) -> list[str]:
    """G21: both database passwords strong, and different."""
    problems = []
    silver = settings.database_password
    authentik = settings.authentik_pg_pass.get_secret_value() if settings.authentik_pg_pass else None
    for name, value in (("SILVER_POSTGRES_PASSWORD", silver), ("AUTHENTIK_PG_PASS", authentik)):
        if value is None:
            if name == "SILVER_POSTGRES_PASSWORD" and not settings.is_sqlite:
                problems.append(f"G21: {name} is not set")
            continue
        if len(value) < MIN_DB_PASSWORD or not looks_random(value):
            problems.append(f"G21: {name} is weak: use at least {MIN_DB_PASSWORD} random characters")
    if silver is not None and authentik is not None and silver == authentik:
        problems.append("G21: SILVER_POSTGRES_PASSWORD equals AUTHENTIK_PG_PASS; each database needs its own")
    return problems
