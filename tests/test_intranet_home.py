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
    everything = work._counts(liaison)
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
