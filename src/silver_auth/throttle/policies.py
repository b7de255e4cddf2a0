"""Every failure limit, from settings: who a refused secret counts against, how many, for how long.

Password sign-in (console and end-users) counts a subject's failures from one IP (the tight limit: a
stranger guessing from elsewhere cannot lock the owner out), per IP (one source trying many subjects)
and per subject across IPs (distributed guessing). Second factors and re-authentication count per
owner and per IP (the owner already proved the password). Hosted sign-up counts every attempt per IP
and per project environment (the plan's end-user quota is not a rate limit). The email of a sign-in
is counted by a keyed hash (`Throttle.email_subject`): the subject column is short, and unknown emails
count the same way.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from silver_auth.settings import Settings
from silver_auth.throttle.service import Limit, per_pair_ip_and_subject, per_subject_and_ip

Kind = Literal["mfa", "reauth"]


def console_second_factor(settings: Settings, kind: Kind, account_id: str, ip: str | None) -> list[Limit]:
    """Console second-factor (`mfa`) or re-authentication (`reauth`) failures of an account."""
    return per_subject_and_ip(
        f"console_{kind}",
        ("account", account_id),
        ip,
        max_per_subject=settings.console_mfa_max_failures,
        max_per_ip=settings.console_mfa_ip_max_failures,
        window=timedelta(minutes=settings.console_mfa_failure_window_minutes),
    )


def console_sign_in(settings: Settings, subject: str, ip: str | None) -> list[Limit]:
    """Console password sign-in failures, `subject` being the email's `email_subject`."""
    return per_pair_ip_and_subject(
        "console_signin",
        subject,
        ip,
        max_per_pair=settings.console_sign_in_max_failures,
        max_per_ip=settings.console_sign_in_ip_max_failures,
        max_per_subject=settings.console_sign_in_email_max_failures,
        window=timedelta(minutes=settings.console_mfa_failure_window_minutes),
    )


def end_user_second_factor(settings: Settings, kind: Kind, user_id: str, ip: str | None) -> list[Limit]:
    """Second-factor (`mfa`) or re-authentication (`reauth`) failures of a signed-in end-user."""
    return per_subject_and_ip(
        f"enduser_{kind}",
        ("user", user_id),
        ip,
        max_per_subject=settings.end_user_mfa_max_failures,
        max_per_ip=settings.end_user_mfa_ip_max_failures,
        window=timedelta(minutes=settings.end_user_failure_window_minutes),
    )


def end_user_sign_in(
    settings: Settings, project_id: str, environment: str, subject: str, ip: str | None
) -> list[Limit]:
    """End-user password sign-in failures in one project environment (`subject`: `email_subject`)."""
    return per_pair_ip_and_subject(
        "enduser_signin",
        f"{project_id}:{environment}:{subject}",
        ip,
        max_per_pair=settings.end_user_sign_in_max_failures,
        max_per_ip=settings.end_user_sign_in_ip_max_failures,
        max_per_subject=settings.end_user_sign_in_email_max_failures,
        window=timedelta(minutes=settings.end_user_failure_window_minutes),
    )


def end_user_sign_up(settings: Settings, project_id: str, environment: str, ip: str | None) -> list[Limit]:
    """Every hosted sign-up attempt, per client IP and per project environment."""
    window = timedelta(minutes=settings.end_user_sign_up_window_minutes)
    limits = [
        Limit(
            "enduser_signup_project",
            f"{project_id}:{environment}",
            settings.end_user_sign_up_project_max,
            window,
        )
    ]
    if ip:
        limits.insert(0, Limit("enduser_signup_ip", ip, settings.end_user_sign_up_ip_max, window))
    return limits
