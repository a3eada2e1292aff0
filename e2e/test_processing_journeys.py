"""Processing and settlement-certificate journeys in Chromium (issue 7):

* a depositor pays off a loan online and asks for the settlement certificate, an official issues
  it with a TOTP step-up, the depositor downloads it, and the verification page says genuine;
* a handler prepares a home-purchase withdrawal on an inbound case, a second handler of the same
  department approves it (复核, paid exactly once), and the handler finishes the case.

The second handler of 阿拉善左旗管理部 (the demo has one per department) and the inbound case are
written into the server's database by this module. Screenshots go to /tmp/processing/e2e/.
"""

from __future__ import annotations

import re
import subprocess
import time
from datetime import timedelta
from pathlib import Path

import pyotp
import pytest
from playwright.sync_api import Page, expect

from e2e.conftest import ROOT, STAFF_PASSWORD, Person, read_sms_code

pytestmark = pytest.mark.e2e

SHOTS = Path("/tmp/processing/e2e")
VIEWPORTS = {
    "desktop": {"viewport": {"width": 1280, "height": 900}},
    "phone": {"viewport": {"width": 375, "height": 812}, "is_mobile": True, "has_touch": True},
}
NO_OVERFLOW = "document.documentElement.scrollWidth <= document.documentElement.clientWidth + 1"
APPROVER = ("handler3", "钱慧", "HANDLERTHREEDEMOSECRETHANDLERTH")


def _shot(page: Page, name: str, size: str = "desktop") -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    # caret="initial": Playwright's caret-hiding <style> would itself break the page's CSP
    page.screenshot(path=SHOTS / f"{name}-{size}.png", full_page=True, caret="initial")
    if size == "phone":
        assert page.evaluate(NO_OVERFLOW), f"{name}: horizontal overflow on a phone"


def _phone_shot(new_context, page: Page, name: str) -> None:
    """The page's URL on a phone, with the same login (no second TOTP), then closed."""
    context = new_context(storage_state=page.context.storage_state(), **VIEWPORTS["phone"])
    try:
        other = context.new_page()
        other.goto(page.url)
        _shot(other, name, "phone")
    finally:
        context.close()


def _pdf_text(data: bytes) -> str:
    return subprocess.run(
        ["pdftotext", "-", "-"], input=data, capture_output=True, check=True
    ).stdout.decode()


def _database(server):
    from portal.db import make_database

    return make_database(server.database_url, root=str(ROOT))


# --- data written into the server's database ----------------------------------------------


def _payoff_person(server) -> Person:
    """A depositor with an active loan and nothing overdue, whom the other journeys leave alone
    (they take people from the start of the list; this takes from the end)."""
    from portal.filters import local_today
    from portal.models import MODELS, Account, Depositor, Loan
    from portal.services import loans

    if getattr(server, "_processing_payoff", None):
        return server._processing_payoff
    taken = {p.resident_id for p in server.demo.depositors}
    database = _database(server)
    with database.bind_ctx(MODELS):
        database.connect()
        try:
            query = (
                Depositor.select()
                .join(Account, on=(Account.depositor == Depositor.id))
                .where(Depositor.password_hash.is_null(False) & (Account.status == "正常"))
                .order_by(Depositor.id.desc())
            )
            for d in query:
                if d.resident_id in taken:
                    continue
                active = list(
                    Loan.select().where((Loan.depositor == d) & (Loan.status == "active"))
                )
                if len(active) == 1 and not loans.loan_view(d, active[0].id, local_today()).overdue:
                    server._processing_payoff = Person(d.resident_id, d.name, d.phone)
                    return server._processing_payoff
        finally:
            database.close()
    pytest.fail("no demo depositor with a loan left for the settlement journey")


def _purchase_case(server) -> tuple[int, str]:
    """An inbound 购房提取 case in 办理中 for handler (阿拉善左旗管理部), and the approver."""
    from portal.filters import local_today
    from portal.models import (
        MODELS,
        Account,
        Center,
        Department,
        Depositor,
        ProxyCase,
        StaffUser,
    )
    from portal.services.identity import hash_password

    database = _database(server)
    with database.bind_ctx(MODELS):
        database.connect()
        try:
            with database.atomic():
                azq = Department.get(Department.code == "AZQ")
                username, name, secret = APPROVER
                if not StaffUser.select().where(StaffUser.username == username).exists():
                    StaffUser.create(
                        username=username,
                        name=name,
                        role="handler",
                        department=azq,
                        password_hash=hash_password(STAFF_PASSWORD),
                        totp_secret=secret,
                        totp_confirmed=True,
                    )
                taken = {p.resident_id for p in server.demo.depositors}
                person = next(
                    d
                    for d in Depositor.select()
                    .join(Account, on=(Account.depositor == Depositor.id))
                    .where(
                        (Depositor.department == azq)
                        & (Account.status == "正常")
                        & Depositor.bank_card.is_null(False)
                    )
                    .order_by(Account.balance.desc())
                    if d.resident_id not in taken
                    and (d.bank_card_changed_at is None or d.bank_card_changed_at.year < 2025)
                )
                today = local_today()
                stamp = int(time.time())
                case = ProxyCase.create(
                    case_no=f"KSE2E{stamp % 10**8:08d}",
                    receipt_no=f"HZE2E{stamp % 10**8:08d}",
                    item="purchase_withdrawal",
                    direction="inbound",
                    state="processing",
                    center=Center.select().where(~Center.is_self).order_by(Center.id).first(),
                    depositor=person,
                    applicant_name=person.name,
                    applicant_id_no=person.resident_id,
                    applicant_phone=person.phone,
                    application={
                        "item": "purchase_withdrawal",
                        "contract_no": f"HT{today:%Y%m%d}E2E",
                        "purchase_date": (today - timedelta(days=30)).isoformat(),
                        "price": "420000.00",
                        "property_address": "阿拉善左旗巴彦浩特镇王府街 8 号 2-301",
                    },
                    checklist={},
                    department=azq,
                    assignee=StaffUser.get(StaffUser.username == "handler"),
                    clock_start=today,
                    deadline=today + timedelta(days=5),
                )
            return case.id, case.case_no
        finally:
            database.close()


def _login_approver(portal, page: Page) -> None:
    """Staff login as the second handler, like Portal.login_staff but with this module's secret."""
    username, name, secret = APPROVER
    page.goto("/staff/login")
    page.get_by_label("用户名", exact=True).fill(username)
    page.get_by_label("密码", exact=True).fill(STAFF_PASSWORD)
    page.get_by_role("button", name="下一步：动态口令").click()
    expect(page).to_have_url(re.compile(r"/staff/login/totp$"))
    totp = pyotp.TOTP(secret)
    current = totp.timecode(time.time())
    step = max(current, portal.server.totp_steps.get(username, 0) + 1)
    portal.server.totp_steps[username] = step
    page.get_by_label("动态口令", exact=True).fill(totp.generate_otp(step))
    page.get_by_role("button", name="登录", exact=True).click()
    expect(page).to_have_url(re.compile(r"/staff/$"))
    expect(page.locator(".who-name")).to_have_text(name)


# --- journey 1: payoff online → official issues → download → verify -----------------------


def test_payoff_official_issues_depositor_downloads_and_verifies(new_context, portal):
    person = _payoff_person(portal.server)

    # the depositor pays the loan off online and asks for the settlement certificate
    depositor = new_context(**VIEWPORTS["desktop"]).new_page()
    portal.login_depositor(depositor, person)
    depositor.locator("nav.nav").get_by_role("link", name="贷款", exact=True).click()
    depositor.get_by_role("link", name="查看详情与还款计划").first.click()
    expect(depositor.get_by_role("heading", level=1)).to_have_text("贷款详情")
    loan_url = depositor.url
    contract = depositor.locator("#facts-h .mono").inner_text().strip()
    depositor.get_by_role("link", name="办理提前还清").click()
    depositor.get_by_label(re.compile("先用公积金余额冲还")).check()
    depositor.locator("button[form='send-payoff'], #send-payoff button").first.click()
    expect(depositor.get_by_text(re.compile("验证码已发送至手机"))).to_be_visible()
    code = read_sms_code(depositor.context, person.phone, "提前还清贷款")
    depositor.get_by_label("短信验证码", exact=True).fill(code)
    depositor.get_by_role("button", name="确认提前还清").click()
    expect(depositor.locator(".status")).to_have_text("已还清")
    depositor.goto(loan_url)
    depositor.get_by_role("button", name="申请贷款结清证明").click()
    expect(depositor.locator("#settlement")).to_contain_text("待签发")

    # an official finds it in the queue and issues it with a TOTP step-up
    official = new_context(**VIEWPORTS["desktop"]).new_page()
    portal.login_staff(official, "official")
    official.locator("nav.nav").get_by_role("link", name="签发证明").click()
    expect(official.get_by_role("heading", level=1)).to_have_text("签发贷款结清证明")
    row = official.locator("tbody tr", has_text=contract)
    expect(row).to_contain_text("网上申请")
    _shot(official, "officials-queue")
    _phone_shot(new_context, official, "officials-queue")
    row.get_by_role("link", name="核对签发").click()
    expect(official.locator("#official-request .status-settled")).to_have_text("已结清")
    official.get_by_label("动态口令（再次输入）").fill("000000")
    official.get_by_role("button", name="确认签发").click()
    expect(official.locator("#code-error")).to_be_visible()
    _shot(official, "officials-issue")
    _phone_shot(new_context, official, "officials-issue")
    official.get_by_label("动态口令（再次输入）").fill(portal.totp_code("official"))
    official.get_by_role("button", name="确认签发").click()
    expect(official.locator("#official-request .flash")).to_contain_text("已签发贷款结清证明")
    official.locator("#official-request dd a.mono").click()
    expect(official).to_have_url(re.compile(r"/staff/officials/certificates/\d+$"))
    expect(official.locator("#official-certificate .tag").first).to_have_text("真实有效")
    verify_href = official.get_by_role("link", name="核验页").get_attribute("href")
    _shot(official, "officials-certificate")
    _phone_shot(new_context, official, "officials-certificate")

    # the depositor downloads it
    depositor.goto(loan_url)
    with depositor.expect_download() as download:
        depositor.get_by_role("link", name="下载贷款结清证明").click()
    data = Path(download.value.path()).read_bytes()
    text = re.sub(r"\s+", "", _pdf_text(data))
    assert "住房公积金个人住房贷款全部还清证明" in text
    assert person.resident_id in text and contract in text and "解除抵押" in text

    # the verification page says genuine, with masked data only
    visitor = new_context(**VIEWPORTS["phone"]).new_page()
    visitor.goto(verify_href)
    expect(visitor.locator(".verify-badge")).to_have_text("真实有效")
    expect(visitor.locator("body")).to_contain_text("住房公积金个人住房贷款全部还清证明")
    expect(visitor.locator("body")).not_to_contain_text(person.resident_id)
    expect(visitor.locator("body")).to_contain_text(portal.masked_id(person.resident_id))
    _shot(visitor, "verify-settlement", "phone")


# --- journey 2: a handler prepares a purchase withdrawal, a second handler approves ---------


def test_purchase_withdrawal_prepared_approved_and_finished(new_context, portal):
    case_id, case_no = _purchase_case(portal.server)

    handler = new_context(**VIEWPORTS["desktop"]).new_page()
    portal.login_staff(handler, "handler")
    handler.goto(f"/staff/board/case/{case_id}")
    handler.get_by_role("link", name="办理", exact=True).click()
    expect(handler.get_by_role("heading", level=1)).to_contain_text(case_no)
    expect(handler.get_by_label("购房合同或不动产权证书编号")).to_have_value(re.compile("E2E$"))
    handler.get_by_role("button", name="核算").click()
    expect(handler.locator(".proc-quote.ok")).to_contain_text("可提取额度")
    amount = handler.locator(".proc-quote dd.amount").nth(1).inner_text()
    _shot(handler, "processing-quote")
    _phone_shot(new_context, handler, "processing-page")
    handler.get_by_role("button", name="提交复核").click()
    expect(handler.locator("#processing-panel .flash")).to_contain_text("已提交复核")
    expect(handler.locator(".proc-pending_approval .proc-status")).to_have_text("待复核")
    # the preparer cannot approve their own payout
    handler.locator("nav.nav").get_by_role("link", name=re.compile("^待复核")).click()
    expect(handler.locator("#approvals")).to_contain_text("您经办的，待他人复核")

    approver = new_context(**VIEWPORTS["desktop"]).new_page()
    _login_approver(portal, approver)
    approver.locator("nav.nav").get_by_role("link", name="待复核（1）").click()
    expect(approver.get_by_role("heading", level=1)).to_have_text("待复核")
    _shot(approver, "processing-approvals")
    _phone_shot(new_context, approver, "processing-approvals")
    approver.locator("#approvals tbody tr", has_text=case_no).get_by_role(
        "link", name="复核"
    ).click()
    expect(approver.locator("#review")).to_contain_text(amount)
    _shot(approver, "processing-review")
    _phone_shot(new_context, approver, "processing-review")
    approver.get_by_role("button", name="复核通过并支付").click()
    expect(approver.locator("#review .flash")).to_contain_text("已支付")
    expect(approver.locator("#review .proc-status")).to_have_text("已支付")

    # back to the handler: the receipt is attached; finish the case
    handler.goto(f"/staff/processing/case/{case_id}")
    expect(handler.locator(".proc-finish")).to_contain_text(f"购房提取 {amount} 元已支付")
    handler.get_by_role("button", name="附加结果并办结").click()
    expect(handler.locator(".case-state")).to_have_text("已办结")
    link = handler.locator("#processing-panel .attachments a").first
    with handler.expect_download() as download:
        link.click()
    text = _pdf_text(Path(download.value.path()).read_bytes())
    assert "购房提取" in text and amount in text
    _shot(handler, "processing-done")
    _phone_shot(new_context, handler, "processing-done")

    # the daily reconciliation shows the payment matched with the bank's ledger
    from portal.filters import local_today

    handler.locator("nav.nav").get_by_role("link", name="对账").click()
    expect(handler.get_by_role("heading", level=1)).to_have_text("日终对账")
    handler.get_by_label("对账日期").fill(local_today().isoformat())
    handler.get_by_role("button", name="对账", exact=True).click()
    expect(handler.locator("#reconcile h2")).to_contain_text(local_today().isoformat())
    expect(handler.locator("#reconcile details")).to_contain_text("购房提取")
    _shot(handler, "processing-reconcile")
    _phone_shot(new_context, handler, "processing-reconcile")
