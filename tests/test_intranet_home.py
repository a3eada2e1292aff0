"""Each staff role lands on a home page showing its own work."""

from __future__ import annotations

import pytest
from bs4 import BeautifulSoup

from portal.models import StaffUser
from portal.services import work
from tests.conftest import TODAY, login_staff


def soup(response):
    return BeautifulSoup(response.get_data(as_text=True), "html.parser")


@pytest.mark.parametrize(
    "username, expected",
    [
        ("clerk", "外地业务 · 窗口受理"),
        ("liaison", "本地业务 · 平台接收"),
        ("handler", "本地业务 · 已分发"),
        ("official", "待签发贷款结清证明"),
        ("admin", "在用工作人员"),
    ],
)
def test_home_tiles_by_role(client, username, expected):
    login_staff(client, username)
    page = soup(client.get("/staff/"))
    labels = [t.get_text(strip=True) for t in page.select(".tile-label")]
    assert expected in labels
    assert page.select_one(".who .badge").get_text()


def test_auditor_sees_recent_audit_entries(client):
    login_staff(client, "auditor")
    page = soup(client.get("/staff/"))
    actions = [td.get_text() for td in page.select("#audit-h ~ .table-scroll td")]
    assert "登录" in actions


def test_handler_counts_only_their_department():
    handler = StaffUser.get(StaffUser.username == "handler")
    handler2 = StaffUser.get(StaffUser.username == "handler2")
    one = {t.label: t.count for t in work.staff_home(handler, TODAY).tiles}
    two = {t.label: t.count for t in work.staff_home(handler2, TODAY).tiles}
    liaison = StaffUser.get(StaffUser.username == "liaison")
    everything = work._counts(liaison, [("inbound", "processing")])
    key = "本地业务 · 办理中"
    assert one[key] + two[key] <= everything[("inbound", "processing")]


def test_admin_is_warned_when_next_years_calendar_is_unknown():
    admin = StaffUser.get(StaffUser.username == "admin")
    home = work.staff_home(admin, TODAY)
    assert any("2027" in w and "预计" in w for w in home.warnings)


def test_overdue_lists_only_cases_whose_clock_runs():
    from datetime import timedelta

    from portal.rules import casestates

    liaison = StaffUser.get(StaffUser.username == "liaison")
    later = TODAY + timedelta(days=60)
    home = work.staff_home(liaison, later)
    assert home.overdue
    for item in home.overdue:
        assert casestates.clock_running(item.case.direction, item.case.state)
        assert item.workdays_late > 0


def test_overdue_are_the_longest_late_across_columns_at_most_ten():
    """The home page reads each running column's first few late cases and keeps the ten
    longest late of them all: the same ten a single query over every case would give, in the
    same order, whatever columns they are in; a paused or finished case is never listed."""
    from datetime import date, timedelta

    from portal.models import ProxyCase
    from portal.rules import casestates as cs
    from tests.board_helpers import make_case

    start = date(2026, 9, 1)
    made = []
    for n, (direction, state) in enumerate(
        [
            (cs.OUTBOUND, "accepted"),
            (cs.OUTBOUND, "verifying"),
            (cs.INBOUND, "received"),
            (cs.INBOUND, "distributed"),
            (cs.INBOUND, "processing"),
            (cs.INBOUND, "done"),
        ]
        * 3
    ):
        made.append(make_case(direction, state, start=start + timedelta(days=n), prefix="OV"))
    paused = make_case(cs.OUTBOUND, cs.PAUSED, start=start - timedelta(days=30), prefix="OV")
    closed = make_case(cs.OUTBOUND, "archived", start=start - timedelta(days=30), prefix="OV")
    liaison = StaffUser.get(StaffUser.username == "liaison")
    later = date(2026, 12, 1)
    home = work.staff_home(liaison, later)
    running = [
        c
        for c in ProxyCase.select()
        if cs.clock_running(c.direction, c.state) and c.deadline < later
    ]
    expected = [c.id for c in sorted(running, key=lambda c: (c.deadline, c.id))][:10]
    assert [o.case.id for o in home.overdue] == expected
    assert len(home.overdue) == 10
    assert paused.id not in expected and closed.id not in expected
    days = [o.workdays_late for o in home.overdue]
    assert days == sorted(days, reverse=True)


def test_tiles_count_only_their_own_columns():
    """A role's tiles count their columns, finished cases of past years play no part."""
    from portal.rules import casestates as cs
    from tests.board_helpers import make_case

    clerk = StaffUser.get(StaffUser.username == "clerk")
    before = {t.label: t.count for t in work.staff_home(clerk, TODAY).tiles}
    make_case(cs.OUTBOUND, "accepted")
    make_case(cs.OUTBOUND, "archived")
    make_case(cs.OUTBOUND, "rejected")
    after = {t.label: t.count for t in work.staff_home(clerk, TODAY).tiles}
    accepted = "外地业务 · 窗口受理"
    assert after[accepted] == before[accepted] + 1
    assert {k: v for k, v in after.items() if k != accepted} == {
        k: v for k, v in before.items() if k != accepted
    }


def test_a_case_not_yet_due_is_not_overdue():
    """The late cases come from the head of each running column (most urgent first); the
    cases there that are not yet due are left out."""
    from portal.rules import casestates as cs
    from tests.board_helpers import make_case

    fresh = make_case(cs.OUTBOUND, "accepted", start=TODAY)
    liaison = StaffUser.get(StaffUser.username == "liaison")
    home = work.staff_home(liaison, TODAY)
    assert fresh.id not in {o.case.id for o in home.overdue}
    assert all(o.case.deadline < TODAY and o.workdays_late > 0 for o in home.overdue)
