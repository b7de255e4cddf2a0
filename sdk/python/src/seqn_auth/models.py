"""Typed answers of the backend and client APIs (plain frozen dataclasses)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


def _time(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError(f"expected an RFC 3339 time, got {value!r}")
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _optional_time(value: Any) -> datetime | None:
    return None if value is None else _time(value)


@dataclass(frozen=True, slots=True)
class Project:
    """What `GET /v1/backend/project` says of the secret key: its project, environment and key."""

    id: str
    name: str
    org_id: str
    environment: str
    key_id: str
    key_prefix: str
    key_expires_at: datetime | None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Project:
        project, key = data["project"], data["key"]
        return cls(
            id=project["id"],
            name=project["name"],
            org_id=project["org_id"],
            environment=data["environment"],
            key_id=key["id"],
            key_prefix=key["prefix"],
            key_expires_at=_optional_time(key.get("expires_at")),
        )


@dataclass(frozen=True, slots=True)
class User:
    id: str
    project_id: str
    environment: str
    email: str
    has_password: bool
    mfa: bool
    banned: bool
    banned_at: datetime | None
    created_at: datetime
    updated_at: datetime
    last_sign_in_at: datetime | None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> User:
        return cls(
            id=data["id"],
            project_id=data["project_id"],
            environment=data["environment"],
            email=data["email"],
            has_password=bool(data["has_password"]),
            mfa=bool(data["mfa"]),
            banned=bool(data["banned"]),
            banned_at=_optional_time(data.get("banned_at")),
            created_at=_time(data["created_at"]),
            updated_at=_time(data["updated_at"]),
            last_sign_in_at=_optional_time(data.get("last_sign_in_at")),
        )


@dataclass(frozen=True, slots=True)
class UserPage:
    items: list[User]
    next: str | None
    """The cursor of the next page (`after=`), None on the last one."""


@dataclass(frozen=True, slots=True)
class Session:
    id: str
    user_id: str
    environment: str
    status: str
    """`active`, `revoked`, `banned` or `session-expired`."""
    mfa: bool
    ip: str | None
    user_agent: str | None
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    revoked_at: datetime | None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Session:
        return cls(
            id=data["id"],
            user_id=data["user_id"],
            environment=data["environment"],
            status=data["status"],
            mfa=bool(data["mfa"]),
            ip=data.get("ip"),
            user_agent=data.get("user_agent"),
            created_at=_time(data["created_at"]),
            last_seen_at=_time(data["last_seen_at"]),
            expires_at=_time(data["expires_at"]),
            revoked_at=_optional_time(data.get("revoked_at")),
        )


@dataclass(frozen=True, slots=True)
class SessionVerdict:
    """The live check of a session JWT (`POST /v1/backend/sessions/verify`)."""

    valid: bool
    reason: str | None
    session: Session | None
    user: User | None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SessionVerdict:
        session, user = data.get("session"), data.get("user")
        return cls(
            valid=bool(data["valid"]),
            reason=data.get("reason"),
            session=Session.from_json(session) if session else None,
            user=User.from_json(user) if user else None,
        )


@dataclass(frozen=True, slots=True)
class ClientSession:
    """A code exchange's or a refresh's answer. `session_token` is the refresh token: every refresh
    answers the next one and voids the one sent (presenting a replaced one revokes the session)."""

    session_id: str
    user_id: str
    session_token: str = field(repr=False)
    jwt: str = field(repr=False)
    jwt_expires_at: datetime

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ClientSession:
        return cls(
            session_id=data["session_id"],
            user_id=data["user_id"],
            session_token=data["session_token"],
            jwt=data["jwt"],
            jwt_expires_at=_time(data["jwt_expires_at"]),
        )


@dataclass(frozen=True, slots=True)
class Event:
    id: str
    """The same id as the delivery's `webhook-id`."""
    type: str
    version: Any
    timestamp: Any
    data: Mapping[str, Any]
    cursor: str


@dataclass(frozen=True, slots=True)
class EventPage:
    items: list[Event]
    next: str
    """Pass as `after=` for the events after these (also when there were none)."""
    has_more: bool

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EventPage:
        return cls(
            items=[
                Event(
                    id=item["id"],
                    type=item["type"],
                    version=item.get("version"),
                    timestamp=item.get("timestamp"),
                    data=item.get("data") or {},
                    cursor=item["cursor"],
                )
                for item in data["items"]
            ],
            next=data["next"],
            has_more=bool(data["has_more"]),
        )
