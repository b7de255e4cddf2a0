"""deploy/compose.yaml: valid against the Compose Specification's schema, and the stack it describes keeps
the guide's network rules: only Caddy publishes ports (G4), the API listens on a private address only
Caddy reaches (G5), both Postgres databases and Redis sit on internal networks alone (G20)."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import typer
import yaml

from silver_auth import cli
from silver_auth.core.production_guard import is_private_bind
from tests.deploy.support import setting_names

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SCHEMA_PATH = Path(__file__).with_name("compose-spec.json")
SCHEMA_SHA256 = "d549057ebc2925f39f62799eab0db7b9e2c18b35b6c00595199116da3ed10e64"
DATA_STORES = ("postgres", "redis")


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return loaded


COMPOSE = _compose()
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]


def _networks_of(service: dict[str, Any]) -> list[str]:
    networks = service.get("networks", [])
    return list(networks) if isinstance(networks, dict | list) else []


def _environment(service: dict[str, Any]) -> dict[str, str]:
    environment = service.get("environment", {})
    assert isinstance(environment, dict), "environment as a mapping, so tests and readers see each value"
    return {name: str(value) for name, value in environment.items()}


def _is_data_store(service: dict[str, Any]) -> bool:
    image = str(service.get("image", ""))
    return any(image.startswith(name + ":") for name in DATA_STORES)


def test_the_vendored_schema_is_the_one_recorded() -> None:
    assert hashlib.sha256(SCHEMA_PATH.read_bytes()).hexdigest() == SCHEMA_SHA256
    assert "Apache License" in SCHEMA_PATH.with_name("LICENSE.compose-spec").read_text()


def test_compose_file_is_valid_against_the_compose_specification() -> None:
    schema = json.loads(SCHEMA_PATH.read_text())
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    errors = sorted(validator_class(schema).iter_errors(COMPOSE), key=lambda error: list(error.path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors)


def test_the_schema_check_catches_a_broken_file() -> None:
    """The validation above can fail: a misspelt key and a wrong type are both reported."""
    schema = json.loads(SCHEMA_PATH.read_text())
    broken = json.loads(json.dumps(COMPOSE))
    broken["services"]["api"]["restrat"] = "always"
    broken["services"]["caddy"]["ports"] = "80:80"
    validator = jsonschema.validators.validator_for(schema)(schema)
    messages = [error.message for error in validator.iter_errors(broken)]
    assert any("restrat" in message for message in messages)
    assert any("is not of type 'array'" in message for message in messages)


def test_g4_only_caddy_publishes_ports() -> None:
    published = {name for name, service in SERVICES.items() if service.get("ports")}
    assert published == {"caddy"}
    assert set(SERVICES["caddy"]["ports"]) == {"80:80", "443:443", "443:443/udp"}
    assert not [name for name, service in SERVICES.items() if service.get("network_mode") == "host"]


def test_g20_postgres_and_redis_are_on_internal_networks_only() -> None:
    stores = {name: service for name, service in SERVICES.items() if _is_data_store(service)}
    assert set(stores) == {"silver-postgres", "authentik-postgres", "redis"}
    networks = COMPOSE["networks"]
    for name, service in stores.items():
        assert not service.get("ports") and not service.get("expose"), name
        attached = _networks_of(service)
        assert attached, f"{name} would join the default network, which is not internal"
        for network in attached:
            assert networks[network].get("internal") is True, f"{name} is on {network}, not internal"
        # and no network of a data store is one Caddy (the only service with ports) is on
        assert not set(attached) & set(_networks_of(SERVICES["caddy"])), name


def test_g5_the_api_listens_on_its_private_frontend_address_which_caddy_proxies_to() -> None:
    api, caddy = SERVICES["api"], SERVICES["caddy"]
    environment = _environment(api)
    bind_host, bind_port = environment["SILVER_BIND_HOST"], environment["SILVER_BIND_PORT"]
    assert bind_host == api["networks"]["frontend"]["ipv4_address"]
    assert is_private_bind(bind_host)  # what the production guard accepts (0.0.0.0 it refuses)
    assert COMPOSE["networks"]["frontend"]["internal"] is True
    caddy_address = caddy["networks"]["frontend"]["ipv4_address"]
    assert _environment(caddy)["SEQN_UPSTREAM"] == f"{bind_host}:{bind_port}"
    assert environment["SILVER_TRUSTED_PROXIES"] == caddy_address  # X-Forwarded-For from Caddy only
    assert environment["SILVER_ENV"] == "production"


def test_the_blocklist_volume_is_written_by_the_api_and_read_by_caddy() -> None:
    api, caddy = SERVICES["api"], SERVICES["caddy"]
    blocklist = Path(_environment(api)["SILVER_EDGE_BLOCKLIST"])
    mounts = {volume.split(":")[0]: volume.split(":")[1:] for volume in api["volumes"]}
    assert mounts["edge-blocklist"] == [str(blocklist.parent)]  # read-write
    caddy_mounts = {volume.split(":")[0]: volume.split(":")[1:] for volume in caddy["volumes"]}
    assert caddy_mounts["edge-blocklist"] == [str(blocklist.parent), "ro"]
    pattern = _environment(caddy)["SEQN_EDGE_BLOCKLIST"]
    assert Path(pattern).parent == blocklist.parent
    assert re.fullmatch(pattern.replace("*", ".*"), str(blocklist))


def test_caddy_mounts_exist_and_select_the_plugin_snippets() -> None:
    caddy = SERVICES["caddy"]
    for volume in caddy["volumes"]:
        source = volume.split(":")[0]
        if source.startswith("./"):
            assert (DEPLOY / source).exists(), source
    environment = _environment(caddy)
    config_dir = DEPLOY  # mounted at /etc/caddy: the Caddyfile's relative imports resolve the same way
    for name in ("SEQN_EDGE_LIMITS", "SEQN_EDGE_SSO"):
        assert (config_dir / f"{environment[name]}.caddy").is_file(), name
    assert (DEPLOY / caddy["build"] / "Dockerfile").is_file()


def _command_paths() -> set[tuple[str, ...]]:
    paths: set[tuple[str, ...]] = set()

    def walk(command: Any, path: tuple[str, ...]) -> None:
        paths.add(path)
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, (*path, name))

    walk(typer.main.get_command(cli.app), ())
    return paths


@pytest.mark.parametrize("name", ["migrate", "api", "worker"])
def test_silver_services_run_real_commands_in_production(name: str) -> None:
    service = SERVICES[name]
    command = service["command"]
    assert command[0] == "silver-auth"
    assert tuple(command[1:]) in _command_paths()
    assert service["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
    assert service["env_file"] == [".env"]
    environment = _environment(service)
    assert set(environment) <= setting_names(), set(environment) - setting_names()
    assert "no-new-privileges:true" in service["security_opt"]
    assert service["cap_drop"] == ["ALL"]


def test_secrets_come_from_env_files_never_from_the_compose_file() -> None:
    """Every secret is a ${…:?…} reference to deploy/.env, never a value written here (G13, G21)."""
    text = (DEPLOY / "compose.yaml").read_text()
    for name in ("POSTGRES_PASSWORD", "AUTHENTIK_POSTGRESQL__PASSWORD"):
        for value in re.findall(rf"{name}: (.+)", text):
            assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]+\}", value.strip()), value
    for forbidden in ("SESSION_SECRET", "SILVER_KEY_PEPPER", "SILVER_SEALING_KEYS", "AUTHENTIK_SECRET_KEY"):
        assert not re.search(rf"^\s+{forbidden}:", text, re.MULTILINE), forbidden
    assert {"authentik.env"} == {
        file for service in SERVICES.values() for file in service.get("env_file", []) if file != ".env"
    }
