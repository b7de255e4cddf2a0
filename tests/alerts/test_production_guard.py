"""L2: production does not start without an attended, non-email alert channel apprise can send to; the
refusal names the entry by its place and scheme, never by its URL (G28: the URL holds the token)."""

from __future__ import annotations

from pathlib import Path

import pytest

from silver_auth.core.production_guard import production_violations
from tests.test_settings import only_violation, production


def test_l2_production_without_an_alert_channel_is_refused(tmp_path: Path) -> None:
    line = only_violation(production(tmp_path, drop=("SILVER_ALERT_URLS",)), "L2")
    assert "SILVER_ALERT_URLS" in line and "non-email" in line
    only_violation(production(tmp_path, SILVER_ALERT_URLS=" , "), "L2")


def test_l2_production_with_channels_starts(tmp_path: Path) -> None:
    urls = "slack://T0AAAAAAA/B0BBBBBBB/abcdefghijklmnopqrstuvwx/#ops, ntfys://ntfy.seqn.in/seqn-ops json://h.seqn.in/a"
    assert production_violations(production(tmp_path, SILVER_ALERT_URLS=urls)) == []


@pytest.mark.parametrize(
    ("urls", "reason"),
    [
        ("mailto://ops:hunter2-mail-token@gmail.com", "entry 1 (mailto://) is email"),
        ("json://h.seqn.in/a mailtos://ops:hunter2-mail-token@example.org", "entry 2 (mailtos://) is email"),
        ("nosuchchannel://hunter2-mail-token", "entry 1 (nosuchchannel://) is not a URL apprise can send to"),
        ("sendgrid://hunter2-mail-token:ops@seqn.in/on-call@seqn.in", "entry 1 (sendgrid://) is email"),
        ("slack://hunter2-mail-token", "entry 1 (slack://) is not a URL apprise can send to"),
    ],
)
def test_l2_an_email_or_unusable_channel_is_refused_without_printing_it(
    tmp_path: Path, urls: str, reason: str, capfd: pytest.CaptureFixture[str]
) -> None:
    line = only_violation(production(tmp_path, SILVER_ALERT_URLS=urls), "L2")
    assert reason in line
    captured = capfd.readouterr()
    assert "hunter2-mail-token" not in line + captured.out + captured.err  # apprise's own log lines too
