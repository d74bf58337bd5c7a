"""Headless Chromium for browser tests: Debian's ``chromium`` driven by Playwright.

We never download a browser (``playwright install`` is not used): the tests
launch the system Chromium at ``/usr/bin/chromium`` (or ``$SMSGW_CHROMIUM``).
If it is missing the tests *fail* with a message saying how to install it;
CI installs it, so a silent skip would hide a broken CI image.

Use the fixtures by importing them into a test module::

    from tests.support.browser import browser_page, chromium, new_page  # noqa: F401

``browser_page`` is a fresh Playwright ``Page`` (own context: no cookies are
shared between tests) that records console errors, uncaught page errors and
Content-Security-Policy violations; :func:`page_problems` returns them.
``new_page()`` opens more such pages, each in a context of its own (a second
person, or a fresh browser).
"""

from __future__ import annotations

import dataclasses

import os
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("SMSGW_CHROMIUM", "/usr/bin/chromium")

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Tenant addresses are <slug>.localhost: resolve them (and localhost) to loopback.
    "--host-resolver-rules=MAP *.localhost 127.0.0.1, MAP localhost 127.0.0.1",
]

# Runs in every page before its own scripts: CDP-injected, so CSP does not block it.
# Each violation is kept in the document (window.__cspViolations) and reported to
# the test through a binding, so those of pages we have since left are kept too.
_CSP_PROBE = """
window.__cspViolations = [];
(() => {
  const documentId = Math.random().toString(36).slice(2) + Date.now().toString(36);
  window.__cspDocument = documentId;
  document.addEventListener('securitypolicyviolation', (e) => {
    const text = e.violatedDirective + ' blocked ' + (e.blockedURI || 'inline');
    window.__cspViolations.push(text);
    if (typeof window.__smsgwCspViolation === 'function') {
      window.__smsgwCspViolation(documentId, window.__cspViolations.length - 1, text);
    }
  });
})();
"""


def chromium_executable() -> str:
    """The path of the system Chromium, or fail the test with how to get it."""
    path = Path(CHROMIUM)
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.fail(
            f"Chromium is not installed at {CHROMIUM}: the browser tests drive the system browser "
            "and never download one. Install it with `apt-get install chromium` (Debian), or point "
            "SMSGW_CHROMIUM at a Chromium binary.", pytrace=False)
    return str(path)


def launch_chromium(playwright):
    """Launch headless Chromium from ``playwright.sync_api.sync_playwright()``."""
    executable = chromium_executable()
    try:
        return playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
    except Exception as exc:  # a broken install must fail loudly, not skip
        pytest.fail(f"Chromium at {executable} did not start: {exc}", pytrace=False)


@pytest.fixture(scope="module")
def chromium():
    """One browser per test module (the Playwright sync loop ends with the module)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("The python package playwright is missing: pip install -e '.[dev]'", pytrace=False)
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            yield browser
        finally:
            browser.close()


def open_page(browser, locale: str = "en-US", accept_language: str = "en-US,en;q=0.9"):
    """A page in a new browser context (no cookies) that records its problems.

    Close it with ``page.context.close()``; the fixtures below do that for you.
    """
    context = browser.new_context(locale=locale, extra_http_headers={"Accept-Language": accept_language})
    context.set_default_timeout(15_000)
    violations: dict[tuple[str, int], str] = {}
    context.expose_binding("__smsgwCspViolation",
                           lambda _source, document, index, text: violations.setdefault((document, index), text))
    context.add_init_script(_CSP_PROBE)
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(f"console.{msg.type}: {msg.text} @ {msg.location.get('url')}")
            if msg.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(f"uncaught: {exc}"))
    # A request the browser itself cancelled (net::ERR_ABORTED: a page's short poll in flight when the
    # next page is opened) is no fault of the page; every other failure is.
    page.on("requestfailed", lambda req: problems.append(f"request failed: {req.url} ({req.failure})")
            if "ERR_ABORTED" not in (req.failure or "") else None)
    _problems[id(page)] = (problems, violations)
    context.on("close", lambda _context: _problems.pop(id(page), None))
    return page


@pytest.fixture
def browser_page(chromium):
    """A page in a fresh browser context (English, no cookies) that records problems."""
    page = open_page(chromium)
    try:
        yield page
    finally:
        page.context.close()


@pytest.fixture
def new_page(chromium):
    """Open more recording pages, each in its own fresh context (another person, another browser).

    ``new_page()`` or ``new_page(locale="de-DE", accept_language="de-DE,de;q=0.9")``.
    """
    opened = []

    def factory(**kwargs):
        page = open_page(chromium, **kwargs)
        opened.append(page)
        return page

    yield factory
    for page in opened:
        page.context.close()


_problems: dict[int, tuple[list[str], dict]] = {}


def page_problems(page, allow=()) -> list[str]:
    """Console errors, uncaught errors, failed requests and CSP violations seen so far.

    CSP violations count for every document the page has shown, not only the
    current one. ``allow`` holds substrings of expected messages (say, the 404
    of a page we asked for on purpose); those are left out.
    """
    problems, reported = _problems.get(id(page), ([], {}))
    found = list(problems)
    violations = dict(reported)
    try:
        # The current document's list is authoritative: a report may still be on its way.
        document, current = page.evaluate("[window.__cspDocument || '', window.__cspViolations || []]")
        for index, text in enumerate(current):
            violations.setdefault((document, index), text)
    except Exception as exc:  # the page is gone: that is a problem too
        found.append(f"could not read CSP violations: {exc}")
    found += [f"CSP violation: {text}" for text in violations.values()]
    return [p for p in found if not any(a in p for a in allow)]


def forget_problems(page) -> None:
    """Start :func:`page_problems` afresh for ``page`` (a page kept open for many checks)."""
    problems, violations = _problems.get(id(page), ([], {}))
    problems.clear()
    violations.clear()
    page.evaluate("window.__cspViolations = []")


# -- shared by the browser tests ----------------------------------------------------------------

@pytest.fixture(scope="module")
def server(live_server):
    """The live server, its public port set to the one it listens on (redirects and mail links
    cross hosts: the configured port would be the default's, not the test server's)."""
    platform = live_server.platform
    configured = platform.settings
    platform.settings = dataclasses.replace(configured, port=live_server.port)
    try:
        yield live_server
    finally:
        platform.settings = configured


def address(server, slug: str, path: str = "/") -> str:
    """The URL of ``path`` in workspace ``slug`` of the live server."""
    return f"http://{slug}.{server.platform.settings.base_domain}:{server.port}{path}"


def submit(page, selector: str = "main form button[type=submit]"):
    """Click ``selector`` and wait for the page it leads to; the navigation's response."""
    with page.expect_navigation() as nav:
        page.click(selector)
    return nav.value


def keep_screenshot(page, path, full_page: bool = False) -> bool:
    """Write a screenshot of ``page`` to ``path`` for people to look at; whether it was written.

    A screenshot is a by-product, not a check: Chromium sometimes answers "Unable to capture
    screenshot" when its compositor is busy (seen on a loaded CI machine), so one failed capture is
    tried again after a moment and a second failure is reported as a warning, not a failed test.
    """
    import warnings
    from playwright.sync_api import Error as PlaywrightError

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    for attempt in (1, 2):
        try:
            page.screenshot(path=str(path), full_page=full_page)
            return True
        except PlaywrightError as e:
            if attempt == 2:
                warnings.warn(f"no screenshot written to {path}: {e}", stacklevel=2)
                return False
            page.wait_for_timeout(500)
    return False


def overflowing(page) -> list[str]:
    """Elements of the page's content that reach past the right edge of the screen. (The top
    navigation is the layout's, shared by every page, and left out; so is what scrolls inside a
    box of its own that fits the screen, such as a wide chart on a phone.)"""
    return page.evaluate("""(() => {
        const edge = window.innerWidth + 0.5;
        const inFittingScroller = e => {
            for (let a = e.parentElement; a && a !== document.body; a = a.parentElement) {
                if (a instanceof HTMLElement && ['auto', 'scroll', 'hidden'].includes(getComputedStyle(a).overflowX))
                    return a.getBoundingClientRect().right <= edge;
            }
            return false;
        };
        return Array.from(document.querySelectorAll('main, main *'))
            .filter(e => e.getBoundingClientRect().right > edge && !inFittingScroller(e))
            .map(e => e.tagName + '.' + (e.getAttribute('class') || '') + ' '
                      + Math.round(e.getBoundingClientRect().right));
    })()""")


def sign_in_owner(page, server, tenant) -> None:
    """Sign ``tenant``'s owner in on ``page`` through the sign-in form."""
    from tests.support.identity import OWNER_PASSWORD, owner_email

    page.goto(address(server, tenant.slug, "/login"))
    page.fill("#f-email", owner_email(tenant))
    page.fill("#f-password", OWNER_PASSWORD)
    submit(page)
