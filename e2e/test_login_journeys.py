"""Login journeys for depositors, employer operators and staff, in a real browser."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e

STAFF_ROLES = ["clerk", "liaison", "handler", "official", "admin", "auditor"]  # demo usernames


def test_home_links_to_every_login(page: Page):
    page.goto("/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("跨省通办")
    for name, path in (
        ("个人登录", "/login"),
        ("单位登录", "/employer/login"),
        ("工作人员登录", "/staff/login"),
    ):
        expect(page.get_by_role("link", name=name, exact=True)).to_have_attribute("href", path)
    page.get_by_role("link", name="个人登录", exact=True).click()
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("个人登录")


def test_depositor_first_login_sets_password_then_logs_in(page: Page, portal):
    person = portal.demo.unactivated[0]
    new_password = "Juzhu2026ok"

    page.goto("/login")
    page.get_by_role("link", name="首次登录", exact=True).click()
    expect(page).to_have_url(re.compile(r"/activate$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("首次登录：设置密码")
    page.get_by_label("身份证号码", exact=True).fill(person.resident_id)
    page.get_by_label("姓名", exact=True).fill(person.name)
    page.get_by_role("button", name="发送验证码").click()

    expect(page).to_have_url(re.compile(r"/password/activate$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("设置密码")
    portal.submit_sms_code(page, person.phone, purpose_text="首次登录设置密码")
    page.get_by_label("新密码", exact=True).fill(new_password)
    page.get_by_label("确认新密码", exact=True).fill(new_password)
    page.get_by_role("button", name="设置密码").click()

    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.locator(".flash")).to_contain_text("密码已设置")

    portal.login_depositor(page, person, password=new_password)
    expect(page.get_by_role("heading", level=1)).to_contain_text("您好")


def test_depositor_login_with_sms_code_shows_masked_account(page: Page, portal):
    person = portal.demo.depositors[0]
    portal.login_depositor(page, person)

    expect(page.get_by_role("heading", name="个人账户")).to_be_visible()
    expect(page.locator(".balance-label")).to_contain_text("账户余额")
    expect(page.locator(".balance-value")).to_have_text(re.compile(r"^[\d,]+\.\d{2}$"))
    id_cell = (
        page.locator(".facts > div")
        .filter(has=page.locator("dt", has_text="身份证号码"))
        .locator("dd")
    )
    expect(id_cell).to_have_text(portal.masked_id(person.resident_id))
    expect(id_cell).to_contain_text("**********")
    phone_cell = (
        page.locator(".facts > div")
        .filter(has=page.locator("dt", has_text="手机号码"))
        .locator("dd")
    )
    expect(phone_cell).to_have_text(portal.masked_phone(person.phone))
    body = page.locator("body")
    expect(body).not_to_contain_text(person.resident_id)
    expect(body).not_to_contain_text(person.phone)
    expect(page.locator(".who-name")).to_have_text(person.name)


def test_employer_operator_login_shows_overview(page: Page, portal):
    operator = portal.demo.operators[0]
    page.goto("/")
    page.get_by_role("link", name="单位登录", exact=True).click()
    portal.login_operator(page, operator)

    expect(page.get_by_role("heading", name="单位信息")).to_be_visible()
    expect(page.locator(".facts")).to_contain_text(operator.credit_code)
    expect(page.locator(".who .badge")).to_have_text("单位经办人")


@pytest.mark.parametrize("username", STAFF_ROLES)
def test_staff_login_with_totp_reaches_workbench(page: Page, portal, username: str):
    portal.login_staff(page, username)
    expect(page).to_have_title(re.compile(r"^工作台"))


@pytest.mark.parametrize("kind", ["depositor", "operator", "staff"])
def test_wrong_password_is_refused_on_the_same_page(page: Page, portal, kind: str):
    if kind == "depositor":
        path, button = "/login", "下一步：短信验证"
        page.goto(path)
        page.get_by_label("身份证号码", exact=True).fill(portal.demo.depositors[0].resident_id)
    elif kind == "operator":
        path, button = "/employer/login", "下一步：短信验证"
        operator = portal.demo.operators[0]
        page.goto(path)
        page.get_by_label("统一社会信用代码", exact=True).fill(operator.credit_code)
        page.get_by_label("经办人身份证号码", exact=True).fill(operator.resident_id)
    else:
        path, button = "/staff/login", "下一步：动态口令"
        page.goto(path)
        page.get_by_label("用户名", exact=True).fill("official")
    heading = page.get_by_role("heading", level=1).inner_text()
    page.get_by_label("密码", exact=True).fill(portal.demo_password + "x")
    page.get_by_role("button", name=button).click()

    expect(page.get_by_role("alert")).to_contain_text("登录信息不正确")
    expect(page).to_have_url(re.compile(re.escape(path) + "$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(heading)
    expect(page.get_by_label("密码", exact=True)).to_have_value("")


def test_depositor_logout_ends_the_session(page: Page, portal):
    portal.login_depositor(page, portal.demo.depositors[1])

    page.get_by_role("button", name="退出").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.locator(".flash")).to_contain_text("您已安全退出")
    expect(page.get_by_role("button", name="退出")).to_have_count(0)

    page.go_back()  # the browser's back button must not show the account again
    expect(page).to_have_url(re.compile(r"/login\?next="))
    expect(page.get_by_role("heading", level=1)).to_have_text("个人登录")

    page.goto("/me/")
    expect(page).to_have_url(re.compile(r"/login\?next=(/|%2F)me(/|%2F)"))
    expect(page.get_by_role("heading", level=1)).to_have_text("个人登录")


def test_staff_logout_returns_to_staff_login(page: Page, portal):
    portal.login_staff(page, "handler2")
    page.get_by_role("button", name="退出").click()
    expect(page).to_have_url(re.compile(r"/staff/login$"))
    expect(page.locator(".flash")).to_contain_text("您已安全退出")
    page.goto("/staff/")
    expect(page).to_have_url(re.compile(r"/staff/login\?next="))
