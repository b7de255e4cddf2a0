"""The event types customers' backends receive, each with a sample payload (listed in /v1/config)."""

from __future__ import annotations

import enum
from typing import Any

PAYLOAD_VERSION = 1
"""Bumped when a payload changes incompatibly; every body carries it as `version`."""


class EventType(enum.StrEnum):
    USER_CREATED = "user.created"
    USER_UPDATED = "user.updated"
    USER_DELETED = "user.deleted"
    USER_BANNED = "user.banned"
    USER_UNBANNED = "user.unbanned"
    SESSION_CREATED = "session.created"
    SESSION_REVOKED = "session.revoked"
    ORG_MEMBER_ADDED = "org.member.added"
    ORG_MEMBER_REMOVED = "org.member.removed"
    ORG_MEMBER_ROLE_CHANGED = "org.member.role_changed"
    PROJECT_CREATED = "project.created"
    PROJECT_DELETED = "project.deleted"
    KEY_CREATED = "key.created"
    KEY_ROTATED = "key.rotated"
    KEY_REVOKED = "key.revoked"
    WEBHOOK_TEST = "webhook.test"


ORG_WIDE = frozenset(
    {
        EventType.ORG_MEMBER_ADDED,
        EventType.ORG_MEMBER_REMOVED,
        EventType.ORG_MEMBER_ROLE_CHANGED,
        EventType.PROJECT_CREATED,
        EventType.PROJECT_DELETED,
    }
)
"""Events about the org rather than one project environment: every endpoint of the org's projects."""

_USER = {
    "id": "usr_01jdz8k3m5q7r9t1v3w5x7y9z1",
    "project_id": "prj_01jdz8k3m5q7r9t1v3w5x7y9z2",
    "environment": "live",
    "email": "ada@example.com",
    "banned": False,
    "mfa_enabled": False,
    "created_at": "2026-12-01T12:00:00Z",
    "updated_at": "2026-12-01T12:00:00Z",
    "last_sign_in_at": None,
}
_SESSION = {
    "id": "sess_01jdz8k3m5q7r9t1v3w5x7y9z3",
    "user_id": _USER["id"],
    "project_id": _USER["project_id"],
    "environment": "live",
    "mfa": False,
    "created_at": "2026-12-01T12:00:00Z",
    "expires_at": "2026-12-08T12:00:00Z",
    "revoked_at": None,
}
_MEMBER = {
    "org_id": "org_01jdz8k3m5q7r9t1v3w5x7y9z4",
    "account_id": "acc_01jdz8k3m5q7r9t1v3w5x7y9z5",
    "email": "grace@example.com",
    "role": "developer",
}
_PROJECT = {
    "id": _USER["project_id"],
    "org_id": _MEMBER["org_id"],
    "name": "Web",
    "created_at": "2026-12-01T12:00:00Z",
}
_KEY = {
    "id": "key_01jdz8k3m5q7r9t1v3w5x7y9z6",
    "project_id": _USER["project_id"],
    "environment": "live",
    "kind": "secret",
    "prefix": "sk_live_Ab12Cd",
    "name": "backend",
    "status": "active",
    "created_at": "2026-12-01T12:00:00Z",
    "expires_at": None,
    "revoked_at": None,
}

SAMPLES: dict[EventType, dict[str, Any]] = {
    EventType.USER_CREATED: {**_USER, "via": "backend-api"},
    EventType.USER_UPDATED: {**_USER, "changed": ["email"]},
    EventType.USER_DELETED: {"id": _USER["id"], "project_id": _USER["project_id"], "environment": "live"},
    EventType.USER_BANNED: {**_USER, "banned": True, "sessions_revoked": 2},
    EventType.USER_UNBANNED: _USER,
    EventType.SESSION_CREATED: {**_SESSION, "via": "hosted-page"},
    EventType.SESSION_REVOKED: {**_SESSION, "revoked_at": "2026-12-01T13:00:00Z", "reason": "signed_out"},
    EventType.ORG_MEMBER_ADDED: {**_MEMBER, "via": "invitation"},
    EventType.ORG_MEMBER_REMOVED: _MEMBER,
    EventType.ORG_MEMBER_ROLE_CHANGED: {
        **{k: v for k, v in _MEMBER.items() if k != "role"},
        "changed_by": "acc_01jdz8k3m5q7r9t1v3w5x7y9z7",
        "old_role": "developer",
        "new_role": "admin",
    },
    EventType.PROJECT_CREATED: _PROJECT,
    EventType.PROJECT_DELETED: {"id": _PROJECT["id"], "org_id": _PROJECT["org_id"], "name": "Web"},
    EventType.KEY_CREATED: _KEY,
    EventType.KEY_ROTATED: {**_KEY, "id": "key_01jdz8k3m5q7r9t1v3w5x7y9z8", "replaces": _KEY["id"]},
    EventType.KEY_REVOKED: {**_KEY, "status": "revoked", "revoked_at": "2026-12-01T13:00:00Z"},
    EventType.WEBHOOK_TEST: {"endpoint_id": "whep_01jdz8k3m5q7r9t1v3w5x7y9z9", "message": "a test event"},
}

DESCRIPTIONS: dict[EventType, str] = {
    EventType.USER_CREATED: (
        "An end-user was created; `via` says how: `hosted-page` (sign-up), `backend-api`, `authentik` "
        "(first sign-in through Authentik)."
    ),
    EventType.USER_UPDATED: "An end-user's email or password changed; `changed` names what.",
    EventType.USER_DELETED: "An end-user was deleted, with their sessions and second factors.",
    EventType.USER_BANNED: "An end-user was banned; every session of theirs ended.",
    EventType.USER_UNBANNED: "A ban was lifted.",
    EventType.SESSION_CREATED: "An end-user signed in; `via`: `hosted-page` or `authentik`.",
    EventType.SESSION_REVOKED: (
        "An end-user session ended before its expiry; `reason` says why: `signed_out`, `revoked` (by "
        "the backend API), `banned`, `password_changed`, `code_reuse` or `refresh_token_reuse` (a "
        "one-time code or session token presented twice). Deleting a user sends `user.deleted` only."
    ),
    EventType.ORG_MEMBER_ADDED: (
        "A console account joined the org; `via`: `invitation` or `org-created` (its first owner)."
    ),
    EventType.ORG_MEMBER_REMOVED: "A console account left or was removed from the org.",
    EventType.ORG_MEMBER_ROLE_CHANGED: "A member's role changed: who changed it, the old and new role.",
    EventType.PROJECT_CREATED: "A project was created in the org.",
    EventType.PROJECT_DELETED: "A project was deleted with its users, keys and endpoints.",
    EventType.KEY_CREATED: "An API key was issued (only its display prefix is sent, G18).",
    EventType.KEY_ROTATED: "A key was replaced by a new one; the old one lasts for its grace period.",
    EventType.KEY_REVOKED: "A key was revoked and is refused from now on.",
    EventType.WEBHOOK_TEST: "Sent to one endpoint on request, to check the receiver.",
}


def catalogue() -> list[dict[str, Any]]:
    """Every type with its description and a sample body, as a receiver would get it."""
    return [
        {
            "type": str(kind),
            "description": DESCRIPTIONS[kind],
            "sample": {
                "type": str(kind),
                "version": PAYLOAD_VERSION,
                "timestamp": "2026-12-01T12:00:00Z",
                "data": SAMPLES[kind],
            },
        }
        for kind in EventType
    ]
