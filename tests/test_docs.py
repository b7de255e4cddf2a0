"""The README is part of the product: its quick start and settings table are checked, not trusted."""

from __future__ import annotations

import re
from pathlib import Path

from silver_auth.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def _setting_names() -> list[str]:
    names = []
    for name, field in Settings.model_fields.items():
        if field.alias:
            names.append(field.alias)
        elif field.validation_alias is not None:
            names.append(str(field.validation_alias.choices[0]))  # type: ignore[union-attr]
        else:
            names.append(name.upper())
    return names


def test_readme_opens_with_two_command_quick_start() -> None:
    headings = re.findall(r"^## .+$", README, re.MULTILINE)
    assert headings[0] == "## Quick start"
    block = re.search(r"## Quick start\s+```[a-z]*\n(.*?)```", README, re.DOTALL)
    assert block is not None
    commands = [line for line in block.group(1).splitlines() if line.strip()]
    assert commands == ["make run", "make test"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci


def test_every_setting_is_documented_in_the_readme() -> None:
    missing = [name for name in _setting_names() if f"`{name}`" not in README]
    assert not missing, f"settings missing from the README table: {missing}"


def test_l8_email_and_payment_exclusion_is_documented() -> None:
    assert "Email delivery and payment collection are excluded from the MVP (L8)" in README


def test_readme_layout_names_every_package_and_nothing_else() -> None:
    """README's Layout section and the code agree: each top-level package or module is listed once."""
    section = README.split("## Layout", 1)[1]
    block = re.search(r"```\n(.*?)```", section, re.DOTALL)
    assert block is not None
    listed = set(re.findall(r"(?:^|\s)([a-z_]+)(?:/|\.py)(?=\s)", block.group(1), re.MULTILINE)) - {
        "silver_auth",
        "migrations",
        "templates",
        "static",
        "guards",
        "lifecycle",
        "verifier",
        "cache",
        "deps",
        "http",
    }
    package = ROOT / "src" / "silver_auth"
    actual = {
        path.stem if path.is_file() else path.name
        for path in package.iterdir()
        if (path.is_dir() and (path / "__init__.py").exists())
        or (path.suffix == ".py" and path.stem != "__init__")
    }
    assert listed == actual
