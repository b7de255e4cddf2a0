"""The layout's import rules (DESIGN.md "Code layout"), checked on every module, lazy imports included:
`web/` and `core/` import no domain; `core/` imports no `db/`; no domain imports `admin/`, `console/`,
`cli/` or `app.py`; services never import routes or Litestar."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import silver_auth

PACKAGE = Path(silver_auth.__file__).parent
PLUMBING = {"core", "db", "web", "settings"}
CONSUMERS = {"admin", "console", "cli", "app"}
"""Import the domains; no domain imports them."""
COMPOSITION = {"runtime", "__init__", "py"}


def _modules() -> list[tuple[str, Path]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        found.append((".".join(parts), path))
    return found


def _imports(path: Path) -> set[str]:
    """Every `silver_auth.*` module or package this file imports, at module level or inside functions."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "silver_auth":
                names.update(f"silver_auth.{alias.name}" for alias in node.names)
            elif node.module.startswith("silver_auth."):
                names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names if alias.name.startswith("silver_auth."))
    return names


def _top(module: str) -> str:
    return module.split(".")[1] if module.startswith("silver_auth.") else module.split(".", maxsplit=1)[0]


def _is_domain(top: str) -> bool:
    return top not in PLUMBING | CONSUMERS | COMPOSITION | {"ops"}


MODULES = _modules()


def _violations(rule: str) -> list[str]:
    broken = []
    for module, path in MODULES:
        top = module.split(".")[0]
        for imported in sorted(_imports(path)):
            target = _top(imported)
            if rule == "web" and top == "web" and target not in {"core", "db", "web", "settings"}:
                broken.append(f"{module} imports {imported}")
            if rule == "core" and top == "core" and target not in {"core", "settings"}:
                broken.append(f"{module} imports {imported}")
            if rule == "consumers" and _is_domain(top) and target in CONSUMERS:
                broken.append(f"{module} imports {imported}")
    return broken


@pytest.mark.parametrize("rule", ["web", "core", "consumers"])
def test_import_rules_hold(rule: str) -> None:
    assert _violations(rule) == []


def test_services_import_neither_routes_nor_litestar() -> None:
    broken = []
    for module, path in MODULES:
        if module.rsplit(".", 1)[-1] != "service":
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            broken += [
                f"{module} imports {n}" for n in names if n.split(".")[0] == "litestar" or "routes" in n
            ]
    assert broken == []


def test_the_rules_see_a_violation(tmp_path: Path) -> None:
    """The checker itself: a planted web → domain import is found (so the rules cannot pass vacuously)."""
    planted = tmp_path / "planted.py"
    planted.write_text("def f():\n    from silver_auth.keys.service import KeyService\n")
    assert _imports(planted) == {"silver_auth.keys.service"}
    assert len(MODULES) > 100
