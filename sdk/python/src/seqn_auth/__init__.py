"""SEQN Auth for Python: offline token verification, the backend API, webhooks, framework helpers."""

from seqn_auth.client import AsyncSeqnClient, SeqnClient
from seqn_auth.errors import (
    AuthenticationError,
    BadRequestError,
    ConflictError,
    InvalidGrantError,
    JWKSUnavailableError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    SeqnConnectionError,
    SeqnError,
    ServerError,
    ServiceUnavailableError,
    TokenVerificationError,
    ValidationError,
    WebhookVerificationError,
)
from seqn_auth.hosted import hosted_url, new_pkce, new_state, sign_in_url, sign_up_url
from seqn_auth.models import ClientSession, Event, EventPage, Project, Session, SessionVerdict, User, UserPage
from seqn_auth.verify import AccessTokenClaims, AsyncTokenVerifier, SessionClaims, TokenVerifier
from seqn_auth.webhooks import WebhookVerifier

__version__ = "0.1.0"

__all__ = [
    "AccessTokenClaims",
    "AsyncSeqnClient",
    "AsyncTokenVerifier",
    "AuthenticationError",
    "BadRequestError",
    "ClientSession",
    "ConflictError",
    "Event",
    "EventPage",
    "InvalidGrantError",
    "JWKSUnavailableError",
    "NotFoundError",
    "PermissionDeniedError",
    "Project",
    "RateLimitedError",
    "SeqnClient",
    "SeqnConnectionError",
    "SeqnError",
    "ServerError",
    "ServiceUnavailableError",
    "Session",
    "SessionClaims",
    "SessionVerdict",
    "TokenVerificationError",
    "TokenVerifier",
    "User",
    "UserPage",
    "ValidationError",
    "WebhookVerificationError",
    "WebhookVerifier",
    "hosted_url",
    "new_pkce",
    "new_state",
    "sign_in_url",
    "sign_up_url",
]
