"""The MVP's exclusions still stated (L8): by the running API (`/v1/config` names them), by this
installed version's README (its package description), and by the checkout's README when doctor runs
from a source checkout."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import silver_auth
from silver_auth.core.scope import EXCLUDED_FROM_MVP, EXCLUSION_STATEMENT
from silver_auth.ops.doctor.context import Doctor
from silver_auth.ops.doctor.report import Finding, failed, passed, warned

LINES = ("L8",)
DISTRIBUTION = "silver-auth"


def default_checkout() -> Path | None:
    """The source checkout this package runs from (an editable install), if it is one."""
    root = Path(silver_auth.__file__).resolve().parents[2]
    return root if (root / "pyproject.toml").is_file() and (root / "README.md").is_file() else None


async def check(doctor: Doctor) -> list[Finding]:
    check = "the email and payment exclusion is stated"
    fix = f"keep {EXCLUSION_STATEMENT!r} in README.md and run a released version"
    seen, problems = [], []
    where, config, why = await doctor.live_config()
    if config is not None:
        stated = config.get("excluded_from_mvp")
        if isinstance(stated, list) and set(EXCLUDED_FROM_MVP) <= set(stated):
            seen.append(where)
        else:
            problems.append(f"{where} does not list {', '.join(EXCLUDED_FROM_MVP)} in excluded_from_mvp")
    try:
        description = str(metadata.metadata(DISTRIBUTION).json.get("description", ""))
    except metadata.PackageNotFoundError:
        description = None
    if description is not None:
        if EXCLUSION_STATEMENT in description:
            seen.append("the installed README")
        else:
            problems.append("the installed package's README does not state it")
    checkout = doctor.options.checkout or default_checkout()
    if checkout is not None:
        readme = checkout / "README.md"
        try:
            text = readme.read_text(encoding="utf-8")
        except OSError as exc:
            problems.append(f"{readme} cannot be read: {exc.strerror or type(exc).__name__}")
        else:
            (seen if EXCLUSION_STATEMENT in text else problems).append(
                str(readme) if EXCLUSION_STATEMENT in text else f"{readme} does not state it"
            )
    if problems:
        return [failed("L8", check, "; ".join(problems), fix)]
    if config is None and not seen:
        return [warned("L8", check, f"nothing to read: {where} not read ({why}) and no README found")]
    note = "" if config is not None else f" ({where} not read: {why})"
    return [passed("L8", check, "stated by " + ", ".join(seen) + note)]
