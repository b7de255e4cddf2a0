"""The browser-test harness: Debian's chromium through Playwright, a recorder of everything a browser
context saw (responses with their bodies, console messages, CSP violations), a stand-in for a customer
app's redirect URL, and an axe-core accessibility check."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import BrowserContext, ConsoleMessage, Error, Page, Response, Route

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
AXE = ROOT / "tests/peers/axe-core/node_modules/axe-core/axe.min.js"
ARTIFACTS = ROOT / "test-artifacts"
BLOCKING_IMPACTS = ("serious", "critical")

# An init script runs before the page's own scripts and is not subject to the page's CSP; it reports
# each violation on the console, which the recorder reads (it survives navigations, a variable would not).
CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error("CSP violation: " + event.violatedDirective + " blocked " + (event.blockedURI || "inline"));
});
"""
CSP_CONSOLE = re.compile(r"Content Security Policy|CSP violation", re.IGNORECASE)


@dataclass
class Seen:
    url: str
    status: int
    headers: dict[str, str]
    body: str


@dataclass
class Recorder:
    """What a browser context saw: every response (headers and body), every console message."""

    responses: list[Seen] = field(default_factory=list)
    console: list[str] = field(default_factory=list)

    def attach(self, context: BrowserContext) -> None:
        context.add_init_script(CSP_LISTENER)
        context.on("page", self._watch)

    def _watch(self, page: Page) -> None:
        page.on("response", self._response)
        page.on("console", self._console)

    def _response(self, response: Response) -> None:
        try:
            body = response.body().decode("utf-8", errors="replace")
        except Error:  # a redirect has no body to read; its headers (Location) are still recorded
            body = ""
        self.responses.append(Seen(response.url, response.status, response.all_headers(), body))

    def _console(self, message: ConsoleMessage) -> None:
        self.console.append(f"{message.type}: {message.text}")

    @property
    def csp_violations(self) -> list[str]:
        return [line for line in self.console if CSP_CONSOLE.search(line)]

    def containing(self, needle: str) -> list[str]:
        """The URLs of the responses whose URL, headers or body contain `needle`."""
        return [
            seen.url
            for seen in self.responses
            if needle in seen.url or needle in seen.body or needle in json.dumps(seen.headers)
        ]


@dataclass
class CustomerApp:
    """Stands in for a customer app at its redirect URL: answers a small page and keeps every URL the
    browser was sent to, so a test reads the code and state the way the app's callback would."""

    redirect_url: str
    arrivals: list[str] = field(default_factory=list)

    def attach(self, context: BrowserContext) -> None:
        context.route(self.redirect_url + "*", self._arrive)

    def _arrive(self, route: Route) -> None:
        self.arrivals.append(route.request.url)
        body = '<!doctype html><html lang="en"><title>Callback</title><main><h1>Signed in</h1></main></html>'
        route.fulfill(status=200, content_type="text/html", body=body)


def artifacts_folder(test_name: str) -> Path:
    """test-artifacts/<test name>/, the name made safe for a path (parametrized ids have brackets)."""
    return ARTIFACTS / re.sub(r"[^A-Za-z0-9_.-]+", "_", test_name)


def save_artifacts(context: BrowserContext, folder: Path) -> Path:
    """A screenshot and the HTML of every open page of `context`, in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    for index, page in enumerate(context.pages):
        if page.is_closed():
            continue
        page.screenshot(path=folder / f"page-{index}.png", full_page=True)
        (folder / f"page-{index}.html").write_text(page.content())
    return folder


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's violations on the page as it is now.

    axe's source is evaluated through the DevTools protocol rather than added as a <script>: the hosted
    pages' CSP (`default-src 'none'`) blocks any script tag, which is the point of it, and evaluating
    leaves that CSP in force for the rest of the test instead of bypassing it for the whole context.
    """
    if not page.evaluate("typeof window.axe === 'object'"):
        page.evaluate(AXE.read_text())
    result: list[dict[str, Any]] = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
    )
    return result


def assert_accessible(page: Page) -> None:
    """No serious or critical axe-core violation on the page, listed readably if there are any."""
    blocking = [v for v in axe_violations(page) if v.get("impact") in BLOCKING_IMPACTS]
    lines = [
        f"{v['impact']}: {v['id']} ({v['help']}) at {', '.join(str(n['target']) for n in v['nodes'])}"
        for v in blocking
    ]
    assert not blocking, f"axe-core on {page.url}:\n" + "\n".join(lines)
