"""Fixtures for the Authentik backend: the contract server (Authentik's stand-in in CI), a least-privilege
provisioning token, and an app configured with SILVER_IDENTITY=authentik."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from silver_auth.authentik.permissions import NEEDED
from silver_auth.settings import Settings
from tests.conftest import AppPool, base_settings
from tests.factories import Harness
from tests.peers.authentik_contract import ContractState, RunningContract, run_contract_server


@pytest.fixture(scope="session")
def contract_server() -> Iterator[RunningContract]:
    yield from run_contract_server()


@pytest.fixture
def contract(contract_server: RunningContract) -> RunningContract:
    contract_server.server.reset()
    return contract_server


def least_privilege_token(state: ContractState) -> str:
    """A service account with one role holding exactly the needed permissions (docs/authentik.md, G8)."""
    role = state.add_role("silver-provisioner", set(NEEDED))
    state.roles[role]["object_perms"].append(("authentik_rbac.view_role", "role", role))
    user = state.add_user("silver-provisioner", email=None)
    user["type"] = "service_account"
    user["roles"].append(role)
    return state.add_token(user["pk"])


@pytest.fixture
def provisioning_token(contract: RunningContract) -> str:
    return least_privilege_token(contract.state)


def authentik_settings(
    tmp_path: Path, database_url: str, contract_url: str, token: str, **overrides: str
) -> Settings:
    values = {
        "DATABASE_URL": database_url,
        "SILVER_IDENTITY": "authentik",
        "SILVER_AUTHENTIK_URL": contract_url,
        "SILVER_AUTHENTIK_TOKEN": token,
        "SILVER_AUTHENTIK_TIMEOUT_SECONDS": "5",
        "SILVER_CONSOLE_OIDC_ISSUER": "http://127.0.0.1:9/unused",
        "SILVER_CONSOLE_OIDC_CLIENT_ID": "silver-console",
        "SILVER_CONSOLE_OIDC_CLIENT_SECRET": "console-client-secret-canary-7f3a9d",
        **overrides,
    }
    return base_settings(tmp_path, **values)


@pytest.fixture
def ak_settings(
    tmp_path: Path, database_url: str, contract: RunningContract, provisioning_token: str
) -> Settings:
    return authentik_settings(tmp_path, database_url, contract.url, provisioning_token)


@pytest.fixture
def ak_harness(apps: AppPool, ak_settings: Settings) -> Iterator[Harness]:
    with apps.serve(ak_settings) as client:
        yield Harness(client, ak_settings)
