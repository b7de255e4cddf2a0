"""The end-user failure and sign-up limits (identity/throttle.py), one place for their numbers.

Sign-in: the hard limit counts an email's failures from one IP, so guessing from
elsewhere cannot lock the real user out; a per-IP limit stops one source trying many emails; a larger
per-email limit across IPs bounds distributed guessing. Second factors and re-authentication count
per user and per IP (the user already proved the password). Hosted sign-up counts every attempt per
IP and per project environment (the plan's end-user quota is not a rate limit).
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from silver_auth.core.crypto import keyed_hash
from silver_auth.settings import Settings
from silver_auth.throttle import service as throttle
from silver_auth.throttle.service import Limit

if TYPE_CHECKING:
    from silver_auth.endusers.service import ProjectEnvironment

WINDOW = timedelta(minutes=15)
SIGN_IN_PER_EMAIL_AND_IP, SIGN_IN_PER_IP, SIGN_IN_PER_EMAIL = 10, 50, 100
MFA_PER_USER, MFA_PER_IP = 5, 30


def per_user(kind: str, user_id: str, ip: str | None) -> list[Limit]:
    """Second-factor (`mfa`) or re-authentication (`reauth`) failures of a signed-in end-user."""
    return throttle.per_subject_and_ip(
        f"enduser_{kind}",
        ("user", user_id),
        ip,
        max_per_subject=MFA_PER_USER,
        max_per_ip=MFA_PER_IP,
        window=WINDOW,
    )


def sign_in(scope: ProjectEnvironment, email: str, ip: str | None, pepper: bytes) -> list[Limit]:
    # The email is hashed: the subject column is short, and unknown emails must count the same way.
    subject = f"{scope.project_id}:{scope.environment}:{keyed_hash(pepper, email)[:32]}"
    return throttle.per_pair_ip_and_subject(
        "enduser_signin",
        subject,
        ip,
        max_per_pair=SIGN_IN_PER_EMAIL_AND_IP,
        max_per_ip=SIGN_IN_PER_IP,
        max_per_subject=SIGN_IN_PER_EMAIL,
        window=WINDOW,
    )


def sign_up(settings: Settings, scope: ProjectEnvironment, ip: str | None) -> list[Limit]:
    window = timedelta(minutes=settings.end_user_sign_up_window_minutes)
    project = f"{scope.project_id}:{scope.environment}"
    limits = [Limit("enduser_signup_project", project, settings.end_user_sign_up_project_max, window)]
    if ip:
        limits.insert(0, Limit("enduser_signup_ip", ip, settings.end_user_sign_up_ip_max, window))
    return limits
