"""Deadlines on the boards: working days left, amber and red, 预计, and 待补正 pauses."""

from __future__ import annotations

from datetime import date

import pytest

from portal.filters import local_today
from portal.models import CaseEvent, HolidayOverride
from portal.rules import casestates as cs
from portal.rules.workdays import add_workdays, paused_deadline, workdays_between
from portal.services import cases, settings
from tests.board_helpers import HX, form_data, fresh, make_case, staff
from tests.conftest import login_staff

START = date(2026, 11, 23)  # Monday


@pytest.fixture(autouse=True)
def _app_context(app):
    with app.app_context():
        yield


def test_days_left_then_the_last_day_then_overdue():
    case = make_case(cs.OUTBOUND, "accepted", start=START)  # deadline 2026-12-02 (Wednesday)
    assert case.deadline == date(2026, 12, 2)
    due = cases.due_of(case, date(2026, 11, 25))
    assert (due.level, due.left, due.estimated) == ("ok", 5, False)
    assert cases.due_of(case, date(2026, 12, 1)).left == 1
    last = cases.due_of(case, date(2026, 12, 2))
    assert (last.level, last.left) == ("last", 0)
    late = cases.due_of(case, date(2026, 12, 4))
    assert (late.level, late.overdue_days) == ("overdue", 2)
    weekend = cases.due_of(case, date(2026, 12, 5))  # Saturday after: already overdue
    assert weekend.level == "overdue"


def test_inbound_cases_have_three_working_days():
    case = make_case(cs.INBOUND, "received", dept=None, start=date(2026, 9, 30))
    assert case.deadline == date(2026, 10, 10)  # across National Day, to the make-up Saturday
    assert cases.due_of(case, date(2026, 10, 9)).left == 1


def test_the_clock_stops_when_our_part_is_done():
    for direction, state in [
        (cs.OUTBOUND, "transmitted"),
        (cs.OUTBOUND, "archived"),
        (cs.INBOUND, "fed_back"),
        (cs.OUTBOUND, "rejected"),
    ]:
        case = make_case(direction, state, start=date(2026, 10, 1))
        assert cases.due_of(case, date(2026, 11, 25)).level == "off"


def test_a_waiting_case_shows_the_clock_paused():
    case = make_case(cs.OUTBOUND, cs.PAUSED, start=START, paused_since=START)
    due = cases.due_of(case, date(2026, 11, 27))
    assert (due.level, due.left, due.paused_days) == ("paused", None, 4)


def test_deadlines_in_an_unknown_year_are_estimates():
    case = make_case(cs.OUTBOUND, "accepted", start=date(2026, 12, 28))
    assert case.deadline.year == 2027
    assert cases.due_of(case, date(2026, 12, 29)).estimated
    assert not cases.due_of(make_case(cs.OUTBOUND, "accepted"), START).estimated


def test_leaving_supplement_extends_the_deadline_by_the_working_days_waited():
    clerk = staff("clerk")
    start = date(2026, 9, 28)
    case = make_case(cs.OUTBOUND, "accepted", start=start)
    assert case.deadline == date(2026, 10, 13)
    missing = {"missing": ["购房发票或首付款证明"]}
    cases.move_case(clerk, case.id, cs.PAUSED, 1, missing, today=date(2026, 9, 29))
    assert fresh(case).paused_since == date(2026, 9, 29)
    back = cases.move_case(clerk, case.id, "accepted", 2, today=date(2026, 10, 12))
    # 09-30, 10-08, 10-09, 10-10 (make-up Saturday) and 10-12 did not count
    assert back.paused_workdays == 5
    assert back.paused_since is None
    assert back.deadline == date(2026, 10, 20)
    assert back.deadline == paused_deadline(start, 7, [(date(2026, 9, 29), date(2026, 10, 12))])
    event = CaseEvent.get((CaseEvent.case == case.id) & (CaseEvent.to_state == "accepted"))
    assert event.data["paused_workdays"] == 5 and event.data["deadline"] == "2026-10-20"


def test_two_pauses_add_up():
    clerk = staff("clerk")
    case = make_case(cs.OUTBOUND, "accepted", start=START)
    missing = {"missing": ["购房合同或不动产权证书"]}
    cases.move_case(clerk, case.id, cs.PAUSED, 1, missing, today=date(2026, 11, 24))
    cases.move_case(clerk, case.id, "accepted", 2, today=date(2026, 11, 26))  # 2 days
    cases.move_case(clerk, case.id, cs.PAUSED, 3, missing, today=date(2026, 11, 27))
    back = cases.move_case(clerk, case.id, "accepted", 4, today=date(2026, 12, 1))  # 2 days
    assert back.paused_workdays == 4
    pauses = [(date(2026, 11, 24), date(2026, 11, 26)), (date(2026, 11, 27), date(2026, 12, 1))]
    assert back.deadline == paused_deadline(START, 7, pauses) == add_workdays(date(2026, 12, 2), 4)


def test_inbound_supplement_pauses_the_three_days():
    handler = staff("handler")
    case = make_case(cs.INBOUND, "processing", assignee="handler", start=START)
    assert case.deadline == date(2026, 11, 26)
    missing = {"missing": ["购房合同或不动产权证书"]}
    cases.move_case(handler, case.id, cs.PAUSED, 1, missing, today=date(2026, 11, 25))
    back = cases.move_case(handler, case.id, "processing", 2, today=date(2026, 11, 30))
    assert back.paused_workdays == 3  # 11-26, 11-27, 11-30
    assert back.deadline == date(2026, 12, 1)


def test_the_admins_holiday_overrides_count(client):
    """Through the board: the view passes the admin's overrides to the deadline arithmetic."""
    HolidayOverride.create(day=date(2026, 11, 20), is_workday=False, note="测试停工")
    paused_on = date(2026, 11, 17)
    case = make_case(cs.OUTBOUND, cs.PAUSED, start=date(2026, 11, 16), paused_since=paused_on)
    login_staff(client, "clerk")
    r = client.post(
        f"/staff/board/case/{case.id}/move", data=form_data(case, "accepted"), headers=HX
    )
    assert r.status_code == 200
    today = local_today()
    expected, days = cs.resumed_deadline(
        case.deadline, paused_on, today, settings.holiday_overrides()
    )
    assert days == workdays_between(paused_on, today) - 1  # 11-20 was closed
    assert (fresh(case).deadline, fresh(case).paused_workdays) == (expected, days)


def test_a_pause_that_starts_after_the_deadline_does_not_help():
    clerk = staff("clerk")
    case = make_case(cs.OUTBOUND, "accepted", start=date(2026, 11, 2))
    deadline = case.deadline
    missing = {"missing": ["购房合同或不动产权证书"]}
    cases.move_case(clerk, case.id, cs.PAUSED, 1, missing, today=date(2026, 11, 20))
    back = cases.move_case(clerk, case.id, "accepted", 2, today=date(2026, 11, 25))
    assert back.deadline == deadline
    assert cases.due_of(back, date(2026, 11, 25)).level == "overdue"
