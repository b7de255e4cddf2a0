"""Two first-run setups at the same moment: exactly one creates the first account, the other sees it."""

from __future__ import annotations

import asyncio

from silver_auth.accounts.service import any_account, create_account, no_account_yet_locked
from silver_auth.audit.service import Actor
from silver_auth.db.session import transaction
from tests.factories import PASSWORD, Harness


def test_concurrent_setups_make_one_first_account(harness: Harness) -> None:
    sessionmaker = harness.runtime.sessionmaker
    first_checked = asyncio.Event()

    async def setup(email: str, wait: asyncio.Event | None) -> bool:
        if wait is not None:
            await wait.wait()  # the other setup already holds the lock and has seen no account
        async with transaction(sessionmaker) as db:
            if not await no_account_yet_locked(db):
                return False
            if wait is None:
                first_checked.set()
                await asyncio.sleep(0.2)  # the other setup asks meanwhile: it must wait, not answer "none"
            await create_account(db, email, PASSWORD, actor=Actor("anonymous", "127.0.0.1"))
            return True

    async def race() -> list[bool]:
        return list(await asyncio.gather(setup("a@example.com", None), setup("b@example.com", first_checked)))

    assert harness.run(race) == [True, False]

    async def exists() -> bool:
        async with transaction(sessionmaker) as db:
            return await any_account(db)

    assert harness.run(exists)
