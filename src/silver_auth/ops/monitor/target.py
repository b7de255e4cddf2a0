"""What the monitor watches: the service's public base URL, its console host when that differs, and the
canary keys it reads client-config and the backend route with."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from silver_auth.core.redaction import SECRET_PATTERN
from silver_auth.ops.probing import Pins, ResolveError, parse_resolve

INTERVAL = re.compile(r"(\d+)\s*([smh]?)")
INTERVAL_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600}
MAX_INTERVAL_SECONDS = 24 * 3600


class TargetError(ValueError):
    """A base URL or interval the monitor cannot use; the message says why in one line."""


def public_url(text: str, option: str) -> str:
    """`text` as an http(s) origin (with an optional path prefix), without a trailing slash."""
    parts = urlsplit(text.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetError(
            f"{option} must be an http:// or https:// URL with a host, such as https://auth.seqn.in"
        )
    if parts.username is not None or parts.password is not None:
        raise TargetError(f"{option} must not carry credentials")
    if parts.query or parts.fragment:
        raise TargetError(f"{option} must not have a query or fragment")
    try:
        parts.port  # noqa: B018 - urlsplit checks the port only when asked
    except ValueError:
        raise TargetError(f"{option} has an invalid port") from None
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


def interval_seconds(text: str) -> int:
    """`30s`, `5m`, `1h` (or plain seconds) as seconds, from 1 s to 24 h."""
    match = INTERVAL.fullmatch(text.strip().lower())
    if match is None:
        raise TargetError(
            f"--every must be a number of seconds, minutes or hours, such as 30s, 5m or 1h (got {text!r})"
        )
    seconds = int(match.group(1)) * INTERVAL_UNITS[match.group(2)]
    if not 1 <= seconds <= MAX_INTERVAL_SECONDS:
        raise TargetError("--every must be between 1s and 24h")
    return seconds


def _pins(resolve: Iterable[str]) -> Pins:
    try:
        return parse_resolve(resolve)
    except ResolveError as exc:
        raise TargetError(str(exc)) from None


@dataclass(frozen=True, slots=True)
class MonitorTarget:
    base_url: str
    """The auth host: hosted pages and `/v1` (`https://auth.seqn.in`)."""
    accounts_url: str | None = None
    """The console host when it differs (`https://accounts.seqn.in`)."""
    publishable_key: str | None = None
    secret_key_file: Path | None = field(default=None)
    pins: Pins = field(default_factory=dict)
    """`--resolve` host names reached at an address of the operator's choosing."""

    @classmethod
    def parse(
        cls,
        base_url: str,
        *,
        accounts_url: str | None = None,
        publishable_key: str | None = None,
        secret_key_file: Path | None = None,
        resolve: Iterable[str] = (),
    ) -> MonitorTarget:
        if publishable_key and SECRET_PATTERN.search(publishable_key):
            # Never echoed: it is a secret, and it may already be in shell history or argv.
            raise TargetError(
                "the publishable key given is a secret key: the backend-key check reads that one from "
                "SILVER_MONITOR_SECRET_KEY_FILE (rotate it if it was typed on a command line)"
            )
        return cls(
            public_url(base_url, "BASE_URL"),
            public_url(accounts_url, "--accounts-url") if accounts_url else None,
            publishable_key.strip() if publishable_key else None,
            secret_key_file,
            _pins(resolve),
        )

    @property
    def console_url(self) -> str:
        return self.accounts_url or self.base_url

    @property
    def host(self) -> str:
        """The base URL's host (and port, when it has one): what alert subjects name."""
        return urlsplit(self.base_url).netloc

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"
