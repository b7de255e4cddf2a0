"""Requests sent at the same time, for real: on the app's own event loop, through httpx's ASGI transport,
each with the client address given (the throttles count per IP)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.factories import Harness

Request = tuple[str, str, dict[str, Any]]


def send_together(harness: Harness, requests: list[Request], ip: str = "203.0.113.7") -> list[httpx.Response]:
    """Send every (method, url, httpx keyword arguments) request concurrently from `ip`."""

    async def work() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=harness.client.app, client=(ip, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return list(await asyncio.gather(*(client.request(m, url, **kw) for m, url, kw in requests)))

    return harness.run(work)


def send_from_many(harness: Harness, requests: list[Request]) -> list[httpx.Response]:
    """Send every request concurrently, each from a client address of its own (as many users would)."""

    async def one(index: int, request: Request) -> httpx.Response:
        ip = f"10.1.{index // 250}.{index % 250 + 1}"
        transport = httpx.ASGITransport(app=harness.client.app, client=(ip, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            method, url, kwargs = request
            return await client.request(method, url, **kwargs)

    async def work() -> list[httpx.Response]:
        return list(await asyncio.gather(*(one(i, request) for i, request in enumerate(requests))))

    return harness.run(work)


def send(harness: Harness, method: str, url: str, ip: str, **kwargs: Any) -> httpx.Response:
    """One request from `ip`."""
    return send_together(harness, [(method, url, kwargs)], ip)[0]
