"""deploy/env.example names every setting and nothing else, and its production values, with secrets from
the commands it gives, are ones the production guard accepts: strong and unique (G13, G17, G21)."""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from silver_auth.core.production_guard import looks_random, production_violations
from silver_auth.settings import Settings
from tests.deploy.support import setting_names

ROOT = Path(__file__).resolve().parents[2]
ENV_EXAMPLE = ROOT / "deploy" / "env.example"
LINES = ENV_EXAMPLE.read_text().splitlines()
ASSIGNMENT = re.compile(r"(?P<comment>#\s*)?(?P<name>[A-Z][A-Z0-9_]*)=(?P<value>.*)")
GENERATE = re.compile(r"# generate(?: (?P<name>[A-Z][A-Z0-9_]*))?: (?P<command>.+)")
COMPOSE_ONLY = {"SEQN_ACCOUNTS_HOST", "SEQN_AUTH_HOST", "SEQN_SSO_HOST", "AUTHENTIK_TAG"}
"""Names compose.yaml interpolates that are no setting of the service."""
GENERATED = {
    "SESSION_SECRET",
    "SILVER_KEY_PEPPER",
    "SILVER_SEALING_KEYS",
    "SILVER_POSTGRES_PASSWORD",
    "AUTHENTIK_PG_PASS",
    "AUTHENTIK_SECRET_KEY",
}
OPERATOR_VALUES = {"SILVER_ALERT_URLS": "json://127.0.0.1:9/alerts"}
"""What the operator fills in (`# required:` lines): a stand-in for the test."""


def _assignments() -> list[tuple[str, str, bool]]:
    """(name, value, active) for every `NAME=value` and `# NAME=value` line."""
    found = []
    for line in LINES:
        match = ASSIGNMENT.fullmatch(line)
        if match:
            found.append((match["name"], match["value"], match["comment"] is None))
    return found


def _generators() -> dict[str, str]:
    """The command above each secret: `# generate: CMD` before `NAME=`, or `# generate NAME: CMD`."""
    commands: dict[str, str] = {}
    for index, line in enumerate(LINES):
        match = GENERATE.fullmatch(line)
        if not match:
            continue
        name = match["name"]
        if name is None:
            following = ASSIGNMENT.fullmatch(LINES[index + 1])
            assert following and following["comment"] is None, f"no NAME= line after: {line}"
            name = following["name"]
        commands[name] = match["command"]
    return commands


def _run(command: str) -> str:
    done = subprocess.run(
        ["bash", "-c", command],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert done.stderr == ""
    value = done.stdout.strip()
    assert value and "\n" not in value
    return value


def _active_values() -> dict[str, str]:
    values = {}
    for name, value, active in _assignments():
        if active:
            values[name] = value[1:-1] if value.startswith('"') and value.endswith('"') else value
    return values


def test_every_setting_is_named_once_and_nothing_else() -> None:
    names = [name for name, _, _ in _assignments()]
    duplicates = [name for name, count in Counter(names).items() if count > 1]
    assert not duplicates
    missing = setting_names() - set(names)
    unknown = set(names) - setting_names() - COMPOSE_ONLY
    assert not missing, f"settings missing from deploy/env.example: {sorted(missing)}"
    assert not unknown, f"deploy/env.example names what no setting reads: {sorted(unknown)}"


def test_compose_interpolates_only_what_env_example_names() -> None:
    compose = (ROOT / "deploy" / "compose.yaml").read_text()
    interpolated = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", compose))
    assert interpolated
    assert interpolated <= {name for name, _, _ in _assignments()}


def test_values_stay_parseable_by_compose_and_systemd() -> None:
    for name, value, _ in _assignments():
        assert "$" not in value, name  # compose would interpolate it
        if " " in value:
            assert value.startswith('"') and value.endswith('"'), name


def test_g13_g21_every_secret_has_a_generation_command() -> None:
    commands = _generators()
    assert set(commands) == GENERATED
    active = _active_values()
    for name in GENERATED - {"AUTHENTIK_SECRET_KEY"}:
        assert active[name] == "", f"{name} ships empty, so production refuses to start until it is generated"


@pytest.mark.slow
def test_g13_g21_generated_secrets_are_strong_unique_and_accepted_in_production() -> None:
    commands = _generators()
    first = {name: _run(command) for name, command in commands.items()}
    second = {name: _run(command) for name, command in commands.items()}
    assert all(first[name] != second[name] for name in commands), "a command printed the same value twice"
    assert len(set(first.values())) == len(first), "two secrets came out equal"

    values = _active_values() | {name: first[name] for name in GENERATED - {"AUTHENTIK_SECRET_KEY"}}
    values |= OPERATOR_VALUES
    settings = Settings(_env_file=None, **{name: v for name, v in values.items() if name not in COMPOSE_ONLY})
    assert settings.is_production
    assert production_violations(settings) == []

    authentik_key = first["AUTHENTIK_SECRET_KEY"]
    assert len(authentik_key) >= 50 and looks_random(authentik_key)  # Authentik asks for 50 or more


def test_env_example_as_shipped_is_refused_in_production() -> None:
    """Empty secrets are not a working configuration: the guard names each line to fill in."""
    settings = Settings(
        _env_file=None, **{n: v for n, v in _active_values().items() if n not in COMPOSE_ONLY}
    )
    lines = " ".join(production_violations(settings))
    for expected in ("G13: SESSION_SECRET", "G17: SILVER_KEY_PEPPER", "G17: SILVER_SEALING_KEYS", "L2:"):
        assert expected in lines
    assert "G21: SILVER_POSTGRES_PASSWORD" in lines


def test_public_urls_and_caddy_hosts_agree() -> None:
    values = _active_values()
    assert values["SILVER_ACCOUNTS_URL"] == f"https://{values['SEQN_ACCOUNTS_HOST']}"
    assert values["SILVER_AUTH_URL"] == f"https://{values['SEQN_AUTH_HOST']}"
    caddyfile = (ROOT / "deploy" / "Caddyfile").read_text()
    assert f"{{$SEQN_ACCOUNTS_HOST:{values['SEQN_ACCOUNTS_HOST']}}}" in caddyfile
    assert f"{{$SEQN_AUTH_HOST:{values['SEQN_AUTH_HOST']}}}" in caddyfile
    assert f"{{$SEQN_UPSTREAM:{values['SILVER_BIND_HOST']}:{values['SILVER_BIND_PORT']}}}" in caddyfile
