"""Reading what the service logged and counted."""

from __future__ import annotations

import json
from typing import Any

import pytest

from silver_auth.core.metrics import REGISTRY


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def request_lines_in(text: str) -> list[dict[str, Any]]:
    """The access log's lines among JSON log lines."""
    return [line for line in json_lines(text) if line.get("event") == "request"]


def read(capfd: pytest.CaptureFixture[str]) -> tuple[str, str]:
    """stdout and stderr since the last read."""
    captured = capfd.readouterr()
    return captured.out, captured.err


def request_lines(capfd: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """The access log's lines written to stderr since the last read. The pooled test apps write each
    line at once (tests/conftest.py), so a request's line is there as soon as its answer is."""
    return request_lines_in(read(capfd)[1])


def sample(name: str, **labels: str) -> float:
    """A sample's value in the service's registry (0 when the series does not exist yet)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0
