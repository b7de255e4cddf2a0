"""The runbooks (docs/runbooks.md) and the deployment guide (docs/deployment.md) are operator steps: every
`silver-auth` command they print exists with the options they give it, each guide line that is an
operator step has its section under a stable anchor, and both are linked from the README and the
operations runbook."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import typer

from silver_auth import cli
from silver_auth.ops.doctor.checks.steps import OPERATOR_STEPS

ROOT = Path(__file__).resolve().parents[2]
RUNBOOKS = ROOT / "docs" / "runbooks.md"
DEPLOYMENT = ROOT / "docs" / "deployment.md"
ANCHORS = {
    "g6-admin-mfa": "G6",
    "g7-l6-seqn-a-membership-review": "G7",
    "g9-g19-token-and-secret-rotation": "G9",
    "g14-session-secret-rotation": "G14",
    "g15-short-operational-shells": "G15",
    "g28-secrets-out-of-support-tools": "G28",
    "g29-lost-device-and-offboarding": "G29",
    "g4-reverse-proxy": "G4",
    "g32-g33-webhook-receivers": "G32",
    "g36-edge-rate-limits": "G36",
    "g38-key-prefix-abuse": "G38",
    "g39-edge-blocklist": "G39",
}
"""The operator-step guide lines and their sections; doctor links to these anchors."""
MENTION = re.compile(r"(?<![\w/-])silver-auth((?: +[^\s`|;)'\"]+)*)")
NOT_A_COMMAND = re.compile(r"(?:-[ug]|systemctl \w+|adduser .*|root:)\s*$")
"""`silver-auth` as a user, group or unit name: `sudo -u silver-auth`, `systemctl restart silver-auth`."""


def _commands() -> dict[tuple[str, ...], Any]:
    found: dict[tuple[str, ...], Any] = {}

    def walk(command: Any, path: tuple[str, ...]) -> None:
        found[path] = command
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, (*path, name))

    walk(typer.main.get_command(cli.app), ())
    return found


COMMANDS = _commands()


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _mentions(path: Path) -> list[tuple[int, tuple[str, ...], list[str]]]:
    """(line number, command path, options) of each `silver-auth …` a document prints."""
    mentions = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        for match in MENTION.finditer(line):
            if NOT_A_COMMAND.search(line[: match.start()]):
                continue
            tokens = match.group(1).split()
            if not tokens:
                continue  # the name itself: "runs as `silver-auth`"
            words: list[str] = []
            for token in tokens:
                if (*words, token) in COMMANDS:
                    words.append(token)
                elif not token.startswith("-"):
                    break
            options = [token.split("=")[0] for token in tokens if token.startswith("--")]
            following = tokens[len(words)] if len(tokens) > len(words) else ""
            mentions.append((number, (*words, following) if following == "…" else tuple(words), options))
    return mentions


@pytest.mark.parametrize("path", [RUNBOOKS, DEPLOYMENT], ids=lambda path: path.name)
def test_every_printed_command_exists_with_its_options(path: Path) -> None:
    mentions = _mentions(path)
    assert len(mentions) > 5
    problems = []
    for number, words, options in mentions:
        if words and words[-1] == "…":
            if words[:-1] not in COMMANDS:
                problems.append(f"line {number}: no command group `silver-auth {' '.join(words[:-1])}`")
            continue
        command = COMMANDS.get(words)
        if not words or command is None or getattr(command, "commands", None):
            problems.append(f"line {number}: `silver-auth {' '.join(words)}` is not a command")
            continue
        known = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
        problems += [
            f"line {number}: `silver-auth {' '.join(words)}` has no {o}" for o in options if o not in known
        ]
    assert not problems, "\n".join(problems)


def test_a_wrong_command_would_be_caught(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "run `silver-auth account revoke-session EMAIL` then `silver-auth edge block 1.2.3.4 --now`\n"
        "`sudo -u silver-auth sh`, `systemctl restart silver-auth`\n"
    )
    assert _mentions(page) == [(1, ("account",), []), (1, ("edge", "block"), ["--now"])]


def test_each_operator_step_has_its_anchored_section() -> None:
    text = RUNBOOKS.read_text()
    sections = {_slug(heading): heading for heading in re.findall(r"^## (.+)$", text, re.MULTILINE)}
    for anchor, line in ANCHORS.items():
        assert anchor in sections, f"no section #{anchor}"
        assert sections[anchor].startswith(line + " "), sections[anchor]
    for anchor in re.findall(r"\]\(#([^)]+)\)", text):
        assert anchor in sections, f"a link to #{anchor}, which is no section"
    deployment_sections = {_slug(h) for h in re.findall(r"^##+ (.+)$", DEPLOYMENT.read_text(), re.MULTILINE)}
    for anchor in re.findall(r"\]\(#([^)]+)\)", DEPLOYMENT.read_text()):
        assert anchor in deployment_sections, f"deployment.md links to #{anchor}, which is no section"


DOCTOR = ROOT / "src" / "silver_auth" / "ops" / "doctor"
DOC_LINK = re.compile(r"docs/([\w-]+\.md)#([\w-]+)")


def _sections(document: Path) -> set[str]:
    return {_slug(heading) for heading in re.findall(r"^#+ (.+)$", document.read_text(), re.MULTILINE)}


def test_every_section_doctor_points_to_exists() -> None:
    """What doctor prints as a runbook or a fix (`docs/runbooks.md#g6-admin-mfa`) opens a real section,
    and every operator step it reports has its own section."""
    linked = {
        (name, anchor)
        for source in DOCTOR.rglob("*.py")
        for name, anchor in DOC_LINK.findall(source.read_text())
    }
    linked |= {("runbooks.md", anchor) for _, anchor, _ in OPERATOR_STEPS.values()}
    assert ("runbooks.md", "g39-edge-blocklist") in linked
    for name, anchor in sorted(linked):
        assert anchor in _sections(ROOT / "docs" / name), f"doctor points to docs/{name}#{anchor}: no section"


def test_both_documents_are_linked_from_the_readme_and_operations() -> None:
    readme = (ROOT / "README.md").read_text().split("## Documentation", 1)[1].split("\n## ", 1)[0]
    operations = (ROOT / "docs" / "operations.md").read_text()
    for name in ("runbooks.md", "deployment.md"):
        assert f"(docs/{name})" in readme
        assert f"({name}" in operations
