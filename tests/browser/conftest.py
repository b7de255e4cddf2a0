"""Fixtures of the browser tests: one headless chromium per session (Debian's, never a downloaded one),
a real API process per test on the test's own database, and fresh browser contexts per test that save
a screenshot and the HTML of each page under test-artifacts/<test>/ when the test fails."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Generator, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from tests.browser.support import AXE, CHROMIUM, Recorder, artifacts_folder, save_artifacts
from tests.factories import Harness
from tests.processes import STARTUP_SECONDS, ApiProcess, free_port, settings_env, stop_process

ACTION_TIMEOUT_MS = 10_000  # bounded waits: a missing element fails in seconds, not at pytest's timeout
REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()  # a test's reports by phase (setup, call, teardown)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keeps each phase's report on the test item (`item.stash`), where the context fixture reads
    whether the test failed."""
    report = yield
    item.stash.setdefault(REPORTS, {})[report.when] = report
    return report


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.path).parents:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def chromium_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One headless chromium for the session, answering the DevTools protocol on a loopback port.

    Started here rather than by Playwright's launch(): the sync Playwright API keeps an event loop
    running on the main thread while it is open, and the suite's fixtures use asyncio.run (the SQLite
    template, the Postgres cleaner), so each test opens Playwright for itself and connects to this
    browser. --no-sandbox: chromium refuses to start its sandbox as root ("Running as root without
    --no-sandbox is not supported"), and CI and this sandbox run as root; Playwright's own launch()
    passes the same flag by default. The pages it opens are the service's own, on loopback.
    """
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium; .ci/run installs it)")
    assert AXE.exists(), f"{AXE} is missing: npm ci --prefix tests/peers/axe-core (make installs it)"
    profile = tmp_path_factory.mktemp("chromium")
    log = profile.parent / "chromium.log"
    command = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--remote-debugging-address=127.0.0.1",
        "--remote-debugging-port=0",  # chromium picks a free port and writes it to DevToolsActivePort
        f"--user-data-dir={profile}",
        "--no-first-run",
        "--disable-gpu",
        "about:blank",
    ]
    with log.open("ab") as output:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT)
    try:
        active = profile / "DevToolsActivePort"
        deadline = time.monotonic() + STARTUP_SECONDS
        while not (active.exists() and active.read_text().count("\n") >= 1):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"chromium did not start:\n{log.read_text(errors='replace')}")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{active.read_text().splitlines()[0]}"
    finally:
        stop_process(process)


@pytest.fixture
def chromium(chromium_endpoint: str, service: ApiProcess) -> Iterator[Browser]:
    """The session's chromium, through a Playwright opened for this test (after the database and the
    service are set up, which need the main thread's event loop free)."""
    with sync_playwright() as driver:
        browser = driver.chromium.connect_over_cdp(chromium_endpoint)
        yield browser
        browser.close()


@pytest.fixture
def service_env() -> dict[str, str]:
    """Extra environment of the service process: override this fixture in a module for other settings."""
    return {}


@pytest.fixture
def service(harness: Harness, service_env: dict[str, str], tmp_path: Path) -> Iterator[ApiProcess]:
    """The API as a real uvicorn process, serving the test's database (the harness sets data up
    in-process; the browser talks only to this process)."""
    port = free_port()
    # The browser's Origin is the process's own URL: the console's and the hosted pages' host.
    own = {"SILVER_ACCOUNTS_URL": f"http://127.0.0.1:{port}", "SILVER_AUTH_URL": f"http://127.0.0.1:{port}"}
    api = ApiProcess(settings_env(harness.settings, **(own | service_env)), tmp_path / "api.log", port)
    api.start()
    yield api
    api.stop()


@pytest.fixture
def new_context(
    chromium: Browser, service: ApiProcess, request: pytest.FixtureRequest
) -> Iterator[Callable[[Recorder], BrowserContext]]:
    """Makes a fresh browser context (its own cookies: another person) with `base_url` at the
    service, recorded by the given Recorder; each context's pages are saved if the test fails."""
    made: list[BrowserContext] = []

    def make(recorder: Recorder) -> BrowserContext:
        context = chromium.new_context(base_url=service.url)
        context.set_default_timeout(ACTION_TIMEOUT_MS)
        recorder.attach(context)
        made.append(context)
        return context

    yield make
    reports = request.node.stash.get(REPORTS, {})
    failed = any(report.failed for report in reports.values())
    for index, context in enumerate(made):
        if failed:
            name = request.node.name if index == 0 else f"{request.node.name}-{index}"
            save_artifacts(context, artifacts_folder(name))
        context.close()


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def context(new_context: Callable[[Recorder], BrowserContext], recorder: Recorder) -> BrowserContext:
    return new_context(recorder)


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()
