"""The receiver guide's examples (docs/examples, G32, G33) run against real deliveries: each starts as a
receiver process, the worker delivers real signed events to it, and it must take the good ones (once
each, answering 2xx) and refuse a changed body, another endpoint's secret and an old timestamp."""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from silver_auth.core import clock
from silver_auth.settings import Settings
from silver_auth.webhooks.events import catalogue
from tests.factories import ConsoleUser, Harness
from tests.webhooks.support import deliver, hooks, project_with_endpoint, receiver

__all__ = ["hooks"]

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "docs" / "examples"
NODE_PEER = ROOT / "tests" / "peers" / "webhook-receiver"
WAIT_SECONDS = 30
"""A bound on waiting for a line, so a broken example fails the test instead of hanging it."""


@dataclass
class Example:
    process: subprocess.Popen[str]
    lines: queue.Queue[str | None] = field(default_factory=queue.Queue)
    unclaimed: list[str] = field(default_factory=list)
    """Lines read and not matched yet (the processing thread's lines interleave with the handler's)."""
    url: str = ""

    def wait_for(self, pattern: str) -> re.Match[str]:
        """The first output line not claimed yet that matches `pattern`, reading more as needed."""
        for line in self.unclaimed:
            if found := re.fullmatch(pattern, line):
                self.unclaimed.remove(line)
                return found
        while True:
            try:
                line = self.lines.get(timeout=WAIT_SECONDS)
            except queue.Empty:
                raise AssertionError(f"no line matching {pattern!r}; unclaimed: {self.unclaimed}") from None
            if line is None:
                raise AssertionError(f"the example exited; unclaimed output: {self.unclaimed}")
            if found := re.fullmatch(pattern, line):
                return found
            self.unclaimed.append(line)


def _command(language: str, tmp_path: Path) -> list[str]:
    if language == "python":
        return [sys.executable, str(EXAMPLES / "webhook_receiver.py")]
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed, so the JavaScript receiver example cannot run")
    if not (NODE_PEER / "node_modules" / "standardwebhooks").is_dir():
        pytest.fail(f"the npm standardwebhooks package is missing: run npm ci --prefix {NODE_PEER}")
    # Node resolves `standardwebhooks` next to the script: run the example's exact text from a directory
    # whose node_modules is the lock-filed peer's.
    script = tmp_path / "webhook-receiver.mjs"
    shutil.copyfile(EXAMPLES / "webhook-receiver.mjs", script)
    (tmp_path / "node_modules").symlink_to(NODE_PEER / "node_modules", target_is_directory=True)
    return [node, str(script)]


@contextmanager
def example(language: str, tmp_path: Path, **env: str) -> Iterator[Example]:
    process = subprocess.Popen(
        _command(language, tmp_path),
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PORT": "0", **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    started = Example(process)

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            started.lines.put(line.rstrip("\n"))
        started.lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    try:
        started.url = started.wait_for(r"listening on (http://127\.0\.0\.1:\d+/webhooks)").group(1)
        yield started
    finally:
        process.terminate()
        process.wait(timeout=10)


def _attempt_statuses(owner: ConsoleUser, endpoint_id: str) -> dict[str, list[int | None]]:
    page = owner.ok("GET", f"/console/api/webhooks/{endpoint_id}/messages")
    return {m["id"]: [a["http_status"] for a in m["attempts"]] for m in page["items"]}


def _key_env(endpoint: dict[str, Any]) -> dict[str, str]:
    if endpoint["signing"] == "ed25519":
        return {"WEBHOOK_PUBLIC_KEY": endpoint["public_key"]}
    return {"WEBHOOK_SECRET": endpoint["secret"]}


@pytest.mark.slow  # runs the example receiver in a subprocess
@pytest.mark.parametrize("signing", ["hmac", "ed25519"])
@pytest.mark.parametrize("language", ["python", "node"])
def test_g32_g33_receiver_example_takes_real_deliveries_and_refuses_forgeries(
    hooks: Harness, tmp_path: Path, language: str, signing: str
) -> None:
    # One real delivery recorded on the way, to be sent to the example later as it came and altered.
    with receiver() as recorder:
        owner, project, endpoint = project_with_endpoint(hooks, recorder.url, signing=signing)
        owner.ok("POST", f"/console/api/webhooks/{endpoint['id']}/test", 202)
        deliver(hooks)
        [recorded] = recorder.received
    with example(language, tmp_path, **_key_env(endpoint)) as receiving:
        owner.ok("PATCH", f"/console/api/webhooks/{endpoint['id']}", json={"url": receiving.url})

        # Good deliveries: each answered 2xx and processed once. (The key and the end-user add their
        # events once those types are emitted; the test events are there either way.)
        secret_key = hooks.key(owner, project["id"], "secret", "test")["key"]
        hooks.client.cookies.clear()
        created = hooks.client.post(
            "/v1/backend/users",
            json={"email": "grace@example.com"},
            headers={"authorization": f"Bearer {secret_key}"},
        )
        assert created.status_code == 201, created.text
        tests = {
            owner.ok("POST", f"/console/api/webhooks/{endpoint['id']}/test", 202)["id"] for _ in range(2)
        }
        deliver(hooks)
        statuses = _attempt_statuses(owner, endpoint["id"])
        good = set(statuses) - {recorded.headers["webhook-id"]}
        assert tests <= good
        assert all(statuses[message_id] == [204] for message_id in good), statuses
        processed = dict(receiving.wait_for(r"processed (\S+) (\S+)").groups() for _ in good)
        assert set(processed) == good
        assert {processed[message_id] for message_id in tests} == {"webhook.test"}

        # The recorded delivery, as it came: taken; sent again (a retry): 2xx, and not processed twice.
        signed = {
            name: recorded.headers[name] for name in ("webhook-id", "webhook-timestamp", "webhook-signature")
        }
        for _ in range(2):
            answer = httpx.post(receiving.url, content=recorded.body, headers=signed, timeout=10)
            assert answer.status_code == 204
        receiving.wait_for(rf"processed {recorded.headers['webhook-id']} webhook\.test")
        receiving.wait_for(rf"duplicate {recorded.headers['webhook-id']}")

        # A changed body under the recorded signature: refused.
        tampered = recorded.body.replace(b"a test event", b"a tset event")
        assert tampered != recorded.body
        answer = httpx.post(receiving.url, content=tampered, headers=signed, timeout=10)
        assert answer.status_code == 400
        receiving.wait_for(rf"rejected {recorded.headers['webhook-id']}: .*")

        # Another endpoint's secret (or key): its real delivery to this receiver is refused.
        other = owner.ok(
            "POST",
            f"/console/api/projects/{project['id']}/webhooks",
            201,
            json={"url": receiving.url, "environment": "test", "signing": signing},
        )
        stranger = owner.ok("POST", f"/console/api/webhooks/{other['id']}/test", 202)["id"]
        deliver(hooks)
        assert _attempt_statuses(owner, other["id"])[stranger] == [400]
        receiving.wait_for(rf"rejected {stranger}: .*")

        # A real delivery signed six minutes ago (the service clock set back): refused as too old.
        clock.advance(-6 * 60)
        stale = owner.ok("POST", f"/console/api/webhooks/{endpoint['id']}/test", 202)["id"]
        deliver(hooks)
        clock.reset()
        assert _attempt_statuses(owner, endpoint["id"])[stale] == [400]
        reason = receiving.wait_for(rf"rejected {stale}: (.*)").group(1)
        assert "too old" in reason.lower()


# --- the guide's text ----------------------------------------------------------------------------------

GUIDE = (ROOT / "docs" / "webhooks.md").read_text()


def test_the_guide_lists_every_event_type_with_the_catalogue_sample() -> None:
    section = GUIDE.split("## Event types", 1)[1]
    entries = re.findall(r"^### `([a-z._]+)`\n\n.*?```json\n(.*?)```", section, re.DOTALL | re.MULTILINE)
    documented = {kind: json.loads(sample) for kind, sample in entries}
    catalogue_entries = {entry["type"]: entry for entry in catalogue()}
    assert list(documented) == list(catalogue_entries)
    for kind, entry in catalogue_entries.items():
        assert documented[kind] == entry["sample"], kind
        assert entry["description"] in section, kind


def test_the_guide_states_the_default_retry_schedule() -> None:
    default = Settings.model_fields["webhook_retry_schedule"].get_default(call_default_factory=True)
    row = re.search(r"^\| after the previous \| (.*) \|$", GUIDE, re.MULTILINE)
    assert row is not None
    words = {"immediately": 0, "s": 1, "min": 60, "h": 3600}
    stated = []
    for cell in row.group(1).split(" | "):
        amount, _, unit = cell.partition(" ")
        stated.append(0.0 if amount == "immediately" else float(amount) * words[unit])
    assert stated == default
