"""`make example`: the embedded default service on http://127.0.0.1:8000 (started here unless one
already answers there) beside the example app on EXAMPLE_URL (http://127.0.0.1:3000).

With SEQN_AUTH_URL, SEQN_PROJECT_ID and SEQN_SECRET_KEY set, it runs only the app against them;
otherwise provision.py makes (once) and reads back an account, a project and a key on the embedded
default. Ctrl-C stops both.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
DEFAULT_AUTH_URL = "http://127.0.0.1:8000"
STARTUP_SECONDS = 60


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def _start_service() -> subprocess.Popen[bytes] | None:
    if _answers(DEFAULT_AUTH_URL):
        print(f"using the service already running on {DEFAULT_AUTH_URL}")  # noqa: T201
        return None
    service = subprocess.Popen([str(BIN / "silver-auth"), "dev"])  # noqa: S603 - the venv's console script
    deadline = time.monotonic() + STARTUP_SECONDS
    while not _answers(DEFAULT_AUTH_URL):
        if service.poll() is not None or time.monotonic() > deadline:
            service.terminate()
            raise SystemExit("silver-auth dev did not start (is port 8000 taken?)")
        time.sleep(0.2)
    return service


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    # Ctrl-C, or a SIGTERM from a supervisor, stops both: the app (subprocess.run kills it on the
    # way out) and the service, if it was started here.
    signal.signal(signal.SIGTERM, _interrupted)
    signal.signal(signal.SIGINT, _interrupted)
    env = dict(os.environ)
    example_url = env.setdefault("EXAMPLE_URL", "http://127.0.0.1:3000").rstrip("/")
    service = None
    try:
        if not (env.get("SEQN_AUTH_URL") and env.get("SEQN_PROJECT_ID") and env.get("SEQN_SECRET_KEY")):
            service = _start_service()
            sys.path.insert(0, str(HERE))
            from provision import provision, state_file  # noqa: PLC0415 - beside this script

            data_dir = Path(env.get("SILVER_DATA_DIR", ".silver"))
            state = provision(DEFAULT_AUTH_URL, example_url, data_dir, BIN / "silver-auth")
            env |= {
                "SEQN_AUTH_URL": DEFAULT_AUTH_URL,
                "SEQN_PROJECT_ID": state["project_id"],
                "SEQN_ENVIRONMENT": state["environment"],
                "SEQN_SECRET_KEY": state["secret_key"],
            }
            print(f"project {state['project_id']}: settings in {state_file(data_dir)}")  # noqa: T201
        where = urlsplit(example_url)
        print(f"the example app: {example_url}/")  # noqa: T201
        command = [
            str(BIN / "python"),
            "-m",
            "uvicorn",
            "--app-dir",
            str(HERE),
            "app:app",
            "--host",
            where.hostname or "127.0.0.1",
            "--port",
            str(where.port or 3000),
        ]
        subprocess.run(command, env=env, check=False)  # noqa: S603 - fixed arguments
    except KeyboardInterrupt:
        pass
    finally:
        if service is not None:
            service.terminate()
            service.wait(timeout=20)


if __name__ == "__main__":
    main()
