"""Notifications, service rating and background jobs in Chromium (issue 11):

* a depositor sees in the inbox that staff moved their case, opens it and rates the finished
  case (好差评);
* an admin runs the 30 June interest settlement as a background job and watches the progress
  bar reach 100 % (the job worker runs beside the portal, as ``make run`` starts it).

Screenshots of the inbox and the job pages on a desktop and a phone go to /tmp/notices/.
"""

from __future__ import annotations

import re
import subprocess
from datetime import datetime
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from e2e.conftest import ROOT, Person, _flask

pytestmark = pytest.mark.e2e

SHOTS = Path("/tmp/notices")
VIEWPORTS = {
    "desktop": {"viewport": {"width": 1280, "height": 900}},
    "phone": {"viewport": {"width": 375, "height": 812}, "is_mobile": True, "has_touch": True},
}
NO_OVERFLOW = "document.documentElement.scrollWidth <= document.documentElement.clientWidth + 1"
JOB_WAIT = 60_000  # the settlement of the demo's accounts, on a busy 2-core machine


def _shot(page: Page, name: str, size: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    # caret="initial": hiding the caret leaves style="" on inputs, which htmx's settle then
    # copies onto the swapped-in inputs (a CSP violation the browser reports)
    page.screenshot(path=str(SHOTS / f"{name}-{size}.png"), full_page=True, caret="initial")
    if size == "phone":
        assert page.evaluate(NO_OVERFLOW), f"{name} scrolls sideways on a phone"


@pytest.fixture(scope="module")
def job_worker(portal_server):
    """``flask jobs worker`` against the portal's database, as ``make run`` starts it."""
    log = (portal_server.workdir / "jobs-worker.log").open("w")
    process = subprocess.Popen(
        _flask("jobs", "worker", "--interval", "0.3"),
        cwd=ROOT,
        env=portal_server.env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _finished_case_for_a_depositor(server) -> tuple[Person, int, str]:
    """A depositor nobody else's journey uses, with an inbound case 已办结 (done) here, waiting
    for the liaison to feed it back."""
    from portal.db import make_database
    from portal.filters import local_today
    from portal.models import MODELS, Account, CaseEvent, Center, Department, Depositor, ProxyCase
    from portal.rules.workdays import add_workdays

    taken = {p.resident_id for p in server.demo.depositors}
    today = local_today()
    database = make_database(server.database_url, root=str(ROOT))
    with database.bind_ctx(MODELS):
        database.connect()
        try:
            with database.atomic():
                depositor = next(
                    d
                    for d in Depositor.select()
                    .join(Account, on=(Account.depositor == Depositor.id))
                    .where(Depositor.password_hash.is_null(False), Account.status == "正常")
                    .order_by(Depositor.id.desc())
                    if d.resident_id not in taken
                )
                peer = Center.select().where(~Center.is_self).order_by(Center.id).first()
                department = depositor.department or Department.select().first()
                stamp = datetime.now().strftime("%H%M%S%f")[:10]
                case = ProxyCase.create(
                    case_no=f"E2EN{stamp}",
                    receipt_no=f"E2ER{stamp}",
                    item="purchase_withdrawal",
                    direction="inbound",
                    state="done",
                    center=peer,
                    depositor=depositor,
                    applicant_name=depositor.name,
                    applicant_id_no=depositor.resident_id,
                    applicant_phone=depositor.phone,
                    application={"contract_no": "E2E-HT-1"},
                    checklist={},
                    department=department,
                    clock_start=today,
                    deadline=add_workdays(today, 3),
                    result={"outcome": "办结", "note": "已支付购房提取"},
                )
                CaseEvent.create(case=case, action="create", to_state="received", data={})
        finally:
            database.close()
    return Person(depositor.resident_id, depositor.name, depositor.phone), case.id, case.receipt_no


def test_a_depositor_is_told_of_a_move_and_rates_the_finished_case(portal, new_context):
    person, case_id, receipt_no = _finished_case_for_a_depositor(portal.server)

    # the liaison feeds the result back (已办结 → 已反馈) from the case page
    staff = new_context(
        storage_state=portal.staff_state(new_context, "liaison"), **VIEWPORTS["desktop"]
    )
    page = staff.new_page()
    page.goto(f"/staff/board/case/{case_id}")
    page.get_by_label("移至", exact=True).select_option(label="已反馈")
    page.locator("form.cd-form").get_by_role("button", name="移动").click()
    expect(page.locator("body")).to_contain_text("已反馈")
    staff.close()

    # the depositor sees it in the inbox (the bell in the header shows the unread count)
    context = new_context(**VIEWPORTS["desktop"])
    page = context.new_page()
    portal.login_depositor(page, person)
    bell = page.locator("#inbox-bell")
    expect(bell.locator(".bell-count")).to_have_text(re.compile(r"^[1-9]"))
    bell.click()
    expect(page).to_have_url(re.compile(r"/me/inbox/$"))
    notice = page.locator("li.notice", has_text=receipt_no)
    expect(notice).to_contain_text("办件进度：购房提取 已反馈")
    expect(notice).to_have_class(re.compile("notice-unread"))
    _shot(page, "inbox", "desktop")

    # 查看 marks it read and opens the case, where the finished case can be rated
    notice.get_by_role("button", name=re.compile("^查看")).click()
    expect(page).to_have_url(re.compile(rf"/me/cases/{case_id}$"))
    expect(page.locator(".case-state").first).to_have_text("已反馈")
    page.get_by_role("link", name="评价本次服务").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("服务评价")
    _shot(page, "rate", "desktop")
    page.get_by_label("不满意", exact=True).check()
    page.get_by_role("button", name="提交评价").click()
    expect(page.locator("#comment-error")).to_contain_text("请说明不满意的原因")
    page.get_by_label("满意", exact=True).check()
    page.get_by_label("意见和建议").fill("办理及时，感谢")
    page.get_by_role("button", name="提交评价").click()
    expect(page.locator("#rate-panel")).to_contain_text("感谢您的评价")
    expect(page.locator("#rate-panel .rate-tag")).to_have_text("满意")
    _shot(page, "rated", "desktop")

    page.goto("/me/inbox/")
    expect(page.locator("li.notice", has_text=receipt_no)).not_to_have_class(
        re.compile("notice-unread")
    )
    context.close()

    # the same inbox on a phone
    phone = new_context(**VIEWPORTS["phone"])
    page = phone.new_page()
    portal.login_depositor(page, person)
    page.goto("/me/inbox/")
    expect(page.locator("li.notice", has_text=receipt_no)).to_be_visible()
    _shot(page, "inbox", "phone")
    page.goto(f"/me/ratings/case/{case_id}")
    expect(page.locator("#rate-panel .rate-tag")).to_have_text("满意")
    _shot(page, "rated", "phone")
    phone.close()

    # the liaison sees the rating among all the center's, with the satisfaction rate
    for size in ("desktop", "phone"):
        staff = new_context(
            storage_state=portal.staff_state(new_context, "liaison"), **VIEWPORTS[size]
        )
        page = staff.new_page()
        page.goto("/staff/ratings/")
        expect(page.locator(".ratings-table tbody tr", has_text=receipt_no)).to_contain_text("满意")
        expect(page.locator("#satisfaction-rate")).to_have_text(re.compile(r"%$"))
        _shot(page, "staff-ratings", size)
        staff.close()


COUNTER_ID = "110105198001010016"  # fictional, another center's depositor


def _finished_counter_case(server) -> str:
    """An outbound case accepted at our counter and archived: its applicant has no login."""
    from portal.db import make_database
    from portal.filters import local_today
    from portal.models import MODELS, Center, Department, ProxyCase

    today = local_today()
    database = make_database(server.database_url, root=str(ROOT))
    with database.bind_ctx(MODELS):
        database.connect()
        try:
            stamp = datetime.now().strftime("%H%M%S%f")[:10]
            case = ProxyCase.create(
                case_no=f"E2EC{stamp}",
                receipt_no=f"E2EQ{stamp}",
                item="purchase_withdrawal",
                direction="outbound",
                state="archived",
                center=Center.select().where(~Center.is_self).order_by(Center.id).first(),
                applicant_name="柜台申请人",
                applicant_id_no=COUNTER_ID,
                applicant_phone="13900001111",
                application={},
                checklist={},
                department=Department.select().order_by(Department.id).first(),
                clock_start=today,
                deadline=today,
            )
        finally:
            database.close()
    return case.receipt_no


def test_a_counter_applicant_rates_the_finished_case_from_the_tracking_page(portal, new_context):
    receipt_no = _finished_counter_case(portal.server)
    page = new_context(**VIEWPORTS["phone"]).new_page()
    page.goto("/track")
    page.get_by_label("受理回执编号").fill(receipt_no)
    page.get_by_label("申请人身份证号码").fill(COUNTER_ID)
    page.get_by_role("button", name="查询").click()
    rating = page.locator("#track-rate")
    expect(rating).to_contain_text("欢迎对本次服务进行评价")
    _shot(page, "track-rate", "phone")
    rating.get_by_label("不满意", exact=True).check()
    rating.get_by_label("意见和建议").fill("排队等待时间较长")
    rating.get_by_role("button", name="提交评价").click()
    expect(page.get_by_role("status")).to_contain_text("感谢您的评价")
    expect(page.locator(".rate-tag")).to_have_text("不满意")
    expect(page.locator("main")).to_contain_text("回访")
    _shot(page, "track-rated", "phone")

    # the bad rating waits for the department's 回访, then 整改
    for size, step, note in (
        ("desktop", "回访", "已电话回访，致歉并说明原因"),
        ("phone", "整改", "增加高峰时段窗口"),
    ):
        staff = new_context(
            storage_state=portal.staff_state(new_context, "liaison"), **VIEWPORTS[size]
        )
        page = staff.new_page()
        page.goto("/staff/ratings/")
        page.get_by_role("link", name=re.compile(receipt_no)).click()
        expect(page.get_by_role("heading", level=1)).to_contain_text(receipt_no)
        followup = page.locator("#followup")
        followup.get_by_label("情况说明").fill(note)
        followup.get_by_role("button", name=f"记录{step}").click()
        expect(followup.locator(".timeline")).to_contain_text(note)
        expect(followup.locator(".tag")).to_have_text("待整改" if step == "回访" else "已整改")
        _shot(page, f"followup-{step}", size)
        staff.close()


def test_an_admin_runs_the_interest_settlement_and_sees_it_finish(portal, new_context, job_worker):
    state = portal.staff_state(new_context, "admin")
    context = new_context(storage_state=state, **VIEWPORTS["desktop"])
    page = context.new_page()
    page.goto("/staff/jobs/")
    expect(page.get_by_role("heading", level=1)).to_have_text("后台任务")
    _shot(page, "jobs", "desktop")
    page.get_by_label("结息年度").select_option(index=0)
    page.get_by_role("button", name="开始结息").click()
    expect(page).to_have_url(re.compile(r"/staff/jobs/\d+$"))
    job_url = page.url
    bar = page.locator("progress#job-bar")
    expect(bar).to_be_visible()
    # htmx polls the progress every second until the worker has finished the job
    expect(bar).to_have_attribute("value", "100", timeout=JOB_WAIT)
    expect(page.locator("#job-pct")).to_have_text("100%")
    expect(page.locator("#job-status")).to_contain_text("已完成")
    expect(page.locator("#job-status")).to_contain_text("年度结息完成")
    assert page.locator("#job-progress").get_attribute("hx-trigger") is None  # polling stopped
    # the finished answer refreshes the bell: the job's notice is waiting in the inbox
    expect(page.locator("#inbox-bell .bell-count")).to_be_visible()
    _shot(page, "job-done", "desktop")
    page.goto("/staff/jobs/")
    expect(page.locator(".jobs-table tbody tr", has_text="年度结息")).to_contain_text("已完成")
    context.close()

    phone = new_context(storage_state=state, **VIEWPORTS["phone"])
    page = phone.new_page()
    page.goto(job_url)
    expect(page.locator("#job-pct")).to_have_text("100%")
    _shot(page, "job-done", "phone")
    page.goto("/staff/jobs/")
    _shot(page, "jobs", "phone")
    page.goto("/staff/inbox/")
    expect(page.locator("li.notice").first).to_contain_text("后台任务已完成：年度结息")
    _shot(page, "staff-inbox", "phone")
    phone.close()
