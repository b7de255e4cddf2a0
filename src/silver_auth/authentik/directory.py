"""Authentik as the identity backend's directory: users, groups, deactivation, MFA devices (G6, G26)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal
from uuid import UUID

from authentik_client import Device, PatchedUserRequest, User
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.accounts.models import Account
from silver_auth.accounts.sessions import revoke_all_sessions
from silver_auth.authentik.api import AuthentikApi, AuthentikNotFound
from silver_auth.core.errors import NotFound
from silver_auth.identity.providers.base import DirectoryGroup, DirectoryUser

# Recovery codes are a fallback, not a device that proves a second factor on its own.
NOT_A_SECOND_FACTOR = frozenset({"authentik_stages_authenticator_static.staticdevice"})
ACCOUNT_SOURCE = "authentik"


def _user_pk(user_id: str) -> int:
    if not user_id.isdigit():
        raise NotFound("no such user")  # Authentik user ids are integers: anything else is unknown
    return int(user_id)


def _model_name(device: Device) -> str:
    return device.meta_model_name.lower()


def _is_second_factor(device: Device) -> bool:
    return device.confirmed and _model_name(device) not in NOT_A_SECOND_FACTOR


class AuthentikDirectory:
    """The IdentityProvider operations, answered by Authentik's API."""

    name: Literal["builtin", "authentik"] = "authentik"

    def __init__(self, api: AuthentikApi) -> None:
        self.api = api

    def _destroyers(self) -> dict[str, Callable[..., Any]]:
        admin = self.api.authenticators
        return {
            "authentik_stages_authenticator_totp.totpdevice": admin.authenticators_admin_totp_destroy,
            "authentik_stages_authenticator_static.staticdevice": admin.authenticators_admin_static_destroy,
            "authentik_stages_authenticator_webauthn.webauthndevice": (
                admin.authenticators_admin_webauthn_destroy
            ),
            "authentik_stages_authenticator_duo.duodevice": admin.authenticators_admin_duo_destroy,
            "authentik_stages_authenticator_sms.smsdevice": admin.authenticators_admin_sms_destroy,
            "authentik_stages_authenticator_email.emaildevice": admin.authenticators_admin_email_destroy,
            "authentik_stages_authenticator_endpoint_gdtc.endpointdevice": (
                admin.authenticators_admin_endpoint_destroy
            ),
        }

    async def _devices(self, pk: int) -> list[Device]:
        return await self.api.call(
            "list a user's authenticator devices",
            self.api.authenticators.authenticators_admin_all_list,
            user=pk,
        )

    async def _user(self, pk: int) -> User:
        try:
            return await self.api.call("read a user", self.api.core.core_users_retrieve, pk)
        except AuthentikNotFound:
            raise NotFound("no such user") from None

    @staticmethod
    def _directory_user(user: User, devices: int = 0) -> DirectoryUser:
        return DirectoryUser(
            id=str(user.pk),
            email=user.email or None,
            name=user.name or None,
            is_active=bool(user.is_active),
            groups=sorted(group.name for group in user.groups_obj or []),
            mfa_devices=devices,
        )

    async def list_users(
        self, db: AsyncSession, *, search: str | None, limit: int, offset: int
    ) -> list[DirectoryUser]:
        """Authentik pages by number: read the one or two pages that cover [offset, offset + limit)."""
        limit = max(1, limit)
        page = offset // limit + 1
        skip = offset % limit
        users: list[User] = []
        for number in (page, page + 1) if skip else (page,):
            try:
                answer = await self.api.call(
                    "list users",
                    self.api.core.core_users_list,
                    search=search or None,
                    page=number,
                    page_size=limit,
                    include_groups=True,
                    ordering="username",
                )
            except AuthentikNotFound:  # past the last page
                break
            users.extend(answer.results)
            if not answer.pagination.next:
                break
        return [self._directory_user(user) for user in users[skip : skip + limit]]

    async def list_groups(self, db: AsyncSession) -> list[DirectoryGroup]:
        groups: list[DirectoryGroup] = []
        page = 1
        while True:
            answer = await self.api.call(
                "list groups", self.api.core.core_groups_list, page=page, page_size=100, include_users=False
            )
            groups.extend(
                DirectoryGroup(
                    id=str(group.pk),
                    name=group.name,
                    member_count=len(group.users) if group.users is not None else None,
                )
                for group in answer.results
            )
            if not answer.pagination.next:
                return groups
            page = int(answer.pagination.next)

    async def get_user(self, db: AsyncSession, user_id: str) -> DirectoryUser:
        pk = _user_pk(user_id)
        user = await self._user(pk)
        devices = [
            d for d in await self._devices(pk) if d.confirmed and _model_name(d) not in NOT_A_SECOND_FACTOR
        ]
        return self._directory_user(user, len(devices))

    async def deactivate_user(self, db: AsyncSession, user_id: str) -> DirectoryUser:
        """`is_active: false` in Authentik, and the user's console sessions here end (G29)."""
        pk = _user_pk(user_id)
        try:
            user = await self.api.call(
                "deactivate a user",
                self.api.core.core_users_partial_update,
                pk,
                PatchedUserRequest(is_active=False),
            )
        except AuthentikNotFound:
            raise NotFound("no such user") from None
        await self._revoke_console_sessions(db, user)
        return self._directory_user(user)

    async def reset_mfa(self, db: AsyncSession, user_id: str) -> int:
        """Delete every authenticator device of the user; their console sessions end too."""
        pk = _user_pk(user_id)
        user = await self._user(pk)
        destroyers = self._destroyers()
        removed = 0
        for device in await self._devices(pk):
            destroy = destroyers.get(_model_name(device))
            if destroy is None or not device.pk.isdigit():
                continue  # a device type this client version cannot delete; it is counted as kept
            try:
                await self.api.call("delete an authenticator device", destroy, int(device.pk))
            except AuthentikNotFound:
                continue  # already gone
            removed += 1
        await self._revoke_console_sessions(db, user)
        return removed

    async def has_confirmed_mfa(self, db: AsyncSession, user_id: str) -> bool:
        """G6: Authentik itself holds a confirmed second-factor device of this user."""
        devices = await self._devices(_user_pk(user_id))
        return any(_is_second_factor(d) for d in devices)

    async def user_pk_for_subject(self, subject: str) -> str | None:
        """The Authentik user pk behind an OIDC `sub` (the console provider's subject mode is the UUID)."""
        try:
            uuid = UUID(subject)
        except ValueError:
            return None
        answer = await self.api.call(
            "find a user by uuid", self.api.core.core_users_list, uuid=uuid, page_size=1
        )
        return str(answer.results[0].pk) if answer.results else None

    @staticmethod
    async def _revoke_console_sessions(db: AsyncSession, user: User) -> None:
        account_id = await db.scalar(select(Account.id).where(Account.external_subject == str(user.uuid)))
        if account_id is not None:
            await revoke_all_sessions(db, account_id)
