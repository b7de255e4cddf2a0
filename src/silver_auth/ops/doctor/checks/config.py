"""Configuration: the production guard's own rules, one function per line (G11-G13, G17, G21)."""

from __future__ import annotations

from silver_auth.core import production_guard as guard
from silver_auth.ops.doctor.context import Doctor
from silver_auth.ops.doctor.report import Finding, from_problems
from silver_auth.settings import Settings

LINES = ("G11", "G12", "G13", "G17", "G21")
GENERATE = "python3 -c 'import secrets; print(secrets.token_urlsafe(48))'"


async def check(doctor: Doctor) -> list[Finding]:
    settings = doctor.settings
    return [
        from_problems(
            "G11",
            "SESSION_COOKIE_SECURE",
            guard.cookie_secure_problems(settings),
            "unset SESSION_COOKIE_SECURE (true in production) or set it to true",
            "true: cookies are sent over https only",
        ),
        from_problems(
            "G12",
            "SESSION_COOKIE_SAMESITE",
            guard.samesite_problems(settings),
            "use Lax, or name the reviewed reason in SESSION_COOKIE_SAMESITE_OVERRIDE",
            f"{settings.session_cookie_samesite}"
            + (
                " (reviewed: SESSION_COOKIE_SAMESITE_OVERRIDE)"
                if settings.session_cookie_samesite != "Lax"
                else ""
            ),
        ),
        from_problems(
            "G13",
            "SESSION_SECRET length and randomness",
            guard.session_secret_problems(settings),
            f"generate one: {GENERATE} (rotating it signs everyone out: G14)",
            f"at least {guard.MIN_SESSION_SECRET} random characters",
        ),
        from_problems(
            "G17",
            "SILVER_KEY_PEPPER and SILVER_SEALING_KEYS",
            guard.server_key_problems(settings),
            "generate both once and keep them in the secret store (docs/operations.md)",
            "the pepper of stored key hashes and the sealing key ring are set",
        ),
        from_problems(
            "G21",
            "database passwords strong and unique",
            guard.database_password_problems(settings),
            "generate each one on its own: python3 -c 'import secrets; print(secrets.token_urlsafe(24))'",
            _passwords_seen(settings),
        ),
    ]


def _passwords_seen(settings: Settings) -> str:
    names = [
        name
        for name, value in (
            ("SILVER_POSTGRES_PASSWORD", settings.database_password),
            ("AUTHENTIK_PG_PASS", settings.authentik_pg_pass),
        )
        if value
    ]
    if not names:
        return "no database password in use (SQLite)" if settings.is_sqlite else "no password set"
    return " and ".join(names) + (" are strong and differ" if len(names) > 1 else " is strong")
