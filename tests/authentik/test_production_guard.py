"""The production guard with SILVER_IDENTITY=authentik: the API and the console's OIDC client need every
setting, over https, with TLS verified (G8, G10)."""

from __future__ import annotations

from pathlib import Path

import pytest

from silver_auth.core.production_guard import production_violations
from tests.test_settings import only_violation, production

AUTHENTIK = {
    "SILVER_IDENTITY": "authentik",
    "SILVER_AUTHENTIK_URL": "https://sso.seqn.in",
    "SILVER_AUTHENTIK_TOKEN": "a-least-privilege-api-token-from-authentik",
    "SILVER_CONSOLE_OIDC_ISSUER": "https://sso.seqn.in/application/o/seqn-console/",
    "SILVER_CONSOLE_OIDC_CLIENT_ID": "seqn-console",
    "SILVER_CONSOLE_OIDC_CLIENT_SECRET": "the-console-client-secret-from-authentik",
}


def test_g8_complete_authentik_production_config_passes(tmp_path: Path) -> None:
    assert production_violations(production(tmp_path, **AUTHENTIK)) == []


@pytest.mark.parametrize(
    ("name", "guide"),
    [
        ("SILVER_AUTHENTIK_URL", "G8"),
        ("SILVER_AUTHENTIK_TOKEN", "G8"),
        ("SILVER_CONSOLE_OIDC_ISSUER", "G8"),
        ("SILVER_CONSOLE_OIDC_CLIENT_ID", "G10"),
        ("SILVER_CONSOLE_OIDC_CLIENT_SECRET", "G10"),
    ],
)
def test_g8_g10_each_authentik_setting_is_required(tmp_path: Path, name: str, guide: str) -> None:
    values = {k: v for k, v in AUTHENTIK.items() if k != name}
    line = only_violation(production(tmp_path, **values), guide)
    assert name in line


@pytest.mark.parametrize("name", ["SILVER_AUTHENTIK_URL", "SILVER_CONSOLE_OIDC_ISSUER"])
def test_g8_authentik_urls_must_be_https(tmp_path: Path, name: str) -> None:
    line = only_violation(production(tmp_path, **{**AUTHENTIK, name: "http://sso.seqn.in/"}), "G8")
    assert name in line and "https" in line


def test_g8_tls_verification_stays_on(tmp_path: Path) -> None:
    line = only_violation(production(tmp_path, **AUTHENTIK, SILVER_AUTHENTIK_VERIFY_TLS="false"), "G8")
    assert "SILVER_AUTHENTIK_VERIFY_TLS" in line


def test_builtin_identity_needs_no_authentik_settings(tmp_path: Path) -> None:
    assert production_violations(production(tmp_path)) == []


def test_violations_never_print_the_secrets(tmp_path: Path) -> None:
    settings = production(tmp_path, **{**AUTHENTIK, "SILVER_AUTHENTIK_URL": "http://sso.seqn.in"})
    text = "\n".join(production_violations(settings))
    assert AUTHENTIK["SILVER_AUTHENTIK_TOKEN"] not in text
    assert AUTHENTIK["SILVER_CONSOLE_OIDC_CLIENT_SECRET"] not in text
