"""An unexpected error behind a console page is an HTML page with the API's status (500, or 503 with
Retry-After under load), never JSON or a stack trace, and the request writes nothing."""

from __future__ import annotations

import secrets

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from silver_auth.db.engine import create_sessionmaker
from tests.console.support import assert_page
from tests.dbstate import chain_head_seq, snapshot
from tests.factories import Harness
from tests.web.test_http import captured_http_log


def test_an_unexpected_error_on_a_page_is_an_html_500_and_writes_nothing(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = harness.user()
    marker = f"Org {secrets.token_hex(6)}"
    before, head = snapshot(harness), chain_head_seq(harness)

    async def rename(old: str, new: str) -> None:
        async with harness.runtime.engine.begin() as connection:
            await connection.execute(text(f"ALTER TABLE {old} RENAME TO {new}"))

    harness.run(lambda: rename("audit_events", "audit_events_gone"))  # the org's audit record fails
    try:
        with captured_http_log(monkeypatch) as log:
            response = owner.post("/console/orgs", data={"name": marker, "csrf_token": owner.csrf_token})
    finally:
        harness.run(lambda: rename("audit_events_gone", "audit_events"))
    assert_page(response, 500)
    assert "Something went wrong on our side" in response.text
    for leak in ("audit_events", "sqlalchemy", "Traceback", marker, owner.csrf_token):
        assert leak not in response.text, leak
    assert "unhandled_error" in log.getvalue() and "/console/orgs" in log.getvalue()
    assert snapshot(harness) == before and chain_head_seq(harness) == head


def test_an_exhausted_pool_on_a_page_is_an_html_503_with_retry_after(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = harness.user()
    org_id = harness.org(owner)["id"]
    tiny = create_async_engine(harness.runtime.engine.url, pool_size=1, max_overflow=0, pool_timeout=0.05)
    monkeypatch.setattr(harness.runtime, "sessionmaker", create_sessionmaker(tiny))

    async def hold() -> AsyncConnection:
        return await tiny.connect()

    held = harness.run(hold)
    try:
        response = owner.get(f"/console/orgs/{org_id}")
    finally:
        harness.run(held.close)
        harness.run(tiny.dispose)
    assert_page(response, 503)
    assert response.headers["retry-after"] == "1"
    assert "The console is busy" in response.text
