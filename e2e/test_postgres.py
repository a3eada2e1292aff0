"""The depositor login journey against a portal running on PostgreSQL."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e


@pytest.fixture
def browser_context_args(browser_context_args, pg_portal_server):
    """Contexts in this module talk to the PostgreSQL-backed portal."""
    return {**browser_context_args, "base_url": pg_portal_server.url}


def test_depositor_login_on_postgresql(page: Page, pg_portal):
    person = pg_portal.demo.depositors[0]
    pg_portal.login_depositor(page, person)

    expect(page.get_by_role("heading", name="个人账户")).to_be_visible()
    expect(page.locator(".balance-value")).to_have_text(re.compile(r"^[\d,]+\.\d{2}$"))
    expect(page.locator(".facts")).to_contain_text(pg_portal.masked_id(person.resident_id))

    page.get_by_role("button", name="退出").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    page.goto("/me/")
    expect(page).to_have_url(re.compile(r"/login\?next="))


def test_depositor_first_login_on_postgresql(page: Page, pg_portal):
    person = pg_portal.demo.unactivated[0]
    page.goto("/activate")
    page.get_by_label("身份证号码", exact=True).fill(person.resident_id)
    page.get_by_label("姓名", exact=True).fill(person.name)
    page.get_by_role("button", name="发送验证码").click()
    expect(page).to_have_url(re.compile(r"/password/activate$"))
    pg_portal.submit_sms_code(page, person.phone, purpose_text="首次登录设置密码")
    page.get_by_label("新密码", exact=True).fill("Pg2026secure")
    page.get_by_label("确认新密码", exact=True).fill("Pg2026secure")
    page.get_by_role("button", name="设置密码").click()
    expect(page.locator(".flash")).to_contain_text("密码已设置")
    pg_portal.login_depositor(page, person, password="Pg2026secure")
