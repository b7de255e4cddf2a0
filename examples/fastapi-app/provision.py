"""Provisions what the example app needs on the embedded default (`silver-auth dev`), the first time:
a developer account (through the CLI, the password on stdin), an org, a project with
`{EXAMPLE_URL}/callback` as a redirect URL, and a test secret key (through the console API).

Idempotent: what it made is kept in `{data dir}/example-app.json` (mode 0600, beside the service's
own secrets) and reused on the next run while the secret key still works; a piece that is missing is
made again. The secret key is never printed.

    python examples/fastapi-app/provision.py   # prints the project id and the state file's path
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

ENVIRONMENT = "test"


def state_file(data_dir: Path) -> Path:
    return data_dir / "example-app.json"


def _load(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    loaded = json.loads(path.read_text())
    return loaded if isinstance(loaded, dict) else {}


def _save(path: Path, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        json.dump(state, out, indent=2)
    os.chmod(path.with_suffix(".tmp"), 0o600)
    os.replace(path.with_suffix(".tmp"), path)


def _ok(response: httpx.Response, *statuses: int) -> Any:
    if response.status_code not in (statuses or (200, 201)):
        # the answer's problem only: no request body (a password) or header (a key) is echoed
        raise SystemExit(
            f"{response.request.method} {response.request.url.path}: {response.status_code} {response.text}"
        )
    return response.json()


def _key_works(auth_url: str, state: dict[str, Any]) -> bool:
    key = state.get("secret_key")
    if not key:
        return False
    answer = httpx.get(
        f"{auth_url}/v1/backend/project", headers={"authorization": f"Bearer {key}"}, timeout=10
    )
    return answer.status_code == 200 and answer.json()["project"]["id"] == state.get("project_id")


def provision(auth_url: str, example_url: str, data_dir: Path, cli: Path) -> dict[str, Any]:
    """The provisioned settings (`auth_url`, `project_id`, `environment`, `secret_key`), made once."""
    path = state_file(data_dir)
    state = _load(path)
    callback = f"{example_url.rstrip('/')}/callback"
    if _key_works(auth_url, state) and callback in state.get("redirect_urls", []):
        return state
    if not state.get("email"):
        state["email"] = f"example-app-{secrets.token_hex(3)}@example.com"
        state["password"] = secrets.token_urlsafe(24)
        created = subprocess.run(  # noqa: S603 - the venv's own console script, fixed arguments
            [str(cli), "account", "create", state["email"], "--password-stdin"],
            input=state["password"],
            text=True,
            capture_output=True,
            check=False,
        )
        if created.returncode != 0:
            raise SystemExit(f"silver-auth account create failed: {created.stderr.strip()}")
        _save(path, state)
    with httpx.Client(base_url=auth_url, timeout=10) as console:
        me = _ok(
            console.post(
                "/console/api/sign-in", json={"email": state["email"], "password": state["password"]}
            )
        )
        console.headers["x-csrf-token"] = me["csrf_token"]
        if not state.get("org_id"):
            state["org_id"] = _ok(console.post("/console/api/orgs", json={"name": "Example"}), 201)["id"]
            _save(path, state)
        if not state.get("project_id"):
            made = console.post(f"/console/api/orgs/{state['org_id']}/projects", json={"name": "Example app"})
            state["project_id"] = _ok(made, 201)["id"]
            _save(path, state)
        project = _ok(
            console.post(f"/console/api/projects/{state['project_id']}/redirect-urls", json={"url": callback})
        )
        state["redirect_urls"] = project["redirect_urls"]
        if not _key_works(auth_url, state):
            body = {"kind": "secret", "environment": ENVIRONMENT}
            state["secret_key"] = _ok(
                console.post(f"/console/api/projects/{state['project_id']}/keys", json=body), 201
            )["key"]
        state |= {"auth_url": auth_url, "environment": ENVIRONMENT}
        _save(path, state)
    return state


def main() -> None:
    auth_url = os.environ.get("SEQN_AUTH_URL", "http://127.0.0.1:8000").rstrip("/")
    example_url = os.environ.get("EXAMPLE_URL", "http://127.0.0.1:3000")
    data_dir = Path(os.environ.get("SILVER_DATA_DIR", ".silver"))
    state = provision(auth_url, example_url, data_dir, Path(sys.executable).parent / "silver-auth")
    print(f"project {state['project_id']} ({state['environment']}); settings in {state_file(data_dir)}")  # noqa: T201


if __name__ == "__main__":
    main()
