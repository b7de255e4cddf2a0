"""Every table, imported in one place so Alembic and the drift test see the whole schema."""

from silver_auth.accounts.models import Account, AccountGroup
from silver_auth.accounts.sessions import ConsoleSession
from silver_auth.audit.models import AuditChainHead, AuditEvent
from silver_auth.authentik.models import AuthentikApplication, OidcLogin
from silver_auth.db.base import Base
from silver_auth.endusers.models import EndUser, EndUserSession, RedirectCode, RetiredRefreshToken
from silver_auth.keys.models import ApiKey
from silver_auth.mfa.models import RecoveryCode, TotpFactor
from silver_auth.orgs.models import Invitation, Membership, Org
from silver_auth.projects.models import Project
from silver_auth.signing.models import SigningKey
from silver_auth.throttle.models import AuthFailure

__all__ = [
    "Account",
    "AccountGroup",
    "ApiKey",
    "AuditChainHead",
    "AuditEvent",
    "AuthFailure",
    "AuthentikApplication",
    "Base",
    "ConsoleSession",
    "EndUser",
    "EndUserSession",
    "Invitation",
    "Membership",
    "OidcLogin",
    "Org",
    "Project",
    "RecoveryCode",
    "RedirectCode",
    "RetiredRefreshToken",
    "SigningKey",
    "TotpFactor",
]
