"""The center dashboard: aggregate figures, SVG charts, export; admins and officials only."""

from __future__ import annotations

from io import BytesIO

import pytest
from bs4 import BeautifulSoup
from openpyxl import load_workbook

from portal.models import ProxyCase
from portal.rules import casestates
from portal.services import dashboard
from tests.conftest import TODAY, login_depositor, login_staff


def test_figures_match_the_cases():
    d = dashboard.build(TODAY)
    total = ProxyCase.select().count()
    assert sum(o + i for _, o, i in d.by_item) == total
    for direction, bars in d.by_state.items():
        assert [b.label for b in bars] == [
            casestates.label(direction, s) for s in casestates.COLUMNS[direction]
        ]
        assert (
            sum(b.value for b in bars)
            == ProxyCase.select().where(ProxyCase.direction == direction).count()
        )
    open_cases = [c for c in ProxyCase.select() if casestates.is_open(c.direction, c.state)]
    assert d.open_total == len(open_cases)
    late = [
        c
        for c in open_cases
        if casestates.clock_running(c.direction, c.state) and c.deadline < TODAY
    ]
    assert d.overdue_total == len(late)
    assert d.avg_workdays and all(b.value >= 0 for b in d.avg_workdays)
    assert len(d.peers_by_month) == 2 and all(len(b) == 12 for _, b in d.peers_by_month)


@pytest.mark.parametrize("username", ["admin", "official"])
def test_dashboard_page_draws_svg_charts(client, username):
    login_staff(client, username)
    r = client.get("/staff/dashboard/")
    assert r.status_code == 200
    page = BeautifulSoup(r.get_data(as_text=True), "html.parser")
    charts = page.select("svg.chart")
    assert len(charts) >= 5
    assert all(c.get("role") == "img" and c.get("aria-label") for c in charts)
    assert page.select_one("#open-total").get_text(strip=True).isdigit()


@pytest.mark.parametrize("username", ["clerk", "liaison", "handler", "auditor"])
def test_other_roles_cannot_see_the_dashboard(client, username):
    login_staff(client, username)
    assert client.get("/staff/dashboard/").status_code == 403
    assert client.get("/staff/dashboard/export.xlsx").status_code == 403


def test_depositor_cannot_see_the_dashboard(client, depositor):
    login_depositor(client, depositor)
    assert client.get("/staff/dashboard/").status_code == 403


def test_export_has_a_sheet_per_figure(client):
    login_staff(client, "official")
    r = client.get("/staff/dashboard/export.xlsx")
    assert r.status_code == 200
    book = load_workbook(BytesIO(r.data))
    assert {"按事项", "按状态", "超期", "平均办结工作日", "合作中心按月", "网办按月"} <= set(
        book.sheetnames
    )
    rows = list(book["按事项"].values)
    assert rows[0] == ("事项", "外地业务", "本地业务")
    assert sum(r[1] + r[2] for r in rows[1:]) == ProxyCase.select().count()
