"""`silver-auth secrets reseal` (G17): every sealed value moves to the key ring's first key, so the old
key can leave the ring; the service then still opens everything: webhook deliveries verify, console and
end-user TOTP codes are accepted, session JWTs are signed, the Authentik client secret opens."""

from __future__ import annotations

import base64
import json
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyotp
import pytest
from sqlalchemy import select, update
from standardwebhooks.webhooks import Webhook

from silver_auth.audit.service import Actor
from silver_auth.authentik.applications import secret_context as authentik_secret_context
from silver_auth.authentik.models import AuthentikApplication
from silver_auth.core import clock
from silver_auth.core.crypto import Sealer
from silver_auth.db.migrations.env import target_metadata
from silver_auth.db.session import transaction
from silver_auth.mfa.factors import factor_of
from silver_auth.mfa.models import TotpFactor
from silver_auth.ops.reseal import SEALED_COLUMNS, UnopenableValue, reseal_all
from silver_auth.projects.models import Project
from silver_auth.signing.models import SigningKey
from silver_auth.signing.service import SessionClaims, current_key, issue_jwt, verify_jwt
from silver_auth.webhooks.models import WebhookEndpoint
from silver_auth.webhooks.service import secret_context as webhook_secret_context
from tests.accounts.support import enable_mfa, mfa_sign_in
from tests.factories import Harness
from tests.test_cli import Result, Runner, run
from tests.webhooks.support import (
    deliver,
    project_with_endpoint,
    receiver,
    v1a_verifies,
    worker_settings,
)

__all__ = ["run"]


def _key(kid: str) -> tuple[str, str]:
    return kid, base64.b64encode(secrets.token_bytes(32)).decode()


A, B, C = _key("a"), _key("b"), _key("c")


def ring(*keys: tuple[str, str]) -> str:
    return ",".join(f"{kid}:{material}" for kid, material in keys)


@contextmanager
def served(apps: Any, tmp_path: Path, database_url: str, keys: str) -> Iterator[Harness]:
    with apps.serve(worker_settings(tmp_path, database_url, SILVER_SEALING_KEYS=keys)) as client:
        yield Harness(client, client.app.state.runtime.settings)


@dataclass
class Planted:
    """What was sealed under key `a`, in clear, to check against once `a` is gone."""

    target_url: str
    project_id: str
    console_email: str
    console_totp: str
    end_user_id: str
    end_user_totp: str
    hmac_endpoint: str
    hmac_old_secret: str
    hmac_new_secret: str
    ed25519_endpoint: str
    ed25519_public_key: str
    authentik_client_secret: str
    signing_kid: str


def plant(harness: Harness, target_url: str) -> Planted:
    """One sealed value of every kind, each made by the code that makes it in the service."""
    owner, project, hmac = project_with_endpoint(harness, target_url)
    rotated = owner.ok(
        "POST", f"/console/api/webhooks/{hmac['id']}/rotate-secret", 200, json={"overlap_hours": 24}
    )
    ed25519 = owner.ok(
        "POST",
        f"/console/api/projects/{project['id']}/webhooks",
        201,
        json={"url": target_url, "environment": "test", "signing": "ed25519"},
    )
    console_totp = enable_mfa(owner).secret
    sk = harness.key(owner, project["id"], "secret", "test")["key"]
    harness.client.cookies.clear()
    created = harness.client.post(
        "/v1/backend/users",
        json={"email": "ada@example.com"},
        headers={"authorization": f"Bearer {sk}"},
    )
    assert created.status_code == 201, created.text
    end_user_id = created.json()["id"]
    authentik_secret = secrets.token_urlsafe(32)
    runtime = harness.runtime

    async def work() -> tuple[str, str]:
        async with transaction(runtime.sessionmaker) as db:
            enrolment = await runtime.second_factors.factors.start_enrolment(
                db, end_user_id, label="ada@example.com", issuer="SEQN Auth", already_on="on"
            )
            row = await db.get(Project, project["id"])
            assert row is not None
            key = await current_key(db, runtime.settings, row, actor=Actor("system"))
            db.add(
                AuthentikApplication(
                    project_id=project["id"],
                    provider_pk=1,
                    application_slug=f"silver-{project['id']}",
                    client_id="client",
                    client_secret_sealed=runtime.sealer.seal(
                        authentik_secret, authentik_secret_context(project["id"])
                    ),
                    created_at=clock.now(),
                    secret_rotated_at=None,
                )
            )
            return enrolment.secret, key.id

    end_user_totp, signing_kid = harness.run(work)
    return Planted(
        target_url=target_url,
        project_id=project["id"],
        console_email=owner.email,
        console_totp=console_totp,
        end_user_id=end_user_id,
        end_user_totp=end_user_totp,
        hmac_endpoint=hmac["id"],
        hmac_old_secret=hmac["secret"],
        hmac_new_secret=rotated["secret"],
        ed25519_endpoint=ed25519["id"],
        ed25519_public_key=ed25519["public_key"],
        authentik_client_secret=authentik_secret,
        signing_kid=signing_kid,
    )


def sealed_kids(harness: Harness) -> set[str]:
    """The key id of every sealed value in the database, read column by column (not through the
    reseal's own list)."""

    async def work() -> set[str]:
        async with harness.runtime.sessionmaker() as db:
            values = [
                *(await db.scalars(select(WebhookEndpoint.secret_sealed))).all(),
                *(await db.scalars(select(WebhookEndpoint.previous_secret_sealed))).all(),
                *(await db.scalars(select(TotpFactor.secret_sealed))).all(),
                *(await db.scalars(select(AuthentikApplication.client_secret_sealed))).all(),
                *(await db.scalars(select(SigningKey.private_sealed))).all(),
            ]
        return {value.split(".")[1] for value in values if value is not None}

    return harness.run(work)


def counts(result: Result) -> dict[str, tuple[int, int]]:
    assert result.returncode == 0, result
    found = re.findall(r"^(\w+): (\d+) resealed, (\d+) already under `b`$", result.stdout, re.MULTILINE)
    return {kind: (int(moved), int(current)) for kind, moved, current in found}


def no_secret_in(result: Result, planted: Planted) -> None:
    text = result.stdout + result.stderr
    for value in (
        planted.console_totp,
        planted.end_user_totp,
        planted.hmac_old_secret,
        planted.hmac_new_secret,
        planted.authentik_client_secret,
        A[1],
        B[1],
    ):
        assert value not in text


@pytest.mark.slow  # the reseal runs as the real CLI, in a subprocess
def test_g17_reseal_moves_everything_to_the_new_key_and_the_old_key_can_go(
    apps: Any, tmp_path: Path, database_url: str, run: Runner
) -> None:
    with receiver() as target:
        with served(apps, tmp_path, database_url, ring(A)) as before:
            planted = plant(before, target.url)
            assert sealed_kids(before) == {"a"}

        first = run("secrets", "reseal", SILVER_SEALING_KEYS=ring(B, A))
        assert counts(first) == {
            "webhook_endpoint_secret": (2, 0),
            "webhook_endpoint_previous_secret": (1, 0),
            "console_totp_secret": (1, 0),
            "end_user_totp_secret": (1, 0),
            "authentik_client_secret": (1, 0),
            "signing_key": (1, 0),
        }, first
        no_secret_in(first, planted)
        # Idempotent: a second run opens everything again and moves nothing.
        again = run("secrets", "reseal", SILVER_SEALING_KEYS=ring(B, A))
        assert all(moved == 0 for moved, _ in counts(again).values()), again
        assert sum(current for _, current in counts(again).values()) == 7, again

        with served(apps, tmp_path, database_url, ring(B)) as after:
            assert sealed_kids(after) == {"b"}
            check_everything_opens(after, planted, target)


def check_everything_opens(harness: Harness, planted: Planted, target: Any) -> None:
    """With key `b` alone: deliveries verify, TOTP codes work, JWTs sign, the client secret opens."""
    owner = mfa_sign_in(harness, planted.console_email, planted.console_totp)
    for endpoint_id in (planted.hmac_endpoint, planted.ed25519_endpoint):
        owner.ok("POST", f"/console/api/webhooks/{endpoint_id}/test", 202)
    deliver(harness)  # the tests, and the events of the planting (user.created, key.created)
    tests = [r for r in target.received if json.loads(r.body)["type"] == "webhook.test"]
    assert len(tests) == 2
    for got in target.received:
        if json.loads(got.body)["data"].get("endpoint_id") == planted.ed25519_endpoint or (
            "v1a," in got.headers["webhook-signature"]
        ):
            assert v1a_verifies(planted.ed25519_public_key, got)
        else:  # still in the rotation's overlap: signed with both secrets
            assert got.headers["webhook-signature"].count("v1,") == 2
            for secret in (planted.hmac_old_secret, planted.hmac_new_secret):
                Webhook(secret).verify(got.body, got.headers)
    runtime = harness.runtime

    async def work() -> tuple[bool, str, str]:
        async with transaction(runtime.sessionmaker) as db:
            factor = await factor_of(db, planted.end_user_id)
            code = pyotp.TOTP(planted.end_user_totp).at(clock.now())
            accepted = await runtime.second_factors.factors.use_code(
                db, factor, totp_code=code, recovery_code=None
            )
            key = await db.get(SigningKey, planted.signing_kid)
            assert key is not None
            claims = SessionClaims(planted.project_id, "test", planted.end_user_id, "sess_none")
            token, _ = issue_jwt(runtime.settings, key, claims)
            verified = await verify_jwt(db, runtime.settings, planted.project_id, token)
            row = await db.get(AuthentikApplication, planted.project_id)
            assert row is not None
            opened = runtime.sealer.unseal(row.client_secret_sealed, authentik_secret_context(row.project_id))
            return accepted, verified["sub"], opened

    accepted, subject, client_secret = harness.run(work)
    assert accepted is True
    assert subject == planted.end_user_id
    assert client_secret == planted.authentik_client_secret


@pytest.mark.slow
def test_reseal_fails_in_one_line_naming_the_row_a_value_the_ring_cannot_open(
    apps: Any, tmp_path: Path, database_url: str, run: Runner
) -> None:
    with served(apps, tmp_path, database_url, ring(A)) as harness:
        _, _, endpoint = project_with_endpoint(harness, "http://127.0.0.1:9/hooks")
        stranded = Sealer([(C[0], base64.b64decode(C[1]))]).seal(
            endpoint["secret"], webhook_secret_context(endpoint["id"])
        )

        async def strand() -> None:
            async with transaction(harness.runtime.sessionmaker) as db:
                await db.execute(
                    update(WebhookEndpoint)
                    .where(WebhookEndpoint.id == endpoint["id"])
                    .values(secret_sealed=stranded)
                )

        harness.run(strand)
    result = run("secrets", "reseal", SILVER_SEALING_KEYS=ring(B, A))
    line = result.one_line_failure()
    assert f"webhook_endpoint_secret of {endpoint['id']} cannot be opened" in line
    assert "not in SILVER_SEALING_KEYS" in line
    assert endpoint["secret"] not in result.stderr and stranded not in result.stderr


def test_a_sealed_value_copied_onto_another_row_stops_the_reseal(
    apps: Any, tmp_path: Path, database_url: str
) -> None:
    with served(apps, tmp_path, database_url, ring(A)) as harness:
        owner, project, first = project_with_endpoint(harness, "http://127.0.0.1:9/hooks")
        second = owner.ok(
            "POST",
            f"/console/api/projects/{project['id']}/webhooks",
            201,
            json={"url": "http://127.0.0.1:9/other", "environment": "test"},
        )
        runtime = harness.runtime

        async def copy_then_reseal() -> None:
            async with transaction(runtime.sessionmaker) as db:
                source = await db.get(WebhookEndpoint, first["id"])
                assert source is not None
                await db.execute(
                    update(WebhookEndpoint)
                    .where(WebhookEndpoint.id == second["id"])
                    .values(secret_sealed=source.secret_sealed)
                )
            new_ring = Sealer([(kid, base64.b64decode(material)) for kid, material in (B, A)])
            with pytest.raises(UnopenableValue) as refused:
                await reseal_all(runtime.sessionmaker, new_ring)
            assert refused.value.detail.startswith(f"webhook_endpoint_secret of {second['id']} cannot")
            assert "copied from another row" in refused.value.detail

        harness.run(copy_then_reseal)


def test_every_sealed_column_is_resealed() -> None:
    """A new `…_sealed` column must join SEALED_COLUMNS, or rotating the sealing key would strand it."""
    in_schema = {
        (table.name, column.name)
        for table in target_metadata.sorted_tables
        for column in table.columns
        if column.name.endswith("_sealed")
    }
    covered = {(c.model.__table__.name, c.sealed.key) for c in SEALED_COLUMNS}  # type: ignore[attr-defined]
    assert covered == in_schema


def test_reseal_pages_through_batches_and_a_second_run_moves_nothing(
    apps: Any, tmp_path: Path, database_url: str
) -> None:
    with served(apps, tmp_path, database_url, ring(A)) as harness:
        for n in range(2):  # two projects of two endpoints (the Free plan's quota)
            owner, project, _ = project_with_endpoint(harness, "http://127.0.0.1:9/hooks")
            owner.ok(
                "POST",
                f"/console/api/projects/{project['id']}/webhooks",
                201,
                json={"url": f"http://127.0.0.1:9/hooks/{n}", "environment": "test"},
            )
        runtime = harness.runtime
        new_ring = Sealer([(kid, base64.b64decode(material)) for kid, material in (B, A)])

        async def twice() -> tuple[Any, Any]:
            first = await reseal_all(runtime.sessionmaker, new_ring, batch=3)  # pages of 3 and 1
            return first, await reseal_all(runtime.sessionmaker, new_ring, batch=2)  # 2, 2, then none

        first, second = harness.run(twice)
        moved = first.counts["webhook_endpoint_secret"]
        assert (moved.resealed, moved.current, moved.changed_meanwhile) == (4, 0, 0)
        again = second.counts["webhook_endpoint_secret"]
        assert (again.resealed, again.current) == (0, 4)
        assert sealed_kids(harness) == {"b"}
