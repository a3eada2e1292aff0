"""Notifications: who is told of what (inbox and SMS), never twice, and the inbox views."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from portal.models import Certificate, Employer, Loan, Notice, SmsMessage, utcnow
from portal.rules import casestates as cs
from portal.services import cases, certificates, notices, payouts
from tests.conftest import TODAY, login_depositor, login_operator, login_staff
from tests.notices_helpers import (
    HX,
    counter_case,
    depositor_case,
    make_case,
    notices_of,
    operators_of,
    pending_payout,
    sms_to,
    soup,
    staff,
)


@pytest.fixture(autouse=True)
def _app_context(app):
    with app.app_context():
        yield


# --- cases --------------------------------------------------------------------------------


def test_a_depositor_is_told_of_each_move_in_the_inbox_and_by_sms(depositor):
    case = depositor_case(depositor, "processing")
    before = len(sms_to(depositor.phone))
    cases.move_case(
        staff("handler"),
        case.id,
        "done",
        case.version,
        {"outcome": "办结", "note": "已支付"},
        today=TODAY,
    )
    told = notices_of("depositor", depositor.id)
    assert len(told) == 1
    assert told[0].title == "办件进度：购房提取 已办结"
    assert case.receipt_no in told[0].body and told[0].link == f"/me/cases/{case.id}"
    texts = sms_to(depositor.phone)[before:]
    assert len(texts) == 1 and "已办结" in texts[0] and case.receipt_no in texts[0]


def test_a_counter_applicant_is_told_by_sms_only():
    case = counter_case("accepted", phone="13911112222")
    before = Notice.select().count()
    cases.move_case(staff("clerk"), case.id, "verifying", case.version, today=TODAY)
    texts = sms_to("13911112222")
    assert len(texts) == 1 and "材料核实" in texts[0] and "查询进度" in texts[0]
    assert Notice.select().count() == before  # no inbox: they have no login here


def test_sms_texts_are_short_and_carry_no_full_id(depositor):
    case = counter_case("accepted", phone="13911113333")
    cases.move_case(
        staff("clerk"),
        case.id,
        cs.PAUSED,
        case.version,
        {"missing": ["购房合同原件", "婚姻关系证明"]},
        today=TODAY,
    )
    mine = depositor_case(depositor, "processing")
    cases.move_case(
        staff("handler"), mine.id, "rejected", mine.version, {"reason": "材料不符"}, today=TODAY
    )
    ours = [
        t for t in sms_to("13911113333") + sms_to(depositor.phone) if t.startswith("【公积金】")
    ]
    assert len(ours) >= 2
    for text in ours:
        assert len(text) <= 70
        assert case.applicant_id_no not in text and depositor.resident_id not in text
    assert "补正" in sms_to("13911113333")[-1]


def test_the_same_event_is_not_told_twice(depositor):
    case = depositor_case(depositor, "processing")
    moved = cases.move_case(
        staff("handler"),
        case.id,
        "done",
        case.version,
        {"outcome": "办结", "note": "ok"},
        today=TODAY,
    )
    sent = SmsMessage.select().count()
    assert notices.case_moved(moved, "processing", "done") == []  # a repeated hook
    assert len(notices_of("depositor", depositor.id)) == 1
    assert SmsMessage.select().count() == sent  # and no second SMS


def test_a_move_that_fails_tells_no_one(depositor):
    case = depositor_case(depositor, "processing")
    with pytest.raises(cases.Refused):
        cases.move_case(staff("handler"), case.id, "done", case.version, {}, today=TODAY)
    assert notices_of("depositor", depositor.id) == []


def test_an_employers_operators_are_told_of_their_case():
    employer = Employer.select().order_by(Employer.id).first()
    case = make_case(
        cs.INBOUND,
        "processing",
        assignee="handler",
        employer=employer,
        item="employer_registration",
    )
    cases.move_case(
        staff("handler"),
        case.id,
        "done",
        case.version,
        {"outcome": "办结", "note": "已开户"},
        today=TODAY,
    )
    for operator in operators_of(employer.id):
        told = notices_of("operator", operator.id)
        assert [n.title for n in told] == ["办件进度：单位登记开户 已办结"]


def test_a_handler_is_told_when_a_case_is_assigned_to_them():
    case = make_case(cs.INBOUND, "distributed")
    handler = staff("handler")
    cases.assign_case(staff("liaison"), case.id, handler.id, case.version)
    told = notices_of("staff", handler.id)
    assert len(told) == 1 and case.case_no in told[0].title
    assert told[0].link == f"/staff/board/case/{case.id}"
    assert "李强" in told[0].body  # who assigned it


# --- deadlines ----------------------------------------------------------------------------


@pytest.fixture
def quiet_demo():
    """The demo's own cases out of the way: none of them is due this week."""
    from portal.models import ProxyCase

    ProxyCase.update(deadline=date(2026, 12, 31)).execute()


def _due(state, deadline, direction=cs.INBOUND, **fields):
    return make_case(direction, state, deadline=deadline, **fields)


def test_deadline_reminders_reach_the_assignee_or_whoever_moves_next(quiet_demo):
    tomorrow = date(2026, 11, 26)  # Thursday: the next working day after Wednesday 25th
    assigned = _due("processing", TODAY, assignee="handler")
    unassigned = _due("distributed", tomorrow)  # AZQ's handlers take it
    at_platform = _due("received", TODAY, dept=None)  # the liaison's move
    outbound = _due("verifying", tomorrow, direction=cs.OUTBOUND)  # the liaison transmits
    later = _due("processing", date(2026, 11, 27), assignee="handler")  # two working days
    paused = _due(cs.PAUSED, TODAY, assignee="handler")  # the clock stands still
    done = notices.remind_deadlines(TODAY)
    assert done.cases == 4
    handler, liaison, other = staff("handler"), staff("liaison"), staff("handler2")
    titles = {n.title for n in notices_of("staff", handler.id)}
    assert titles == {f"办件即将到期：{assigned.case_no}", f"办件即将到期：{unassigned.case_no}"}
    titles = {n.title for n in notices_of("staff", liaison.id)}
    assert titles == {f"办件即将到期：{at_platform.case_no}", f"办件即将到期：{outbound.case_no}"}
    assert notices_of("staff", other.id) == []  # another department
    body = [n.body for n in notices_of("staff", handler.id) if assigned.case_no in n.title][0]
    assert "今天" in body
    assert not any(later.case_no in n.title or paused.case_no in n.title for n in Notice.select())


def test_deadline_reminders_run_twice_tell_once(quiet_demo):
    _due("processing", TODAY, assignee="handler")
    first = notices.remind_deadlines(TODAY)
    again = notices.remind_deadlines(TODAY)
    assert first.notices == 1 and again.notices == 0
    assert len(notices_of("staff", staff("handler").id)) == 1


def test_deadline_reminders_skip_rest_days(quiet_demo):
    friday = date(2026, 11, 27)
    _due("processing", date(2026, 11, 30), assignee="handler")  # Monday: next working day
    assert notices.remind_deadlines(friday).notices == 1


def test_the_deadlines_command(runner, quiet_demo):
    _due("processing", TODAY, assignee="handler")
    result = runner.invoke(args=["notices", "deadlines", "--date", TODAY.isoformat()])
    assert result.exit_code == 0, result.output
    assert "1 case(s) due soon, 1 notice(s) sent" in result.output


# --- certificates and money ---------------------------------------------------------------


def test_a_depositor_is_told_when_a_certificate_is_issued(depositor):
    before = len(sms_to(depositor.phone))
    certificate = certificates.issue_usage(
        depositor, "某市住房公积金中心", TODAY, lambda code: f"https://x/verify/{code}", "中心"
    )
    told = notices_of("depositor", depositor.id)
    assert [n.link for n in told] == [f"/me/certificates/{certificate.id}"]
    assert "缴存使用证明" in told[0].title
    assert certificate.number in sms_to(depositor.phone)[before]


def test_the_borrower_is_told_of_a_settlement_certificate():
    loan = Loan.select().where(Loan.status == "settled").order_by(Loan.id).first()
    cert = Certificate.create(
        kind="settlement",
        number="JQTEST0001",
        verify_code="ABCDEFGHJKLMNPQR",
        loan=loan,
        depositor=loan.depositor,
        issued_at=utcnow(),
    )
    notice = notices.certificate_issued(cert)
    assert notice.recipient_id == loan.depositor_id and "全部还清证明" in notice.title


def test_a_depositor_is_told_when_money_is_paid(depositor):
    payout = pending_payout(depositor, amount="1234.56")
    before = len(sms_to(depositor.phone))
    payouts.confirm(payout, "BANKREF1")
    told = notices_of("depositor", depositor.id)
    assert len(told) == 1 and told[0].title == "资金已到账：正常退休提取"
    assert "1,234.56" in told[0].body and told[0].link == f"/me/retirement/receipt/{payout.id}"
    text = sms_to(depositor.phone)[before]
    assert payout.bank_card[-4:] in text and payout.bank_card not in text
    payouts.confirm(payout, "BANKREF1")  # confirming again changes and tells nothing
    assert len(notices_of("depositor", depositor.id)) == 1


# --- the inbox ----------------------------------------------------------------------------


def _fill(recipient, n: int) -> list[Notice]:
    made = []
    for i in range(n):
        made.append(notices.notify(recipient, f"消息 {i}", f"正文 {i}", "/me/cases", f"t:{i}"))
    return made


def test_the_inbox_page_and_its_fragment(client, depositor):
    _fill(("depositor", depositor.id), 3)
    login_depositor(client, depositor)
    page = client.get("/me/inbox/")
    assert page.status_code == 200 and "HX-Request" in page.headers["Vary"]
    html = soup(page)
    assert html.select_one("h1").text == "站内消息"
    assert len(html.select("#inbox-list li.notice-unread")) == 3
    assert html.select_one("#inbox-bell .bell-count").text == "3"
    fragment = client.get("/me/inbox/", headers=HX)
    assert soup(fragment).select_one("html") is None
    assert len(soup(fragment).select("li.notice")) == 3


def test_the_bell_fragment_polls_without_counting_as_activity(client, depositor):
    _fill(("depositor", depositor.id), 2)
    login_depositor(client, depositor)
    bell = client.get("/me/inbox/count", headers={**HX, "X-Portal-Poll": "1"})
    link = soup(bell).select_one("a#inbox-bell")
    assert link["aria-label"] == "站内消息，2 条未读"
    assert link["hx-headers"] == '{"X-Portal-Poll": "1"}'
    assert "every 60s" in link["hx-trigger"]
    assert client.get("/me/inbox/count").status_code == 200  # without htmx: the inbox page


def test_marking_read_with_and_without_htmx(client, depositor):
    first, second = _fill(("depositor", depositor.id), 2)
    login_depositor(client, depositor)
    r = client.post(f"/me/inbox/{first.id}/read")
    assert r.status_code == 303 and r.headers["Location"].endswith("/me/inbox/")
    assert Notice.get_by_id(first.id).read_at is not None
    r = client.post(f"/me/inbox/{second.id}/read", headers=HX)
    assert r.status_code == 200 and "inbox-changed" in r.headers["HX-Trigger"]
    assert soup(r).select("li.notice-unread") == []
    assert notices.unread_count(("depositor", depositor.id)) == 0


def test_read_all_and_the_unread_filter(client, depositor):
    _fill(("depositor", depositor.id), 3)
    login_depositor(client, depositor)
    assert len(soup(client.get("/me/inbox/?unread=1")).select("li.notice")) == 3
    r = client.post("/me/inbox/read-all", headers=HX)
    assert r.status_code == 200
    assert soup(client.get("/me/inbox/?unread=1")).select("li.notice") == []
    assert len(soup(client.get("/me/inbox/")).select("li.notice")) == 3


def test_opening_a_notice_marks_it_read_and_goes_to_its_page(client, depositor):
    case = depositor_case(depositor, "processing")
    cases.move_case(
        staff("handler"),
        case.id,
        "done",
        case.version,
        {"outcome": "办结", "note": "ok"},
        today=TODAY,
    )
    notice = notices_of("depositor", depositor.id)[0]
    login_depositor(client, depositor)
    r = client.post(f"/me/inbox/{notice.id}/open")
    assert r.status_code == 303 and r.headers["Location"] == f"/me/cases/{case.id}"
    assert client.get(r.headers["Location"]).status_code == 200
    assert Notice.get_by_id(notice.id).read_at is not None
    r = client.post(f"/me/inbox/{notice.id}/open", headers=HX)
    assert r.status_code == 200 and r.headers["HX-Location"] == f"/me/cases/{case.id}"


def test_a_notice_link_never_leaves_the_site(client, depositor):
    notice = notices.notify(("depositor", depositor.id), "x", "", "//evil.example/", "k")
    login_depositor(client, depositor)
    r = client.post(f"/me/inbox/{notice.id}/open")
    assert r.headers["Location"].endswith("/me/inbox/")


def test_someone_elses_notice_is_a_404(client, depositor, other_depositor):
    theirs = notices.notify(("depositor", other_depositor.id), "他人的消息", "", "", "k")
    staff_notice = notices.notify(("staff", staff("handler").id), "工作人员消息", "", "", "k")
    login_depositor(client, depositor)
    for notice in (theirs, staff_notice):
        assert client.post(f"/me/inbox/{notice.id}/read").status_code == 404
        assert client.post(f"/me/inbox/{notice.id}/open").status_code == 404
    assert "他人的消息" not in client.get("/me/inbox/").get_data(as_text=True)
    assert Notice.get_by_id(theirs.id).read_at is None


def test_paging(client, depositor):
    _fill(("depositor", depositor.id), notices.PAGE_SIZE + 3)
    login_depositor(client, depositor)
    html = soup(client.get("/me/inbox/?page=2"))
    assert len(html.select("li.notice")) == 3
    assert "第 2 / 2 页" in html.select_one(".pager").text
    assert len(soup(client.get("/me/inbox/?page=abc")).select("li.notice")) == notices.PAGE_SIZE


def test_the_operators_inbox(client, operator):
    notices.notify(("operator", operator.id), "单位消息", "正文", "", "k")
    login_operator(client, operator)
    html = soup(client.get("/employer/inbox/"))
    assert "单位消息" in html.select_one("#inbox-list").text
    assert html.select_one("nav[aria-label=单位业务]") is not None  # the employer layout
    assert client.get("/me/inbox/").status_code == 403  # another kind's inbox


def test_the_staff_inbox(client):
    handler = staff("handler")
    notices.notify(("staff", handler.id), "工作人员消息", "", "/staff/", "k")
    login_staff(client, "handler")
    html = soup(client.get("/staff/inbox/"))
    assert "工作人员消息" in html.select_one("#inbox-list").text
    assert html.select_one("#inbox-bell .bell-count").text == "1"
    assert html.select_one("nav[aria-label=内网导航]") is not None


def test_the_inbox_needs_a_login(client):
    r = client.get("/me/inbox/")
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    assert client.get("/staff/inbox/", headers=HX).status_code == 401
    assert client.post("/me/inbox/read-all").status_code in (302, 401)


def test_no_bell_for_visitors(client):
    assert soup(client.get("/")).select_one("#inbox-bell") is None


def test_old_notices_sort_after_new_ones(depositor):
    old = notices.notify(("depositor", depositor.id), "旧", key="a")
    Notice.update(created_at=utcnow() - timedelta(days=3)).where(Notice.id == old.id).execute()
    notices.notify(("depositor", depositor.id), "新", key="b")
    page = notices.page(("depositor", depositor.id))
    assert [n.title for n in page.notices] == ["新", "旧"]
    assert page.unread == 2 and Decimal(page.total) == 2
