"""Project provisioning in Authentik through the adapter, against the contract server (G8, G10, G17-G19)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from litestar.testing import TestClient
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from silver_auth.app import create_app
from silver_auth.audit.service import CLI_ACTOR, Actor, AuditAction, record
from silver_auth.authentik import applications as provisioning
from silver_auth.authentik.models import AuthentikApplication
from silver_auth.cli import app as cli_app
from silver_auth.core import clock
from silver_auth.core.crypto import Sealer
from silver_auth.core.errors import InvalidInput
from silver_auth.db.engine import create_engine, create_sessionmaker
from silver_auth.db.session import transaction
from silver_auth.projects.models import Project
from silver_auth.settings import Settings
from tests.authentik.conftest import authentik_settings
from tests.authentik.support import all_rows_text, audit_rows, member, sso_user
from tests.conftest import BACKEND
from tests.dbstate import snapshot
from tests.factories import ConsoleUser, Harness
from tests.peers.authentik_contract import RunningContract


def _client_secret(settings: Settings, row: AuthentikApplication) -> str:
    """The sealed client secret opened the way the service opens it (it opens again, server-side)."""
    return Sealer(settings.sealing_key_ring()).unseal(
        row.client_secret_sealed, provisioning.secret_context(row.project_id)
    )


CONSOLE = "/console/api"


def _world(harness: Harness) -> tuple[ConsoleUser, str]:
    owner = sso_user(harness)
    org_id = harness.org(owner)["id"]
    return owner, org_id


def _only_provider(contract: RunningContract) -> dict[str, Any]:
    assert len(contract.state.providers) == 1, contract.state.providers
    return next(iter(contract.state.providers.values()))


def _row(harness: Harness, project_id: str) -> AuthentikApplication | None:
    async def work() -> AuthentikApplication | None:
        async with harness.runtime.sessionmaker() as db:
            return await db.get(AuthentikApplication, project_id)

    return harness.run(work)


def test_g8_creating_a_project_provisions_its_provider_and_application(
    ak_harness: Harness, contract: RunningContract
) -> None:
    owner, org_id = _world(ak_harness)
    project = ak_harness.project(owner, org_id, "Shop")
    provider = _only_provider(contract)
    hosted = f"{ak_harness.settings.auth_url}/p/{project['id']}/oidc/callback"
    assert provider["client_type"] == "confidential"
    assert provider["redirect_uris"] == [{"matching_mode": "strict", "url": hosted}]
    # authentik-notes: without a signing key Authentik signs HS256 with the client secret
    assert provider["signing_key"] == contract.state.keypairs[0]["pk"]
    scopes = {m["pk"]: m["scope_name"] for m in contract.state.scope_mappings}
    assert sorted(scopes[pk] for pk in provider["property_mappings"]) == ["email", "openid", "profile"]
    flows = {f["slug"]: f["pk"] for f in contract.state.flows}
    assert provider["authorization_flow"] == flows["default-provider-authorization-implicit-consent"]
    assert provider["invalidation_flow"] == flows["default-provider-invalidation-flow"]
    slug = "silver-" + project["id"].lower().replace("_", "-")
    assert contract.state.applications[slug]["provider"] == provider["pk"]

    identity = owner.ok("GET", f"{CONSOLE}/projects/{project['id']}/identity")
    assert identity["application_slug"] == slug
    assert identity["client_id"] == provider["client_id"]
    assert identity["issuer"] == f"{contract.url}/application/o/{slug}/"
    assert "client_secret" not in identity
    assert [a for a, _ in audit_rows(ak_harness)].count("project.identity_provisioned") == 1


def test_g10_g17_client_secret_is_sealed_and_never_shown(
    ak_harness: Harness, contract: RunningContract, capfd: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    owner, org_id = _world(ak_harness)
    answers = [ak_harness.project(owner, org_id, "Shop")]
    project_id = answers[0]["id"]
    secret = _only_provider(contract)["client_secret"]
    assert len(secret) == 128
    answers.append(owner.ok("GET", f"{CONSOLE}/projects/{project_id}"))
    answers.append(owner.ok("GET", f"{CONSOLE}/projects/{project_id}/identity"))
    answers.append(owner.ok("GET", f"{CONSOLE}/orgs/{org_id}/audit"))
    answers.append(owner.ok("GET", f"{CONSOLE}/orgs/{org_id}/projects"))
    token = ak_harness.settings.authentik_token.get_secret_value()  # type: ignore[union-attr]
    for answer in answers:
        assert secret not in str(answer) and token not in str(answer)
    assert secret not in all_rows_text(ak_harness)  # sealed: not one row holds it in clear
    assert token not in all_rows_text(ak_harness)
    if ak_harness.settings.is_sqlite:  # the file itself, WAL included, never holds it either
        database_file = Path(ak_harness.settings.sqlalchemy_url.partition(":///")[2])
        for path in (database_file, database_file.with_name(database_file.name + "-wal")):
            if path.exists():
                assert secret.encode() not in path.read_bytes()
    captured = capfd.readouterr()
    assert secret not in captured.out + captured.err and token not in captured.out + captured.err
    row = _row(ak_harness, project_id)
    assert row is not None
    assert _client_secret(ak_harness.settings, row) == secret  # and it opens again, server-side


def test_updating_redirect_urls_patches_the_provider_strictly(
    ak_harness: Harness, contract: RunningContract
) -> None:
    owner, org_id = _world(ak_harness)
    project_id = ak_harness.project(owner, org_id)["id"]
    urls = ["https://shop.example.com/auth/callback", "http://localhost:3000/cb"]
    owner.ok("PATCH", f"{CONSOLE}/projects/{project_id}", json={"redirect_urls": urls})
    provider = _only_provider(contract)
    hosted = f"{ak_harness.settings.auth_url}/p/{project_id}/oidc/callback"
    assert provider["redirect_uris"] == [{"matching_mode": "strict", "url": u} for u in [hosted, *urls]]
    owner.ok("PATCH", f"{CONSOLE}/projects/{project_id}", json={"name": "Renamed"})
    assert contract.state.calls.count(("PATCH", f"/providers/oauth2/{provider['pk']}/")) == 1


def test_deleting_a_project_deletes_its_application_and_provider(
    ak_harness: Harness, contract: RunningContract
) -> None:
    owner, org_id = _world(ak_harness)
    project_id = ak_harness.project(owner, org_id)["id"]
    assert contract.state.providers and contract.state.applications
    owner.ok("DELETE", f"{CONSOLE}/projects/{project_id}", 204)
    assert contract.state.providers == {}
    assert contract.state.applications == {}
    assert _row(ak_harness, project_id) is None


def test_a_failed_application_create_compensates_and_answers_502(
    ak_harness: Harness, contract: RunningContract
) -> None:
    owner, org_id = _world(ak_harness)
    before = snapshot(ak_harness)
    contract.state.fail_next[("POST", "/core/applications/")] = 500
    response = owner.post(f"{CONSOLE}/orgs/{org_id}/projects", json={"name": "Broken"})
    assert response.status_code == 502, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"].endswith("/identity-provider-error")
    assert contract.state.providers == {}  # the provider made before the failure was deleted again
    assert contract.state.applications == {}
    assert snapshot(ak_harness) == before  # and nothing was written here


def test_an_unreachable_authentik_answers_503_and_writes_nothing(
    tmp_path: Path, database_url: str, contract: RunningContract, provisioning_token: str
) -> None:
    settings = authentik_settings(tmp_path, database_url, "http://127.0.0.1:9", provisioning_token)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        harness = Harness(client, settings)
        owner, org_id = _world(harness)
        before = snapshot(harness)
        response = owner.post(f"{CONSOLE}/orgs/{org_id}/projects", json={"name": "Offline"})
        assert response.status_code == 503, response.text
        assert response.json()["type"].endswith("/identity-provider-unavailable")
        assert snapshot(harness) == before


def test_a_database_failure_after_provisioning_undoes_it_in_authentik(
    ak_harness: Harness, contract: RunningContract
) -> None:
    owner, org_id = _world(ak_harness)
    runtime = ak_harness.runtime
    applications = runtime.applications
    assert applications is not None

    async def work() -> None:
        async with transaction(runtime.sessionmaker) as db:
            project = Project(
                id="prj_undo",
                org_id=org_id,
                name="Undo",
                allowed_origins=[],
                redirect_urls=[],
                sign_in_methods=["password"],
                created_at=clock.now(),
                updated_at=clock.now(),
            )
            db.add(project)
            await db.flush()
            made = await applications.provision(db, project)
            await applications.provisioned(db, project, made, actor=Actor(owner.account_id))
            assert contract.state.providers  # it exists in Authentik while the transaction is open
            raise RuntimeError("the commit never happens")

    with pytest.raises(RuntimeError):
        ak_harness.run(work)
    assert contract.state.providers == {}
    assert contract.state.applications == {}


def test_a_failed_delete_in_authentik_keeps_the_project(
    ak_harness: Harness, contract: RunningContract
) -> None:
    owner, org_id = _world(ak_harness)
    project_id = ak_harness.project(owner, org_id)["id"]
    contract.state.fail_next[("DELETE", "/core/applications/")] = 500
    response = owner.delete(f"{CONSOLE}/projects/{project_id}")
    assert response.status_code == 502, response.text
    owner.ok("GET", f"{CONSOLE}/projects/{project_id}")  # still there: no live orphan in Authentik
    assert len(contract.state.applications) == 1


def test_g9_g19_rotating_the_client_secret(ak_harness: Harness, contract: RunningContract) -> None:
    owner, org_id = _world(ak_harness)
    project_id = ak_harness.project(owner, org_id)["id"]
    old = _only_provider(contract)["client_secret"]
    answer = owner.ok("POST", f"{CONSOLE}/projects/{project_id}/identity/rotate-secret")
    new = _only_provider(contract)["client_secret"]
    assert new != old and len(new) == 128
    assert answer["secret_rotated_at"] is not None
    assert new not in str(answer) and old not in str(answer)
    row = _row(ak_harness, project_id)
    assert row is not None and _client_secret(ak_harness.settings, row) == new
    assert new not in all_rows_text(ak_harness)
    rotated = [m for a, m in audit_rows(ak_harness) if a == "project.identity_secret_rotated"]
    assert len(rotated) == 1 and new not in str(rotated)


def test_rotation_is_for_admins_and_foreign_projects_look_unknown(
    ak_harness: Harness, contract: RunningContract
) -> None:
    owner, org_id = _world(ak_harness)
    project_id = ak_harness.project(owner, org_id)["id"]
    path = f"{CONSOLE}/projects/{project_id}/identity/rotate-secret"
    developer = member(ak_harness, owner, org_id, "developer")
    assert developer.post(path).status_code == 403
    developer.ok("GET", f"{CONSOLE}/projects/{project_id}/identity")  # reading is for viewers and up
    outsider = sso_user(ak_harness)
    assert outsider.post(path).status_code == 404
    assert outsider.get(f"{CONSOLE}/projects/{project_id}/identity").status_code == 404
    admin = member(ak_harness, owner, org_id, "admin")
    admin.ok("POST", path)


def test_a_failed_rotation_leaves_the_sealed_secret_in_step(
    ak_harness: Harness, contract: RunningContract
) -> None:
    owner, org_id = _world(ak_harness)
    project_id = ak_harness.project(owner, org_id)["id"]
    old = _only_provider(contract)["client_secret"]
    contract.state.fail_next[("PATCH", "/providers/oauth2/")] = 500
    response = owner.post(f"{CONSOLE}/projects/{project_id}/identity/rotate-secret")
    assert response.status_code == 502
    row = _row(ak_harness, project_id)
    assert row is not None and _client_secret(ak_harness.settings, row) == old
    assert _only_provider(contract)["client_secret"] == old


def test_end_user_authorize_url_for_the_hosted_pages(ak_harness: Harness, contract: RunningContract) -> None:
    owner, org_id = _world(ak_harness)
    project_id = ak_harness.project(owner, org_id)["id"]
    owner.ok("PATCH", f"{CONSOLE}/projects/{project_id}", json={"redirect_urls": ["https://shop.example/cb"]})
    row = _row(ak_harness, project_id)

    async def project() -> Project:
        async with ak_harness.runtime.sessionmaker() as db:
            found = await db.get(Project, project_id)
            assert found is not None
            return found

    prj = ak_harness.run(project)
    assert row is not None
    url = provisioning.end_user_authorize_url(
        ak_harness.settings,
        row,
        prj,
        redirect_uri="https://shop.example/cb",
        state="s",
        nonce="n",
        code_challenge="c",
    )
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{contract.url}/application/o/authorize/"
    query = parse_qs(parts.query)
    assert query["client_id"] == [_only_provider(contract)["client_id"]]
    assert query["code_challenge_method"] == ["S256"] and query["redirect_uri"] == ["https://shop.example/cb"]
    assert _only_provider(contract)["client_secret"] not in url
    with pytest.raises(InvalidInput):
        provisioning.end_user_authorize_url(
            ak_harness.settings,
            row,
            prj,
            redirect_uri="https://shop.example/cb/../evil",
            state="s",
            nonce="n",
            code_challenge="c",
        )


def test_provision_missing_after_switching_to_authentik(
    harness: Harness, contract: RunningContract, provisioning_token: str, tmp_path: Path
) -> None:
    """Projects made with the builtin backend get their Authentik application from the CLI, once."""
    owner = harness.user()
    org_id = harness.org(owner)["id"]
    old = harness.project(owner, org_id, "Old")["id"]
    settings = harness.settings
    env = {
        "DATABASE_URL": settings.sqlalchemy_url,
        "SILVER_DATA_DIR": str(tmp_path / "cli"),
        "SESSION_SECRET": settings.session_secret.get_secret_value(),  # type: ignore[union-attr]
        "SILVER_KEY_PEPPER": settings.key_pepper.get_secret_value(),  # type: ignore[union-attr]
        "SILVER_SEALING_KEYS": settings.sealing_keys.get_secret_value(),  # type: ignore[union-attr]
        "SILVER_IDENTITY": "authentik",
        "SILVER_AUTHENTIK_URL": contract.url,
        "SILVER_AUTHENTIK_TOKEN": provisioning_token,
    }
    first = CliRunner().invoke(cli_app, ["authentik", "provision-missing"], env=env)
    assert first.exit_code == 0, first.stdout + first.stderr
    assert f"provisioned {old}" in first.stdout
    secret = _only_provider(contract)["client_secret"]
    assert secret not in first.stdout + first.stderr
    row = _row(harness, old)
    assert row is not None and _client_secret(settings, row) == secret
    again = CliRunner().invoke(cli_app, ["authentik", "provision-missing"], env=env)
    assert again.exit_code == 0 and "0 project(s) provisioned" in again.stdout
    assert len(contract.state.providers) == 1


def test_g8_deleting_an_org_deletes_every_project_application_in_authentik(
    ak_harness: Harness, contract: RunningContract
) -> None:
    """The org's projects go through the project service: no provider or application stays live in
    Authentik with working client credentials once Silver has forgotten them."""
    owner, org_id = _world(ak_harness)
    project_ids = [ak_harness.project(owner, org_id, name)["id"] for name in ("Web", "Mobile")]
    assert len(contract.state.providers) == 2 and len(contract.state.applications) == 2
    owner.ok("DELETE", f"{CONSOLE}/orgs/{org_id}", 204)
    assert contract.state.providers == {}
    assert contract.state.applications == {}
    assert all(_row(ak_harness, project_id) is None for project_id in project_ids)


def test_a_failed_delete_in_authentik_keeps_the_org(ak_harness: Harness, contract: RunningContract) -> None:
    owner, org_id = _world(ak_harness)
    ak_harness.project(owner, org_id)
    contract.state.fail_next[("DELETE", "/core/applications/")] = 500
    response = owner.delete(f"{CONSOLE}/orgs/{org_id}")
    assert response.status_code == 502, response.text
    assert owner.ok("GET", f"{CONSOLE}/orgs/{org_id}")["id"] == org_id
    assert len(contract.state.providers) == 1


@pytest.mark.skipif(
    BACKEND != "postgres",
    reason="SQLite has one database-wide write lock per transaction; production runs Postgres (G20)",
)
def test_no_authentik_call_is_made_while_the_audit_log_is_locked(
    ak_harness: Harness, contract: RunningContract
) -> None:
    """While the service waits for Authentik (creating a project), an audited write of another org in
    another transaction goes through at once: a slow Authentik stalls no one else's writes."""
    owner, org_id = _world(ak_harness)
    other_org = ak_harness.org(owner, "Elsewhere")["id"]
    outcomes: list[str] = []

    async def audited_write() -> str:
        engine = create_engine(ak_harness.settings)
        try:
            async with transaction(create_sessionmaker(engine)) as db:
                await db.execute(text("SET LOCAL lock_timeout = '2s'"))
                await record(db, AuditAction.ORG_UPDATED, actor=CLI_ACTOR, org_id=other_org, target=other_org)
            return "written"
        except DBAPIError as error:
            return f"blocked: {error.orig}"
        finally:
            await engine.dispose()

    def meanwhile(method: str, path: str) -> None:
        if method in ("POST", "PATCH", "PUT"):
            outcomes.append(asyncio.run(audited_write()))

    contract.state.on_call = meanwhile
    ak_harness.project(owner, org_id)
    assert outcomes and outcomes == ["written"] * len(outcomes)
