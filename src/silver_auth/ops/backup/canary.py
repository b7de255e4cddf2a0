"""The drill's last proof (G24, L4): the real app, started on the restored copy in a short-lived process
of its own, verifies a canary secret key and signs a canary console account in. The canary secrets are
read from files named by the settings (or the command's options) and reach the app only over loopback
HTTP, never an argument, a log line or the drill's record."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from silver_auth.core import clock
from silver_auth.ops.backup.errors import BackupError
from silver_auth.ops.files import permission_problem
from silver_auth.settings import Settings

STOP_SECONDS = 10.0
REQUEST_SECONDS = 15.0


@dataclass(frozen=True, slots=True)
class Canary:
    secret_key: str = field(repr=False)
    account: str
    password: str = field(repr=False)

    @property
    def secrets(self) -> tuple[str, str]:
        return self.secret_key, self.password


def _read_secret(path: Path | None, what: str, setting: str, option: str) -> str:
    if path is None:
        raise BackupError(f"no {what}: set {setting} (or pass {option}) to a file holding it")
    problem = permission_problem(path)
    if problem is not None:
        raise BackupError(f"the {what} file is refused: {problem}")
    value = path.read_text().strip()
    if not value:
        raise BackupError(f"the {what} file {path} is empty")
    return value


def read_canary(
    settings: Settings, *, key_file: Path | None, account: str | None, password_file: Path | None
) -> Canary:
    """The canary credentials: options first, then the settings; each secret from an owner-only file."""
    secret_key = _read_secret(
        key_file or settings.drill_canary_key_path,
        "canary secret key",
        "SILVER_RESTORE_DRILL_CANARY_KEY_FILE",
        "--canary-key-file",
    )
    if not secret_key.startswith("sk_"):
        raise BackupError("the canary secret key file does not hold an sk_… key")
    email = account or settings.restore_drill_canary_account
    if not email:
        raise BackupError(
            "no canary account: set SILVER_RESTORE_DRILL_CANARY_ACCOUNT (or pass --canary-account) to the "
            "email of a console account kept for drills"
        )
    password = _read_secret(
        password_file or settings.restore_drill_canary_password_file,
        "canary account password",
        "SILVER_RESTORE_DRILL_CANARY_PASSWORD_FILE",
        "--canary-password-file",
    )
    return Canary(secret_key, email, password)


def _app_environment(settings: Settings, database_url: str, data_dir: Path, port: int) -> dict[str, str]:
    """The restored copy's app: the live secrets (keys and sealed values must open), no alert channel,
    no webhook delivery (the copy's pending events must not reach real receivers), the builtin identity."""
    secrets = {
        "SESSION_SECRET": settings.secret("session_secret").decode(),
        "SILVER_KEY_PEPPER": settings.secret("key_pepper").decode(),
    }
    if settings.sealing_keys is not None:
        secrets["SILVER_SEALING_KEYS"] = settings.sealing_keys.get_secret_value()
    passed = {name: os.environ[name] for name in ("PATH", "HOME", "LANG") if name in os.environ}
    return (
        passed
        | secrets
        | {
            "SILVER_ENV": "development",
            "SILVER_IDENTITY": "builtin",
            "DATABASE_URL": database_url,
            "SILVER_DATA_DIR": str(data_dir),
            "SILVER_BIND_PORT": str(port),
            "SILVER_WEBHOOK_WORKER": "external",
            "SILVER_METRICS_PORT": "0",
            "SILVER_LOG_LEVEL": "WARNING",
            "SILVER_ACCESS_LOG": "false",
            "SESSION_COOKIE_NAME": settings.session_cookie_name,
        }
    )


@asynccontextmanager
async def scratch_app(settings: Settings, database_url: str, workdir: Path) -> AsyncIterator[str]:
    """The app on the restored copy, on a loopback port of its own; answers its base URL once /health
    answers, and stops it when the block ends."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    port = int(listener.getsockname()[1])
    base = f"http://127.0.0.1:{port}"
    (workdir / "app-data").mkdir(mode=0o700, exist_ok=True)
    log = (workdir / "app.log").open("wb")
    try:
        # Handed over bound (uvicorn --fd): no other process can take the port meanwhile.
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "silver_auth.app:asgi",
            "--fd",
            str(listener.fileno()),
            "--log-level",
            "warning",
            cwd=workdir,  # no .env of the operator's is read: its alert channels must not hear the copy
            env=_app_environment(settings, database_url, workdir / "app-data", port),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            pass_fds=(listener.fileno(),),
        )
    finally:
        listener.close()
        log.close()
    try:
        await _wait_ready(process, base, settings.restore_drill_startup_seconds)
        yield base
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), STOP_SECONDS)
            except TimeoutError:
                process.kill()
                await process.wait()


async def _wait_ready(process: asyncio.subprocess.Process, base: str, within: float) -> None:
    deadline = clock.monotonic() + within
    async with httpx.AsyncClient(timeout=2) as client:
        while clock.monotonic() < deadline:
            if process.returncode is not None:
                raise BackupError(f"the app exited with code {process.returncode} on the restored copy")
            with suppress(httpx.TransportError):
                if (await client.get(f"{base}/health")).status_code == 200:
                    return
            with suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), 0.2)
    raise BackupError(f"the app did not answer /health on the restored copy within {within:.0f} s")


def _problem(response: httpx.Response) -> str:
    title = ""
    with suppress(ValueError, AttributeError):
        title = str(response.json().get("title", ""))
    return f"HTTP {response.status_code}{f' ({title})' if title else ''}"


async def check_canary(base: str, canary: Canary) -> dict[str, str]:
    """Prove the copy works: the canary key verifies and the canary account signs in."""
    async with httpx.AsyncClient(base_url=base, timeout=REQUEST_SECONDS) as client:
        answer = await client.get(
            "/v1/backend/project", headers={"authorization": f"Bearer {canary.secret_key}"}
        )
        if answer.status_code != 200:
            raise BackupError(
                f"the canary secret key does not verify on the restored copy: {_problem(answer)}"
            )
        project = str(answer.json().get("project", {}).get("id", ""))
        signed = await client.post(
            "/console/api/sign-in", json={"email": canary.account, "password": canary.password}
        )
        if signed.status_code != 200:
            raise BackupError(f"the canary account cannot sign in on the restored copy: {_problem(signed)}")
        second_step = bool(signed.json().get("mfa_required"))
    return {
        "canary_backend_key": f"verified (project {project})",
        "canary_sign_in": "password verified, MFA step next" if second_step else "signed in",
    }
