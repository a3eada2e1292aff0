"""Depositor-hall journeys in Chromium, on a desktop and a phone viewport (issue 4):
login → query → certificate download → public verification; retirement withdrawal; early
payoff → settlement-certificate request. Screenshots go to /tmp/hall/e2e/."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from e2e.conftest import ROOT, Person, read_sms_code

pytestmark = pytest.mark.e2e

SHOTS = Path("/tmp/hall/e2e")
VIEWPORTS = {
    "desktop": {"viewport": {"width": 1280, "height": 900}},
    "phone": {"viewport": {"width": 375, "height": 812}, "is_mobile": True, "has_touch": True},
}
NO_OVERFLOW = "document.documentElement.scrollWidth <= document.documentElement.clientWidth + 1"


def _people(server) -> dict[str, list[Person]]:
    """Demo people for each journey, read through the services from the server's database.
    People in ``server.demo.depositors`` are left alone (other journeys use them)."""
    from portal.db import make_database
    from portal.filters import local_today
    from portal.models import MODELS, Depositor, Loan
    from portal.services import loans, payouts

    if getattr(server, "_hall_people", None):
        return server._hall_people
    taken = {p.resident_id for p in server.demo.depositors}
    today = local_today()
    database = make_database(server.database_url, root=str(ROOT))
    found: dict[str, list[Person]] = {"query": [], "retire": [], "payoff": []}
    with database.bind_ctx(MODELS):
        database.connect()
        try:
            people = Depositor.select().where(Depositor.password_hash.is_null(False))
            for d in people.order_by(Depositor.id):
                if d.resident_id in taken:
                    continue
                person = Person(d.resident_id, d.name, d.phone)
                quote = payouts.retirement_quote(d, today)
                if quote.eligible and len(found["retire"]) < 2:
                    found["retire"].append(person)
                    continue
                active = [
                    loan
                    for loan in Loan.select().where(
                        (Loan.depositor == d) & (Loan.status == "active")
                    )
                ]
                if (
                    active
                    and len(found["payoff"]) < 2
                    and quote.account.status == "正常"
                    and not loans.loan_view(d, active[0].id, today).overdue
                ):
                    found["payoff"].append(person)
                    continue
                if quote.account and quote.account.status == "正常" and len(found["query"]) < 2:
                    found["query"].append(person)
        finally:
            database.close()
    assert all(len(v) == 2 for v in found.values()), found
    server._hall_people = found
    return found


def _context(new_context, size):
    return new_context(**VIEWPORTS[size])


def _check_phone(page: Page, size: str, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SHOTS / f"{name}-{size}.png", full_page=True)
    if size == "phone":
        assert page.evaluate(NO_OVERFLOW), f"{name}: horizontal overflow on a phone"


def _code(page: Page, person: Person, purpose: str, sender: str) -> None:
    """Press 获取验证码 (htmx), wait for the notice, type the code from the SMS outbox."""
    page.locator(f"button[form='{sender}'], #{sender} button").first.click()
    expect(page.get_by_text(re.compile("验证码已发送至手机"))).to_be_visible()
    code = read_sms_code(page.context, person.phone, purpose)
    page.get_by_label("短信验证码", exact=True).fill(code)


def _nav(page: Page, name: str) -> None:
    page.locator("nav.nav").get_by_role("link", name=name, exact=True).click()
    expect(page.locator("nav.nav a[aria-current=page]")).to_have_text(name)


def _pdf_text(data: bytes) -> str:
    return subprocess.run(
        ["pdftotext", "-", "-"], input=data, capture_output=True, check=True
    ).stdout.decode()


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_query_certificate_download_and_verification(new_context, portal, size):
    person = _people(portal.server)["query"][0 if size == "desktop" else 1]
    context = _context(new_context, size)
    page = context.new_page()
    portal.login_depositor(page, person)

    # deposit detail: filter by year in place (htmx) and by plain link
    _nav(page, "缴存明细")
    expect(page.get_by_role("heading", level=1)).to_have_text("缴存明细")
    year = page.locator("#year option").nth(2).get_attribute("value")
    page.get_by_label("年度").select_option(year)
    expect(page).to_have_url(re.compile(rf"/me/deposits\?year={year}"))
    dates = page.locator("#detail .c-date")
    expect(dates.first).to_contain_text(year)
    assert all(t.startswith(year) for t in dates.all_inner_texts())
    _check_phone(page, size, "hall-deposits")
    page.get_by_role("link", name="查看年度对账单").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("年度对账单")

    # loans and the quota trial (htmx in place)
    _nav(page, "贷款")
    page.get_by_label("月收入（元）").fill("8000")
    page.get_by_role("button", name="试算").click()
    expect(page.locator("#quota .balance-value")).to_have_text(re.compile(r"^[\d,]+\.00$"))
    _check_phone(page, size, "hall-loans")

    # certificate: issue, download, then verify the code anonymously
    _nav(page, "证明")
    page.get_by_label("证明接收单位（贷款受理中心）").fill("北京住房公积金管理中心")
    page.get_by_role("button", name="出具证明").click()
    expect(page.locator(".flash")).to_contain_text("缴存使用证明已出具")
    code = page.locator(".verify-code").inner_text().strip()
    assert re.fullmatch(r"[A-Z0-9]{4}(-[A-Z0-9]{4}){3}", code)
    _check_phone(page, size, "hall-certificate")
    with page.expect_download() as download:
        page.get_by_role("link", name="下载 PDF").click()
    data = Path(download.value.path()).read_bytes()
    assert data.startswith(b"%PDF")
    text = re.sub(r"\s+", "", _pdf_text(data))
    assert person.resident_id in text and person.name in text and "北京住房公积金管理中心" in text

    visitor = _context(new_context, size).new_page()
    visitor.goto("/verify")
    visitor.get_by_label("核验码").fill(code.lower())
    visitor.get_by_role("button", name="核验").click()
    expect(visitor.locator(".verify-badge")).to_have_text("真实有效")
    expect(visitor.locator("body")).not_to_contain_text(person.resident_id)
    expect(visitor.locator("body")).to_contain_text(portal.masked_id(person.resident_id))
    _check_phone(visitor, size, "public-verify")


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_retirement_withdrawal(new_context, portal, size):
    person = _people(portal.server)["retire"][0 if size == "desktop" else 1]
    page = _context(new_context, size).new_page()
    portal.login_depositor(page, person)
    _nav(page, "退休提取")
    expect(page.get_by_role("heading", level=1)).to_have_text("正常退休提取")
    expect(page.locator(".ok-note")).to_have_text("您符合正常退休提取条件。")
    amount = page.locator(".balance-value").inner_text()
    _code(page, person, "退休提取", "send-withdraw")
    _check_phone(page, size, "hall-retirement")
    page.get_by_role("button", name=re.compile("确认提取")).click()
    expect(page).to_have_url(re.compile(r"/me/retirement/receipt/\d+$"))
    expect(page.locator(".status")).to_have_text("已到账")
    expect(page.locator(".balance-value")).to_have_text(amount)
    _check_phone(page, size, "hall-retirement-receipt")
    with page.expect_download() as download:
        page.get_by_role("link", name="下载回执 PDF").click()
    assert "正常退休提取" in _pdf_text(Path(download.value.path()).read_bytes())
    # going back and submitting again pays nothing more
    page.goto("/me/retirement")
    expect(page.get_by_role("heading", name="您已办理退休提取")).to_be_visible()
    _nav(page, "我的账户")
    expect(page.locator(".summary .status")).to_have_text("销户")


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_early_payoff_then_settlement_certificate_request(new_context, portal, size):
    person = _people(portal.server)["payoff"][0 if size == "desktop" else 1]
    page = _context(new_context, size).new_page()
    portal.login_depositor(page, person)
    _nav(page, "贷款")
    page.get_by_role("link", name="查看详情与还款计划").first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("贷款详情")
    _check_phone(page, size, "hall-loan")
    # the schedule a year at a time: the picker swaps both tables in place (htmx)
    picker = page.get_by_label("年度")
    shown = picker.input_value()
    years = [y.strip() for y in picker.locator("option").all_inner_texts()]
    other = years[years.index(shown) - 1]  # the year before: instalments already repaid
    picker.select_option(other)
    expect(page).to_have_url(re.compile(rf"/me/loans/\d+\?year={other}$"))
    due = page.locator("#loan-years table").first.locator("tbody td[data-label='应还日期']")
    expect(due.first).to_contain_text(other)
    assert all(t.startswith(other) for t in due.all_inner_texts())
    expect(page.locator("#loan-years tbody td[data-label='状态']").first).to_have_text("已还")
    _check_phone(page, size, "hall-loan-year")
    page.go_back()  # the page restored by htmx (no history cache): no CSP report either
    expect(picker).to_have_value(shown)
    page.get_by_role("link", name="办理提前还清").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("提前还清住房公积金贷款")
    total = page.locator(".balance-value").inner_text()
    page.get_by_label(re.compile("先用公积金余额冲还")).check()
    _code(page, person, "提前还清贷款", "send-payoff")
    _check_phone(page, size, "hall-payoff")
    page.get_by_role("button", name="确认提前还清").click()
    expect(page).to_have_url(re.compile(r"/payoff/\d+$"))
    expect(page.locator(".status")).to_have_text("已还清")
    expect(page.locator(".balance-value")).to_have_text(total)
    page.get_by_role("link", name="申请贷款结清证明").click()
    page.get_by_role("button", name="申请贷款结清证明").click()
    expect(page.locator(".flash")).to_contain_text("已提交贷款结清证明申请")
    expect(page.locator("#settlement")).to_contain_text("待签发")
    _check_phone(page, size, "hall-settlement")


def test_case_tracking_without_login(page: Page, portal):
    from portal.db import make_database
    from portal.models import ProxyCase

    database = make_database(portal.server.database_url, root=str(ROOT))
    with database.bind_ctx([ProxyCase]):
        database.connect()
        case = ProxyCase.select().where(ProxyCase.state == "transmitted").first()
        database.close()
    page.goto("/track")
    page.get_by_label("受理回执编号").fill(case.receipt_no)
    page.get_by_label("申请人身份证号码").fill(case.applicant_id_no)
    page.get_by_role("button", name="查询").click()
    expect(page.locator(".case-state")).to_have_text("已传递")
    expect(page.locator(".timeline li")).to_have_count(3)
    expect(page.locator("body")).not_to_contain_text(case.applicant_id_no)
