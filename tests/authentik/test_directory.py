"""The Authentik adapter as the identity backend (IdentityProvider): directory, deactivation, MFA devices
(G6, G26, G29), the version check, and `silver-auth authentik check-token` (G8) — against the contract."""

from __future__ import annotations

from pathlib import Path

import pytest
from litestar.testing import TestClient
from typer.testing import CliRunner

from silver_auth.app import create_app
from silver_auth.authentik.permissions import NEEDED
from silver_auth.cli import app as cli_app
from silver_auth.core.errors import NotFound
from silver_auth.identity.providers.authentik import AuthentikProvider
from silver_auth.identity.providers.base import IdentityProvider
from tests.authentik.conftest import authentik_settings, least_privilege_token
from tests.authentik.support import sso_user
from tests.factories import Harness
from tests.peers.authentik_contract import RunningContract


def _provider(harness: Harness) -> AuthentikProvider:
    provider = harness.runtime.authentik
    assert provider is not None
    return provider


def test_the_adapter_implements_the_identity_provider_interface(ak_harness: Harness) -> None:
    provider: IdentityProvider = _provider(ak_harness)
    assert provider.name == "authentik"
    assert ak_harness.runtime.identity is provider  # the admin proxy operations (G26) go to Authentik


def test_list_and_read_users_and_groups(ak_harness: Harness, contract: RunningContract) -> None:
    state = contract.state
    alice = state.add_user("alice", groups=("SEQN-A",))
    for name in ("bob", "carol", "dave"):
        state.add_user(name)
    state.add_device(alice["pk"], "totp")
    state.add_device(alice["pk"], "static")  # recovery codes: not a second factor on their own
    state.add_device(alice["pk"], "webauthn", confirmed=False)
    provider = _provider(ak_harness)

    async def work() -> None:
        async with ak_harness.runtime.sessionmaker() as db:
            everyone = await provider.list_users(db, search=None, limit=100, offset=0)
            names = [u.name for u in everyone]
            assert names == sorted(names) and "Alice" in names
            window = await provider.list_users(db, search=None, limit=2, offset=1)
            assert [u.name for u in window] == names[1:3]
            found = await provider.list_users(db, search="alice", limit=10, offset=0)
            assert [u.id for u in found] == [str(alice["pk"])]
            assert found[0].groups == ["SEQN-A"]
            user = await provider.get_user(db, str(alice["pk"]))
            assert user.mfa_devices == 1 and user.is_active and user.email == "alice@example.com"
            groups = {g.name: g for g in await provider.list_groups(db)}
            assert groups["SEQN-A"].member_count == 1
            for unknown in ("999999", "not-a-number"):
                with pytest.raises(NotFound):
                    await provider.get_user(db, unknown)

    ak_harness.run(work)


def test_g6_confirmed_device_check(ak_harness: Harness, contract: RunningContract) -> None:
    state = contract.state
    with_totp, with_codes_only, unconfirmed = (state.add_user(n) for n in ("t", "s", "u"))
    state.add_device(with_totp["pk"], "totp")
    state.add_device(with_codes_only["pk"], "static")
    state.add_device(unconfirmed["pk"], "webauthn", confirmed=False)
    provider = _provider(ak_harness)

    async def work() -> list[bool]:
        async with ak_harness.runtime.sessionmaker() as db:
            return [
                await provider.has_confirmed_mfa(db, str(u["pk"]))
                for u in (with_totp, with_codes_only, unconfirmed)
            ]

    assert ak_harness.run(work) == [True, False, False]
    assert ("GET", "/authenticators/admin/all/") in state.calls


def test_g29_deactivate_and_reset_mfa_end_the_linked_console_sessions(
    ak_harness: Harness, contract: RunningContract
) -> None:
    state = contract.state
    alice = state.add_user("alice")
    state.add_device(alice["pk"], "totp")
    state.add_device(alice["pk"], "static")
    console = sso_user(ak_harness, subject=alice["uuid"])
    console.ok("GET", "/console/api/me")
    provider = _provider(ak_harness)

    async def reset() -> int:
        async with ak_harness.runtime.sessionmaker() as db:
            removed = await provider.reset_mfa(db, str(alice["pk"]))
            await db.commit()
            return removed

    assert ak_harness.run(reset) == 2
    assert [d for d in state.devices if d["user"] == alice["pk"]] == []
    assert console.get("/console/api/me").status_code == 401

    console = sso_user(ak_harness, subject=alice["uuid"])

    async def deactivate() -> bool:
        async with ak_harness.runtime.sessionmaker() as db:
            user = await provider.deactivate_user(db, str(alice["pk"]))
            await db.commit()
            return user.is_active

    assert ak_harness.run(deactivate) is False
    assert state.users[alice["pk"]]["is_active"] is False
    assert console.get("/console/api/me").status_code == 401


def test_version_mismatch_is_warned_at_start_up(
    tmp_path: Path, database_url: str, contract: RunningContract, capfd: pytest.CaptureFixture[str]
) -> None:
    contract.state.version = "2026.10.1"
    token = least_privilege_token(contract.state)
    settings = authentik_settings(tmp_path, database_url, contract.url, token)
    with TestClient(create_app(settings)):
        pass
    captured = capfd.readouterr().err
    assert "authentik_version_mismatch" in captured and "2026.10.1" in captured
    assert token not in captured


def _check_token(contract: RunningContract, token: str, tmp_path: Path) -> tuple[int, str, str]:
    env = {
        "SILVER_AUTHENTIK_URL": contract.url,
        "SILVER_AUTHENTIK_TOKEN": token,
        "SILVER_DATA_DIR": str(tmp_path / "cli"),
    }
    result = CliRunner().invoke(cli_app, ["authentik", "check-token"], env=env)
    return result.exit_code, result.stdout, result.stderr


def test_g8_check_token_passes_a_least_privilege_token(contract: RunningContract, tmp_path: Path) -> None:
    token = least_privilege_token(contract.state)
    code, out, err = _check_token(contract, token, tmp_path)
    assert code == 0, out + err
    assert "authentik_providers_oauth2.add_oauth2provider" in out
    assert "holds exactly what provisioning needs" in out
    assert token not in out + err


def test_g8_check_token_flags_an_over_privileged_token(contract: RunningContract, tmp_path: Path) -> None:
    state = contract.state
    role = state.add_role(
        "too-much", set(NEEDED) | {"authentik_core.add_user_to_group", "authentik_flows.change_flow"}
    )
    user = state.add_user("greedy")
    user["roles"].append(role)
    code, _, err = _check_token(contract, state.add_token(user["pk"]), tmp_path)
    assert code == 1
    assert "authentik_core.add_user_to_group granted globally" in err
    assert "authentik_flows.change_flow: not needed" in err
    assert "over-privileged" in err


def test_g8_check_token_flags_a_superuser_and_a_path_to_superuser(
    contract: RunningContract, tmp_path: Path
) -> None:
    state = contract.state
    admin = state.add_user("akadmin", groups=("authentik Admins",))
    code, _, err = _check_token(contract, state.add_token(admin["pk"]), tmp_path)
    assert code == 1 and "superuser" in err

    admins = state.group_named("authentik Admins")["pk"]
    seqn = state.group_named("SEQN-A")["pk"]
    role = state.add_role(
        "sneaky",
        set(NEEDED),
        [
            ("authentik_core.add_user_to_group", "group", seqn),  # fine: a group Silver manages
            ("authentik_core.add_user_to_group", "group", admins),  # a path to superuser
        ],
    )
    user = state.add_user("sneaky")
    user["roles"].append(role)
    code, _, err = _check_token(contract, state.add_token(user["pk"]), tmp_path)
    assert code == 1
    assert "on the superuser group 'authentik Admins'" in err
    assert seqn not in err


def test_check_token_names_missing_permissions(contract: RunningContract, tmp_path: Path) -> None:
    state = contract.state
    role = state.add_role("too-little", set(NEEDED) - {"authentik_core.delete_application"})
    user = state.add_user("meagre")
    user["roles"].append(role)
    code, _, err = _check_token(contract, state.add_token(user["pk"]), tmp_path)
    assert code == 1 and "missing: authentik_core.delete_application" in err


def test_a_refused_token_is_one_clear_line(contract: RunningContract, tmp_path: Path) -> None:
    code, _, err = _check_token(contract, "not-a-real-token-canary-31337", tmp_path)
    assert code == 1 and "Authentik refused read the version (HTTP 403)" in err
    assert "not-a-real-token-canary-31337" not in err
