"""`doctor` against a real production-like deployment: correct, it reports no fail; with exactly one
setting broken, exactly that guide line fails (with its checklist twin where the launch checklist
restates a line: G6/L5, G7/L6, G22/L3; and G24/L4 when no drill ever ran).

The deployment: production settings with strong unique secrets and https public URLs, the data
directory 0700 and env.backup 0600, a real API process on 127.0.0.1 behind a real Caddy (`tls
internal`), Postgres on loopback, an MFA-enrolled platform admin, a live https webhook endpoint,
recent backup, drill and monitor runs (begin_run/finish_run, as the commands record them) and a
test alert delivered to a real JSON receiver. Postgres only: production refuses SQLite (G20/G22)."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from silver_auth.ops.doctor import DoctorOptions, DoctorReport, run_doctor
from silver_auth.ops.doctor.checks.steps import LINES as UNOBSERVABLE
from tests.alerts.support import json_url
from tests.conftest import BACKEND, base_settings
from tests.ops.doctor_support import (
    Edge,
    Records,
    caddy,
    owner_only_files,
    production_settings,
    public_forwarder,
    public_listener,
    seed,
    strong,
)
from tests.processes import ApiProcess, free_port, settings_env
from tests.webhooks.support import Receiver, receiver

pytestmark = [
    pytest.mark.slow,  # a real API process and Caddy
    pytest.mark.skipif(
        BACKEND != "postgres",
        reason="a production deployment runs Postgres (G20/G22); run with SILVER_TEST_DB=postgres",
    ),
]


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[ApiProcess]:
    """The API process the edge proxies to, on a loopback port (G5). Its own database: a process with
    background work (the audit sealer) must not touch the one each test empties and doctor reads."""
    directory = tmp_path_factory.mktemp("api")
    database = directory / "api.db"
    shutil.copy(sqlite_template, database)
    settings = base_settings(directory, DATABASE_URL=f"sqlite+aiosqlite:///{database}")
    process = ApiProcess(settings_env(settings), directory / "api.log")
    process.start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory, api: ApiProcess) -> Iterator[Edge]:
    with caddy(tmp_path_factory.mktemp("edge"), api.port) as running:
        yield running


@pytest.fixture
def alert_channel() -> Iterator[Receiver]:
    with receiver() as target:
        yield target


@dataclass
class Deployment:
    """One deployment to build: the correct one, unless a case changes one thing."""

    tmp_path: Path
    database_url: str
    api_port: int
    alert_url: str
    stack: ExitStack
    password: str = field(default_factory=strong)
    overrides: dict[str, Any] = field(default_factory=dict)
    records: Records = field(default_factory=Records)
    edge_variant: str = "correct"
    after_files: Callable[[Path, Path], None] | None = None
    """(data dir, env.backup) -> None: a change to the files once they are made right."""

    def settings(self) -> Any:
        return production_settings(
            self.tmp_path,
            self.database_url,
            self.api_port,
            password=self.password,
            **{"SILVER_ALERT_URLS": self.alert_url, **self.overrides},
        )


def doctor_on(deployment: Deployment, edge: Edge) -> DoctorReport:
    settings = deployment.settings()
    owner_only_files(settings)
    if deployment.after_files is not None:
        deployment.after_files(settings.data_dir, settings.backup_env_path)
    seed(settings, deployment.records)
    if deployment.edge_variant != "correct":
        edge = deployment.stack.enter_context(
            caddy(deployment.tmp_path / "edge", deployment.api_port, deployment.edge_variant)
        )
    options = DoctorOptions(
        url=edge.url, accounts_url=edge.url, ca_file=edge.ca_file, http_port=edge.http_port
    )
    return asyncio.run(run_doctor(settings, options))


def failing(report: DoctorReport) -> set[str]:
    return {finding.line for finding in report.findings if finding.status == "fail"}


def explain(report: DoctorReport) -> str:
    return "\n".join(
        f"{f.line} {f.status}: {f.check}: {f.detail}" for f in report.findings if f.status in ("fail", "warn")
    )


@pytest.fixture
def deployment(
    tmp_path: Path, database_url: str, api: ApiProcess, alert_channel: Receiver
) -> Iterator[Deployment]:
    with ExitStack() as stack:
        yield Deployment(tmp_path, database_url, api.port, json_url(alert_channel), stack)


def test_a_correct_deployment_passes_every_line_doctor_can_see(deployment: Deployment, edge: Edge) -> None:
    report = doctor_on(deployment, edge)
    assert failing(report) == set(), explain(report)
    observable = [finding for finding in report.findings if finding.line not in UNOBSERVABLE]
    assert {finding.line: finding.status for finding in observable if finding.status != "pass"} == {}, (
        explain(report)
    )
    assert report.exit_code() == 0
    assert report.exit_code(strict=True) == 0


# --- one case per checkable line: the change, and the lines it must fail ------------------------------


def _set(**overrides: Any) -> Callable[[Deployment], None]:
    return lambda deployment: deployment.overrides.update(overrides)


def _records(**changes: Any) -> Callable[[Deployment], None]:
    def change(deployment: Deployment) -> None:
        for name, value in changes.items():
            setattr(deployment.records, name, value)

    return change


def _edge(variant: str) -> Callable[[Deployment], None]:
    return lambda deployment: setattr(deployment, "edge_variant", variant)


def _api_port_on_every_interface(deployment: Deployment) -> None:
    port = free_port()
    deployment.stack.enter_context(public_listener(port))
    deployment.overrides["SILVER_BIND_PORT"] = port


def _postgres_on_every_interface(deployment: Deployment) -> None:
    url = make_url(deployment.database_url)
    port = free_port()
    deployment.stack.enter_context(public_forwarder(port, (url.host or "127.0.0.1", url.port or 5432)))
    deployment.database_url = url.set(port=port).render_as_string(hide_password=False)


def _same_database_passwords(deployment: Deployment) -> None:
    deployment.overrides["AUTHENTIK_PG_PASS"] = deployment.password


def _env_backup_readable(deployment: Deployment) -> None:
    deployment.after_files = lambda _data, env_backup: env_backup.chmod(0o644)


def _data_dir_open(deployment: Deployment) -> None:
    deployment.after_files = lambda data, _env_backup: data.chmod(0o755)


def _no_alert_channel(deployment: Deployment) -> None:
    deployment.alert_url = ""
    deployment.overrides["SILVER_ALERT_URLS"] = None
    deployment.records.alert_sent = False


def _email_alert_channel(deployment: Deployment) -> None:
    deployment.alert_url = "mailto://oncall:" + strong() + "@mail.seqn.in"
    deployment.records.alert_sent = False


CASES = [
    pytest.param(_edge("http-serves"), {"G1"}, id="G1-plain-http-serves-content"),
    pytest.param(_set(SILVER_AUTH_URL="http://auth.seqn.in"), {"G1"}, id="G1-public-url-http"),
    pytest.param(_edge("no-hsts"), {"G2"}, id="G2-no-hsts"),
    pytest.param(_edge("hsts-without-subdomains"), {"G2"}, id="G2-hsts-without-subdomains"),
    pytest.param(_edge("no-nosniff"), {"G3"}, id="G3-no-nosniff"),
    pytest.param(_set(SILVER_BIND_HOST="0.0.0.0"), {"G5"}, id="G5-bind-host-every-interface"),  # noqa: S104
    pytest.param(_api_port_on_every_interface, {"G5"}, id="G5-api-port-listening-on-0.0.0.0"),
    pytest.param(_records(admin_mfa=False), {"G6", "L5"}, id="G6-admin-without-mfa"),
    pytest.param(_records(admin_active=False), {"G7", "L6"}, id="G7-deactivated-account-in-seqn-a"),
    pytest.param(_set(SESSION_COOKIE_SECURE=False), {"G11"}, id="G11-cookie-not-secure"),
    pytest.param(_set(SESSION_COOKIE_SAMESITE="None"), {"G12"}, id="G12-samesite-none-unreviewed"),
    pytest.param(_set(SESSION_SECRET="abcd" * 10), {"G13"}, id="G13-patterned-secret"),
    pytest.param(_set(SESSION_SECRET="Zq8" + "x" * 12), {"G13"}, id="G13-short-secret"),
    pytest.param(_set(SILVER_KEY_PEPPER="pepper"), {"G17"}, id="G17-weak-pepper"),
    pytest.param(_postgres_on_every_interface, {"G20"}, id="G20-postgres-port-on-0.0.0.0"),
    pytest.param(_same_database_passwords, {"G21"}, id="G21-shared-database-password"),
    pytest.param(_set(AUTHENTIK_PG_PASS="authentik"), {"G21"}, id="G21-weak-authentik-password"),
    pytest.param(_records(backup_age_hours=30.0), {"G22", "L3"}, id="G22-stale-backup"),
    pytest.param(_records(backup_offsite=False), {"G22", "L3"}, id="G22-no-offsite-copy"),
    pytest.param(_records(backup_age_hours=None), {"G22", "L3"}, id="G22-no-backup"),
    pytest.param(_env_backup_readable, {"G23"}, id="G23-env-backup-0644"),
    pytest.param(_data_dir_open, {"G23"}, id="G23-data-dir-0755"),
    pytest.param(_records(drill_age_days=40.0), {"G24"}, id="G24-stale-drill"),
    pytest.param(_records(drill_age_days=None), {"G24", "L4"}, id="G24-L4-no-drill-ever"),
    pytest.param(
        _records(endpoint_url="http://hooks.customer.example/seqn"), {"G30"}, id="G30-http-live-endpoint"
    ),
    pytest.param(_set(SILVER_RATE_LIMIT_ENABLED=False), {"G35"}, id="G35-limiter-off"),
    pytest.param(_records(monitor_age_minutes=None), {"L1"}, id="L1-never-monitored"),
    pytest.param(_records(monitor_age_minutes=45.0), {"L1"}, id="L1-monitor-stopped"),
    pytest.param(_no_alert_channel, {"L2"}, id="L2-no-alert-channel"),
    pytest.param(_email_alert_channel, {"L2"}, id="L2-email-alert-channel"),
    pytest.param(_edge("other-plans"), {"L7"}, id="L7-other-plan-names-served"),
    pytest.param(_edge("no-exclusion"), {"L8"}, id="L8-exclusion-not-stated"),
]


@pytest.mark.parametrize(("breaking", "lines"), CASES)
def test_exactly_the_broken_line_fails(
    deployment: Deployment, edge: Edge, breaking: Callable[[Deployment], None], lines: set[str]
) -> None:
    breaking(deployment)
    report = doctor_on(deployment, edge)
    assert failing(report) == lines, explain(report)
    assert report.exit_code() == 1
