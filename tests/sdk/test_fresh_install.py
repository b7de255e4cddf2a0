"""The acceptance test of the SDK: `pip install ./sdk/python` into a fresh virtualenv (no service, no
test tools: only the SDK and what it depends on, from the package index through pip's cache), then a
small script in that virtualenv verifies a real session JWT of a running service and refuses a forged
one. It runs once per `make test`: on the SQLite leg only, and as a single test item, so no xdist
worker repeats it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest
from joserfc import jwt
from joserfc.jwk import OKPKey

from tests.endusers.support import CustomerProject
from tests.processes import ApiProcess
from tests.sdk.support import sign_in
from tests.sdk.test_verify import _parts

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.environ.get("SILVER_TEST_DB", "sqlite") == "postgres",
        reason="once per make test: the SQLite leg runs it",
    ),
]

ROOT = Path(__file__).resolve().parents[2]
INSTALL_SECONDS = 240  # bounded; a cold pip cache downloads httpx, joserfc and cryptography

SCRIPT = """
import json, sys
from seqn_auth import TokenVerifier, TokenVerificationError

auth_url, project_id, token, forged = sys.argv[1:5]
verifier = TokenVerifier(auth_url, project_id, "test")
claims = verifier.verify_session(token)
try:
    verifier.verify_session(forged)
    refused = None
except TokenVerificationError as error:
    refused = error.reason
print(json.dumps({"user_id": claims.user_id, "session_id": claims.session_id, "forged": refused}))
"""


def test_pip_install_in_a_fresh_venv_verifies_a_real_token(
    service: ApiProcess, project: CustomerProject, tmp_path: Path
) -> None:
    home = tmp_path / "venv"
    venv.create(home, with_pip=True)
    python = home / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    installed = subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "-q",
            "-c",
            str(ROOT / "constraints.txt"),
            str(ROOT / "sdk/python"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=INSTALL_SECONDS,
        check=False,
    )
    assert installed.returncode == 0, installed.stderr[-4000:]
    listed = subprocess.run(
        [str(python), "-m", "pip", "list", "--format=json"], capture_output=True, text=True, check=True
    )
    names = {item["name"].lower() for item in json.loads(listed.stdout)}
    assert "seqn-auth" in names and "silver-auth" not in names and "pytest" not in names

    session = sign_in(service, project).session
    header, payload = _parts(session.jwt)
    forged = jwt.encode(header, payload, OKPKey.generate_key("Ed25519"), algorithms=[header["alg"]])
    script = tmp_path / "verify.py"
    script.write_text(SCRIPT)
    ran = subprocess.run(
        [str(python), str(script), service.url, project.project_id, session.jwt, forged],
        cwd=tmp_path,  # not the repository: the installed package, not ./sdk/python/src
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    answer = json.loads(ran.stdout)
    assert answer == {"user_id": session.user_id, "session_id": session.session_id, "forged": "bad-signature"}
    assert sys.executable not in ran.stdout
