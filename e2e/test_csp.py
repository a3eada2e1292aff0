"""The CSP check itself: the console watcher in conftest.py really sees a violation."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page

pytestmark = pytest.mark.e2e

INJECT_INLINE_SCRIPT = """() => {
  const s = document.createElement('script');
  s.textContent = 'window.__inlineRan = true';
  document.body.appendChild(s);
}"""


def test_pages_send_a_strict_csp(page: Page):
    response = page.goto("/login")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self' 'nonce-" in csp and "unsafe-inline" not in csp
    nonce = csp.split("'nonce-", 1)[1].split("'", 1)[0]
    tags = page.locator("script")
    assert tags.count() > 0
    for i in range(tags.count()):
        assert (
            tags.nth(i).get_attribute("nonce") is not None
            or tags.nth(i).evaluate("el => el.nonce") == nonce
        )


@pytest.mark.csp_violation_expected
def test_inline_script_is_blocked_and_reported(page: Page, browser_log):
    page.goto("/")
    with page.expect_console_message(lambda m: "Content Security Policy" in m.text):
        page.evaluate(INJECT_INLINE_SCRIPT)
    assert page.evaluate("window.__inlineRan") is None
    assert browser_log.csp_violations, "the console watcher missed the violation"
