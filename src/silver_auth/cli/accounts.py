"""`silver-auth account …`: console accounts of the builtin identity backend and their security (G7,
G29). Every change is audited with the CLI actor."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated

import typer

from silver_auth.cli.base import fail, in_transaction, out

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from silver_auth.accounts.service import AccountRow

account_app = typer.Typer(help="Console accounts of the builtin identity backend.", no_args_is_help=True)
group_app = typer.Typer(
    help="Identity-backend groups of an account (builtin), e.g. SEQN-A.", no_args_is_help=True
)
account_app.add_typer(group_app, name="group")


@account_app.command("create")
def account_create(
    email: str,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin.")
    ] = False,
    platform_admin: Annotated[
        bool, typer.Option("--platform-admin", help="Add to the SEQN-A group (G7).")
    ] = False,
) -> None:
    """Create a console account (builtin identity)."""
    if not password_stdin:
        raise fail("pass the password on stdin with --password-stdin (never as an argument: G15)")
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise fail("no password was given on stdin (echo 'your passphrase' | silver-auth account create …)")

    async def work(db: AsyncSession) -> str:
        from silver_auth.accounts.service import PLATFORM_ADMIN_GROUP, create_account  # noqa: PLC0415
        from silver_auth.audit.service import CLI_ACTOR  # noqa: PLC0415

        groups = (PLATFORM_ADMIN_GROUP,) if platform_admin else ()
        account = await create_account(db, email, password, groups=groups, actor=CLI_ACTOR)
        return account.id

    account_id = in_transaction(work)
    out.print(
        f"created {account_id} ({email.strip().lower()}){' in SEQN-A' if platform_admin else ''}",
        markup=False,
    )


@account_app.command("list")
def account_list() -> None:
    """Every console account: email, id, groups, MFA, active or not, created."""

    async def work(db: AsyncSession) -> list[AccountRow]:
        from silver_auth.accounts.service import list_accounts  # noqa: PLC0415

        return await list_accounts(db)

    rows = in_transaction(work)
    for row in rows:
        groups = ",".join(row.groups) or "-"
        state = "active" if row.active else "deactivated"
        out.print(
            f"{row.email}  {row.id}  groups={groups}  mfa={'on' if row.mfa else 'off'}  {state}  "
            f"created {row.created_at:%Y-%m-%d %H:%M}Z",
            markup=False,
        )
    out.print(f"{len(rows)} account(s)", markup=False)


AccountOperation = Callable[..., Awaitable[int]]


def _on_account(email: str, operation: Callable[[], AccountOperation]) -> int:
    """Run one account-security service operation on the account with this email, as the CLI actor;
    `operation` imports the service function when the command runs (keeps `--help` fast)."""

    async def work(db: AsyncSession) -> int:
        from silver_auth.accounts.service import account_by_email  # noqa: PLC0415
        from silver_auth.audit.service import CLI_ACTOR  # noqa: PLC0415

        account = await account_by_email(db, email)
        return await operation()(db, account.id, actor=CLI_ACTOR)

    return in_transaction(work)


def _service(name: str) -> Callable[[], AccountOperation]:
    def load() -> AccountOperation:
        from silver_auth.accounts import service  # noqa: PLC0415

        function: AccountOperation = getattr(service, name)
        return function

    return load


@account_app.command("deactivate")
def account_deactivate(email: str) -> None:
    """Deactivate an account and end all its sessions (offboarding, G29)."""
    revoked = _on_account(email, _service("deactivate_account"))
    out.print(f"deactivated {email.strip().lower()}; {revoked} session(s) revoked", markup=False)


@account_app.command("reset-mfa")
def account_reset_mfa(email: str) -> None:
    """Remove an account's TOTP and recovery codes (lost device) and end all its sessions (G29)."""
    removed = _on_account(email, _service("reset_account_mfa"))
    out.print(
        f"MFA reset for {email.strip().lower()}: {removed} factor(s) removed; every session revoked",
        markup=False,
    )


@account_app.command("revoke-sessions")
def account_revoke_sessions(email: str) -> None:
    """End every console session of an account (lost device, suspicious access: G29)."""
    revoked = _on_account(email, _service("revoke_account_sessions"))
    out.print(f"{revoked} session(s) of {email.strip().lower()} revoked", markup=False)


@group_app.command("add")
def account_group_add(
    email: str,
    group: str,
    create: Annotated[
        bool, typer.Option("--create", help="Make the group if no account is in it yet.")
    ] = False,
) -> None:
    """Add an account to a group (SEQN-A makes it a platform admin: G7, L6). Names are case-sensitive;
    a group no account is in yet needs --create."""

    async def work(db: AsyncSession) -> None:
        from silver_auth.accounts.service import add_group  # noqa: PLC0415
        from silver_auth.audit.service import CLI_ACTOR  # noqa: PLC0415

        await add_group(db, email, group, actor=CLI_ACTOR, create=create)

    in_transaction(work)
    out.print(f"{email.strip().lower()} is in {group.strip()}", markup=False)


@group_app.command("remove")
def account_group_remove(email: str, group: str) -> None:
    """Take an account out of a group; leaving SEQN-A also ends its sessions (G7, G29)."""

    async def work(db: AsyncSession) -> int:
        from silver_auth.accounts.service import remove_group  # noqa: PLC0415
        from silver_auth.audit.service import CLI_ACTOR  # noqa: PLC0415

        return await remove_group(db, email, group, actor=CLI_ACTOR)

    revoked = in_transaction(work)
    suffix = f"; {revoked} session(s) revoked" if revoked else ""
    out.print(f"{email.strip().lower()} removed from {group.strip()}{suffix}", markup=False)
