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


def _serve_this_folder(host: str):
    """http://<host>:<port>, serving this folder: another origin than the API's."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(HERE)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://{host}:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def page_origin():
    yield from _serve_this_folder("127.0.0.1")


@pytest.fixture(scope="session")
def second_origin():
    """The same page from a second allowed origin (another host name, another port)."""
    yield from _serve_this_folder("localhost")


@pytest.fixture(scope="session")
def unlisted_origin():
    """The same page from an origin the API does not allow."""
    yield from _serve_this_folder("localhost")


@pytest.fixture(scope="session")
def api(page_origin, second_origin):
    """`python -m devtools.run --scratch` allowing the page's two origins."""
    from devtools.local_run import LocalRun

    allowed = f"{page_origin},{second_origin}"
    run = LocalRun(extra_env={"CORS_ALLOW_ORIGIN": allowed, "LOGIN_RATE_PER_MINUTE": "100"})
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


def _open(browser: Any, origin: str, api: Any) -> Any:
    tab = browser.new_page()
    tab.goto(f"{origin}/page.html?api={api.base_url}")
    tab.wait_for_function("document.title === 'ready'")
    return tab


@pytest.fixture(scope="session")
def page(browser, page_origin, api):
    return _open(browser, page_origin, api)


@pytest.fixture(scope="session")
def second_page(browser, second_origin, api):
    return _open(browser, second_origin, api)


@pytest.fixture(scope="session")
def unlisted_page(browser, unlisted_origin, api):
    return _open(browser, unlisted_origin, api)


def pytest_collection_modifyitems(config, items):
    if os.environ.get("BROWSER_TEST") == "1":
        return
    skip = pytest.mark.skip(reason="a browser test: `make browser-test` runs it (Debian's Chromium)")
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(skip)
