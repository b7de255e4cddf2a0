"""The builtin identity backend: local accounts, their groups, and TOTP factors in this database."""

from __future__ import annotations

from collections import defaultdict
from typing import Literal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.accounts.models import Account, AccountGroup
from silver_auth.accounts.service import deactivate_account, reset_account_mfa
from silver_auth.audit.service import Actor
from silver_auth.core.errors import NotFound
from silver_auth.identity.providers.base import DirectoryGroup, DirectoryUser
from silver_auth.mfa.models import TotpFactor

BUILTIN_BACKEND = Actor("identity:builtin")


def like_escaped(text: str) -> str:
    """A case-insensitive substring pattern with LIKE's wildcards taken literally."""
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class BuiltinIdentityProvider:
    """Directory users are Account rows (user id = account id); groups are AccountGroup names."""

    name: Literal["builtin", "authentik"] = "builtin"

    async def _users(self, db: AsyncSession, accounts: list[Account]) -> list[DirectoryUser]:
        ids = [account.id for account in accounts]
        groups: dict[str, list[str]] = defaultdict(list)
        devices: dict[str, int] = {}
        if ids:
            for account_id, group in await db.execute(
                select(AccountGroup.account_id, AccountGroup.group_name)
                .where(AccountGroup.account_id.in_(ids))
                .order_by(AccountGroup.group_name)
            ):
                groups[account_id].append(group)
            for owner_id, count in await db.execute(
                select(TotpFactor.owner_id, func.count())
                .where(TotpFactor.owner_id.in_(ids), TotpFactor.confirmed_at.is_not(None))
                .group_by(TotpFactor.owner_id)
            ):
                devices[owner_id] = int(count)
        return [
            DirectoryUser(
                id=account.id,
                email=account.email,
                name=None,
                is_active=account.is_active,
                groups=groups[account.id],
                mfa_devices=devices.get(account.id, 0),
            )
            for account in accounts
        ]

    async def list_users(
        self, db: AsyncSession, *, search: str | None, limit: int, offset: int
    ) -> list[DirectoryUser]:
        query = select(Account)
        if search:
            query = query.where(func.lower(Account.email).like(like_escaped(search), escape="\\"))
        rows = await db.scalars(query.order_by(Account.created_at, Account.id).limit(limit).offset(offset))
        return await self._users(db, list(rows.all()))

    async def list_groups(self, db: AsyncSession) -> list[DirectoryGroup]:
        rows = await db.execute(
            select(AccountGroup.group_name, func.count())
            .group_by(AccountGroup.group_name)
            .order_by(AccountGroup.group_name)
        )
        return [DirectoryGroup(id=name, name=name, member_count=int(count)) for name, count in rows]

    async def get_user(self, db: AsyncSession, user_id: str) -> DirectoryUser:
        account = await db.get(Account, user_id)
        if account is None:
            raise NotFound("no such user")
        return (await self._users(db, [account]))[0]

    # The interface carries no actor: the backend's own events name it, as Authentik's name its API
    # token's user. Whoever asked is on the admin service's `identity.*` event in the same transaction.
    async def deactivate_user(self, db: AsyncSession, user_id: str) -> DirectoryUser:
        await self.get_user(db, user_id)
        await deactivate_account(db, user_id, actor=BUILTIN_BACKEND)
        return await self.get_user(db, user_id)

    async def reset_mfa(self, db: AsyncSession, user_id: str) -> int:
        await self.get_user(db, user_id)
        return await reset_account_mfa(db, user_id, actor=BUILTIN_BACKEND)

    async def has_confirmed_mfa(self, db: AsyncSession, user_id: str) -> bool:
        found = await db.scalar(
            select(TotpFactor.id).where(TotpFactor.owner_id == user_id, TotpFactor.confirmed_at.is_not(None))
        )
        return found is not None
