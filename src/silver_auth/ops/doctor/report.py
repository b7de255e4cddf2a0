"""What `doctor` found, one result per guide line, and its two renderings: a table for people and JSON
for scripts. Every text passes the one redaction function and loses every configured secret value on
its way out (G28): a finding may quote an error message, and error messages quote what they were given."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, replace
from typing import Any, Literal

from rich.console import Console
from rich.table import Table
from rich.text import Text

from silver_auth.core.redaction import REDACTED, redact_text
from silver_auth.ops.doctor.catalogue import LINES
from silver_auth.settings import Settings

Status = Literal["pass", "warn", "fail", "operator step"]
STATUSES: tuple[Status, ...] = ("pass", "warn", "fail", "operator step")
STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red", "operator step": "cyan"}
RUNBOOK = "docs/runbooks.md"


@dataclass(frozen=True, slots=True)
class Finding:
    """One guide line's result: what was looked at (`check`), what was seen (`detail`), the way to put
    it right (`fix`, empty on a pass) and, for an operator step, the runbook section."""

    line: str
    status: Status
    check: str
    detail: str = ""
    fix: str = ""
    runbook: str | None = None

    @property
    def title(self) -> str:
        return LINES[self.line].text


def passed(line: str, check: str, detail: str = "") -> Finding:
    return Finding(line, "pass", check, detail)


def warned(line: str, check: str, detail: str, fix: str = "") -> Finding:
    return Finding(line, "warn", check, detail, fix)


def failed(line: str, check: str, detail: str, fix: str = "") -> Finding:
    return Finding(line, "fail", check, detail, fix)


def operator_step(line: str, check: str, anchor: str, detail: str = "") -> Finding:
    """A line doctor cannot observe: the operator's, with the runbook section that says how."""
    return Finding(line, "operator step", check, detail, f"follow {RUNBOOK}#{anchor}", f"{RUNBOOK}#{anchor}")


def from_problems(line: str, check: str, problems: list[str], fix: str, ok: str = "") -> Finding:
    """A fail naming every problem (each without its `G11: ` prefix), or a pass saying `ok`."""
    if not problems:
        return passed(line, check, ok)
    return failed(line, check, "; ".join(strip_line_id(problem) for problem in problems), fix)


def strip_line_id(problem: str) -> str:
    head, colon, rest = problem.partition(": ")
    return rest if colon and head[:1] in "GL" and head[1:2].isdigit() else problem


def in_development(finding: Finding) -> Finding:
    """Outside production a fail is a warning that says so: the embedded default (SQLite, plain http,
    generated secrets) breaks production's lines by design."""
    if finding.status != "fail":
        return finding
    return replace(finding, status="warn", detail=f"development: {finding.detail}")


class Scrubber:
    """Removes every secret the settings hold from a text, then anything secret-shaped (redact_text)."""

    def __init__(self, settings: Settings) -> None:
        values: set[str] = set()
        for name in type(settings).model_fields:
            value = getattr(settings, name)
            if hasattr(value, "get_secret_value"):
                values.add(value.get_secret_value())
        values.update(settings.alert_channel_urls())
        if settings.database_password:
            values.add(settings.database_password)
        if settings.sealing_keys is not None:
            for part in settings.sealing_keys.get_secret_value().split(","):  # each `kid:base64` key
                values.update((part.strip(), part.partition(":")[2].strip()))
        # Longest first, so a value holding a shorter one goes whole; tiny values would blank words.
        self._values = sorted((value for value in values if len(value) >= 6), key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for value in self._values:
            if value in text:
                text = text.replace(value, REDACTED)
        return redact_text(text)

    def finding(self, finding: Finding) -> Finding:
        return replace(finding, check=self(finding.check), detail=self(finding.detail), fix=self(finding.fix))


@dataclass(frozen=True, slots=True)
class DoctorReport:
    environment: str
    findings: list[Finding]
    """One per guide line, in the guide's order."""

    def counts(self) -> dict[str, int]:
        seen = Counter(finding.status for finding in self.findings)
        return {status: seen.get(status, 0) for status in STATUSES}

    def exit_code(self, *, strict: bool = False) -> int:
        """1 on any fail (or, with `strict`, any warning too); else 0."""
        bad = {"fail", "warn"} if strict else {"fail"}
        return 1 if any(finding.status in bad for finding in self.findings) else 0

    def as_json(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "counts": self.counts(),
            "lines": [
                {
                    "line": finding.line,
                    "title": finding.title,
                    "status": finding.status,
                    "check": finding.check,
                    "detail": finding.detail,
                    "fix": finding.fix,
                    "runbook": finding.runbook,
                }
                for finding in self.findings
            ],
        }

    def json_text(self) -> str:
        return json.dumps(self.as_json(), indent=2, ensure_ascii=False)

    def print_table(self, console: Console) -> None:
        table = Table(title=f"silver-auth doctor ({self.environment})", show_lines=False, expand=False)
        table.add_column("line", no_wrap=True)
        table.add_column("check")
        table.add_column("status", no_wrap=True)
        table.add_column("how to fix")
        for finding in self.findings:
            check = Text(finding.check)
            if finding.detail:
                check.append(f": {finding.detail}", style="dim")
            table.add_row(
                finding.line, check, Text(finding.status, style=STYLE[finding.status]), Text(finding.fix)
            )
        console.print(table)
        summary = ", ".join(f"{count} {status}" for status, count in self.counts().items())
        console.print(Text(summary))
