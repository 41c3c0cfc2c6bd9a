"""The browser test's stage: the local run command on scratch data, a page served from a second
origin, and Debian's Chromium driven by Playwright. `make browser-test` runs it (with
--confcutdir, so the suite's database fixtures stay out of it); elsewhere it is skipped."""

from __future__ import annotations

import functools
import os
import shutil
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="session")
def page_origin():
    """http://127.0.0.1:<port>, serving this folder: another origin than the API's."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(HERE)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def api(page_origin):
    """`python -m devtools.run --scratch` allowing the page's origin."""
    from devtools.local_run import LocalRun

    run = LocalRun(extra_env={"CORS_ALLOW_ORIGIN": page_origin, "LOGIN_RATE_PER_MINUTE": "100"})
    run.start()
    yield run
    assert run.stop() == 0, run.tail()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    from devtools.browser import CHROMIUM, launch

    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `python -m devtools.browser install` (make browser-test does)")
    with sync_playwright() as playwright:
        context, profile = launch(playwright)
        yield context
        context.close()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="session")
def page(browser, page_origin, api):
    tab = browser.new_page()
    tab.goto(f"{page_origin}/page.html?api={api.base_url}")
    tab.wait_for_function("document.title === 'ready'")
    return tab


def pytest_collection_modifyitems(config, items):
    if os.environ.get("BROWSER_TEST") == "1":
        return
    skip = pytest.mark.skip(reason="a browser test: `make browser-test` runs it (Debian's Chromium)")
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(skip)
