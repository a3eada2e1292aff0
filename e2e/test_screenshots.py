"""Full-page screenshots of the main pages at desktop and phone sizes (``e2e/artifacts/``),
and no horizontal scrolling on a phone."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
VIEWPORTS = {
    "desktop": {"viewport": {"width": 1280, "height": 900}},
    "phone": {
        "viewport": {"width": 375, "height": 812},
        "is_mobile": True,
        "has_touch": True,
        "device_scale_factor": 2,
    },
}
NO_OVERFLOW = "document.documentElement.scrollWidth <= window.innerWidth + 1"
# With is_mobile, Chromium zooms out to fit a page wider than the screen and innerWidth grows
# with it (375 -> 402 for a too-wide table), so NO_OVERFLOW alone passes. The layout viewport
# (clientWidth, 375) does not grow: compare with that too.
NO_OVERFLOW_LAYOUT = (
    "document.documentElement.scrollWidth <= document.documentElement.clientWidth + 1"
)
WIDE_ELEMENTS = """() => [...document.querySelectorAll('body *')]
  .filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
  .slice(0, 8)
  .map(e => `${e.tagName.toLowerCase()}.${[...e.classList].join('.')} right=${
    Math.round(e.getBoundingClientRect().right)}`)"""


def _log_in(portal, page: Page, who: str, new_context) -> dict | None:
    """Log ``who`` in (in the desktop context); the storage state for the phone context."""
    if who == "anonymous":
        return None
    if who == "depositor":
        portal.login_depositor(page, portal.demo.depositors[2])
    elif who == "operator":
        portal.login_operator(page, portal.demo.operators[0])
    else:  # a staff username: reuse the session from the role journey when there is one
        state = portal.staff_state(new_context, who)
        page.context.add_cookies(state["cookies"])
    return page.context.storage_state()


PAGES = [  # screenshot name, who is logged in, path, expected h1 (None: the employer's name)
    ("public-home", "anonymous", "/", "住房公积金“跨省通办”"),
    ("depositor-login", "anonymous", "/login", "个人登录"),
    ("depositor-home", "depositor", "/me/", "您好，"),
    ("employer-overview", "operator", "/employer/", None),
    ("intranet-clerk", "clerk", "/staff/", "工作台"),
    ("intranet-liaison", "liaison", "/staff/", "工作台"),
    ("intranet-admin", "admin", "/staff/", "工作台"),
    ("intranet-auditor", "auditor", "/staff/", "工作台"),
    ("intranet-dashboard", "official", "/staff/dashboard/", "业务统计"),
]


@pytest.mark.parametrize(
    ("name", "who", "path", "heading"), [pytest.param(*p, id=p[0]) for p in PAGES]
)
def test_screenshots_desktop_and_phone(new_context, portal, name, who, path, heading):
    ARTIFACTS.mkdir(exist_ok=True)
    desktop = new_context(**VIEWPORTS["desktop"])
    state = _log_in(portal, desktop.new_page(), who, new_context)
    phone = new_context(**VIEWPORTS["phone"], storage_state=state)
    for size, context in (("desktop", desktop), ("phone", phone)):
        page = context.pages[0] if context.pages else context.new_page()
        page.goto(path)
        expect(page).to_have_url(portal.server.url + path)
        h1 = page.get_by_role("heading", level=1)
        expect(h1).to_contain_text(heading or portal.demo.operators[0].employer_name)
        page.evaluate("document.fonts.ready")
        page.screenshot(path=ARTIFACTS / f"{name}-{size}.png", full_page=True)
        if size == "phone":
            widths = page.evaluate(
                "[document.documentElement.scrollWidth, window.innerWidth,"
                " document.documentElement.clientWidth]"
            )
            message = (
                f"{name}: horizontal overflow on a 375 px phone "
                f"(scrollWidth, innerWidth, clientWidth = {widths}); too wide: "
                f"{page.evaluate(WIDE_ELEMENTS)}; see {name}-phone.png"
            )
            assert page.evaluate(NO_OVERFLOW), message
            assert page.evaluate(NO_OVERFLOW_LAYOUT), message
