"""Employer-hall journeys in Chromium (issue 5): log in → change the deposit ratios → see the
change and its history; the primary operator adds a second operator, who activates and logs
in; the roster's search as you type and the account detail's htmx paging. Screenshots at
desktop and phone size go to ``$EMPLOYER_SHOTS`` (default ``e2e/artifacts/employer``)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from e2e.conftest import ARTIFACTS, DEMO_PASSWORD, ROOT, Operator, masked_phone, read_sms_code

pytestmark = pytest.mark.e2e

SHOTS = Path(os.environ.get("EMPLOYER_SHOTS", str(ARTIFACTS / "employer")))
VIEWPORTS = {
    "desktop": {"viewport": {"width": 1280, "height": 900}},
    "phone": {"viewport": {"width": 375, "height": 812}, "is_mobile": True, "has_touch": True},
}
NO_OVERFLOW = "document.documentElement.scrollWidth <= document.documentElement.clientWidth + 1"


@dataclass
class Primaries:
    ratios: Operator  # changes the ratios
    manager: Operator  # adds an operator
    browse: Operator  # roster and paging, screenshots
    registration: tuple[str, str]  # receipt number, credit code of a 单位登记开户 case


def _primaries(server) -> Primaries:
    """Primary operators of three employers other than the one other journeys log in with."""
    from portal.db import make_database
    from portal.models import MODELS, Employer, EmployerOperator, ProxyCase

    if getattr(server, "_employer_people", None):
        return server._employer_people
    taken = {server.demo.operators[0].credit_code}
    database = make_database(server.database_url, root=str(ROOT))
    with database.bind_ctx(MODELS):
        database.connect()
        try:
            found = [
                Operator(o.resident_id, o.name, o.phone, o.employer.credit_code, o.employer.name)
                for o in EmployerOperator.select(EmployerOperator, Employer)
                .join(Employer)
                .where(EmployerOperator.is_primary & EmployerOperator.password_hash.is_null(False))
                .order_by(EmployerOperator.id)
                if o.employer.credit_code not in taken
            ]
            case = (
                ProxyCase.select()
                .where(
                    (ProxyCase.item == "employer_registration") & (ProxyCase.direction == "inbound")
                )
                .order_by(ProxyCase.id)
                .first()
            )
            registration = (case.receipt_no, case.application["credit_code"])
        finally:
            database.close()
    assert len(found) >= 3, found
    server._employer_people = Primaries(found[0], found[1], found[2], registration)
    return server._employer_people


def _new_resident_id() -> str:
    from portal.rules.ids import resident_id_check_char

    first17 = "15292119920314002"
    return first17 + resident_id_check_char(first17)


def _nav(page: Page, label: str):
    return page.get_by_role("navigation", name="单位业务").get_by_role(
        "link", name=label, exact=True
    )


def _shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _login(page: Page, who: Operator, password: str = DEMO_PASSWORD) -> None:
    page.goto("/employer/login")
    page.get_by_label("统一社会信用代码", exact=True).fill(who.credit_code)
    page.get_by_label("经办人身份证号码", exact=True).fill(who.resident_id)
    page.get_by_label("密码", exact=True).fill(password)
    page.get_by_role("button", name="下一步：短信验证").click()
    expect(page).to_have_url(re.compile(r"/employer/login/code$"))
    expect(page.get_by_text(masked_phone(who.phone))).to_be_visible()
    page.get_by_label("短信验证码", exact=True).fill(read_sms_code(page.context, who.phone))
    page.get_by_role("button", name="登录", exact=True).click()
    expect(page).to_have_url(re.compile(r"/employer/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(who.employer_name)


def _request_code(page: Page, who: Operator, purpose_text: str) -> str:
    page.get_by_role("button", name="获取验证码").click()
    expect(page.get_by_role("status").filter(has_text="验证码已发送至手机")).to_be_visible()
    return read_sms_code(page.context, who.phone, purpose_text)


def test_change_ratios_and_see_the_history(new_context, portal):
    who = _primaries(portal.server).ratios
    page = new_context(**VIEWPORTS["desktop"]).new_page()
    _login(page, who)
    _nav(page, "信息变更").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("单位缴存信息变更")
    ratios = page.locator("#ratios")
    current = int(ratios.get_by_label("单位缴存比例（%）").input_value())
    new = 10 if current != 10 else 8
    # out of range first: refused next to the field, nothing changes
    code = _request_code(page, who, "信息变更")
    ratios.get_by_label("单位缴存比例（%）").fill("13")
    ratios.get_by_label("个人缴存比例（%）").fill(str(new))
    ratios.get_by_label("短信验证码").fill(code)
    ratios.get_by_role("button", name="变更缴存比例").click()
    ratios = page.locator("#ratios")
    expect(ratios.locator(".error").first).to_have_text(
        "单位缴存比例须在 5%–12% 之间，您填写的是 13%"
    )
    ratios.get_by_label("单位缴存比例（%）").fill(str(new))
    ratios.get_by_label("个人缴存比例（%）").fill(str(new))
    ratios.get_by_label("短信验证码").fill(code)  # not spent by the refused attempt
    ratios.get_by_role("button", name="变更缴存比例").click()
    expect(page.locator(".flash-success")).to_contain_text("缴存比例已变更")
    history = page.locator("#history table")
    first = history.locator("tbody tr").first
    expect(first).to_contain_text(f"{new}%")
    expect(first).to_contain_text("已生效")
    expect(first).to_contain_text(who.name)
    expect(history).to_contain_text("单位缴存比例")
    expect(history).to_contain_text("个人缴存比例")
    expect(page.locator("#now-h + dl")).to_contain_text(f"单位 {new}% · 个人 {new}%")
    _shot(page, "changes-history-desktop")
    _nav(page, "概况").click()
    expect(page.locator("#emp-h").locator("xpath=ancestor::section")).to_contain_text(
        f"单位 {new}% · 个人 {new}%"
    )


def test_add_a_second_operator_who_activates_and_logs_in(new_context, portal):
    who = _primaries(portal.server).manager
    page = new_context(**VIEWPORTS["desktop"]).new_page()
    _login(page, who)
    _nav(page, "经办人").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("经办人")
    code = _request_code(page, who, "经办人管理")
    add = page.locator("#add")
    resident_id, phone = _new_resident_id(), "13600005678"
    add.get_by_label("经办人姓名").fill("钱新")
    add.get_by_label("经办人身份证号码").fill(resident_id)
    add.get_by_label("经办人手机号码").fill(phone)
    add.get_by_label("短信验证码（发送至主经办人手机）").fill(code)
    add.get_by_role("button", name="添加经办人").click()
    expect(page.locator(".flash-success")).to_contain_text("已添加经办人 钱新")
    row = page.locator("tr", has_text="钱新")
    expect(row).to_contain_text("待激活")
    expect(row).not_to_contain_text(resident_id)
    _shot(page, "operators-added-desktop")

    newcomer = Operator(resident_id, "钱新", phone, who.credit_code, who.employer_name)
    other = new_context(**VIEWPORTS["phone"]).new_page()
    other.goto("/employer/activate")
    expect(other.get_by_role("heading", level=1)).to_have_text("单位经办人激活")
    other.get_by_label("统一社会信用代码", exact=True).fill(who.credit_code)
    other.get_by_label("经办人身份证号码", exact=True).fill(resident_id)
    other.get_by_label("激活验证码").fill(read_sms_code(other.context, phone, "首次登录设置密码"))
    other.get_by_label("设置密码").fill("Qianxin2026")
    other.get_by_label("确认密码").fill("Qianxin2026")
    _shot(other, "activate-phone")
    assert other.evaluate(NO_OVERFLOW)
    other.get_by_role("button", name="激活并设置密码").click()
    expect(other).to_have_url(re.compile(r"/employer/login$"))
    expect(other.locator(".flash-success")).to_contain_text("经办人账户已激活")
    _login(other, newcomer, password="Qianxin2026")
    expect(other.locator(".who-name")).to_have_text("钱新")
    _nav(other, "经办人").click()
    expect(other.get_by_text("经办人的添加、停用和删除由本单位主经办人办理。")).to_be_visible()
    page.reload()
    expect(page.locator("tr", has_text="钱新")).to_contain_text("已激活")


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_roster_search_detail_paging_and_pages_fit(new_context, portal, size):
    people = _primaries(portal.server)
    who = people.browse
    page = new_context(**VIEWPORTS[size]).new_page()
    _login(page, who)
    _shot(page, f"overview-{size}")
    assert page.evaluate(NO_OVERFLOW), "overview scrolls sideways"
    # the account detail pages in place (htmx) and pushes the URL
    pos = page.locator("#ledger .pager-pos")
    expect(pos).to_contain_text("第 1 /")
    with page.expect_response(re.compile(r"/employer/\?page=2$")):
        page.locator("#ledger").get_by_role("link", name="下一页").click()
    expect(pos).to_contain_text("第 2 /")
    expect(page).to_have_url(re.compile(r"/employer/\?page=2$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(who.employer_name)

    _nav(page, "职工名册").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("职工名册")
    first_name = page.locator("#roster tbody tr").first.locator("td").nth(1).inner_text()
    url = page.url
    with page.expect_response(re.compile(r"/employer/roster\?")):
        page.get_by_label("姓名或个人账号").press_sequentially(first_name[:2], delay=50)
    rows = page.locator("#roster tbody tr")
    expect(rows.first).to_contain_text(first_name[:2])
    for i in range(rows.count()):
        assert first_name[:2] in rows.nth(i).locator("td").nth(1).inner_text()
    assert page.url != url  # the search is in the address bar
    _shot(page, f"roster-{size}")
    assert page.evaluate(NO_OVERFLOW), "roster scrolls sideways"
    page.locator("#roster tbody").get_by_role("link", name="调整基数").first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("调整缴存基数")
    expect(page.locator("#who-h")).to_contain_text(first_name[:2])
    _shot(page, f"base-{size}")
    assert page.evaluate(NO_OVERFLOW), "base page scrolls sideways"

    for path, name in [
        ("/employer/changes", "changes"),
        ("/employer/operators", "operators"),
        ("/employer/certificates", "certificates"),
    ]:
        page.goto(path)
        expect(page.locator("nav.nav a[aria-current=page]")).to_be_visible()
        _shot(page, f"{name}-{size}")
        assert page.evaluate(NO_OVERFLOW), f"{name} scrolls sideways"


def test_certificate_and_registration_tracking(new_context, portal):
    people = _primaries(portal.server)
    page = new_context(**VIEWPORTS["desktop"]).new_page()
    _login(page, people.browse)
    _nav(page, "缴存证明").click()
    page.get_by_label("证明接收单位").fill("阿拉善盟公共资源交易中心")
    page.get_by_role("button", name="出具证明").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("单位住房公积金缴存证明")
    code = page.locator(".verify-code").inner_text()
    with page.expect_download() as download:
        page.get_by_role("link", name="下载 PDF").click()
    assert download.value.suggested_filename.endswith(".pdf")
    public = new_context(**VIEWPORTS["phone"]).new_page()
    public.goto("/verify?code=" + code)
    expect(public.locator("body")).to_contain_text("单位住房公积金缴存证明")
    expect(public.locator("body")).to_contain_text("真实有效")
    expect(public.locator("body")).not_to_contain_text(people.browse.credit_code)

    receipt, credit_code = people.registration
    public.goto("/employer/track")
    public.get_by_label("受理回执编号").fill(receipt)
    public.get_by_label("统一社会信用代码").fill(credit_code)
    public.get_by_role("button", name="查询").click()
    expect(public.locator("#case-h")).to_have_text("住房公积金单位登记开户")
    _shot(public, "track-phone")
    assert public.evaluate(NO_OVERFLOW)
