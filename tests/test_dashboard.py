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


def _window_start(today):
    from datetime import datetime

    since = dashboard._month_starts(today, 12)[0]
    return since, datetime(since.year, since.month, 1)


def _finished_in_window(case, since_dt) -> bool:
    """A case in a final state whose last move into that state came in the window."""
    moves = [e.created_at for e in case.events if e.to_state == case.state]
    return bool(moves) and max(moves) >= since_dt


def _reference_figures(today):
    """The figures case by case: the window's cases by item, every open case and the
    window's finished ones by column."""
    since, since_dt = _window_start(today)
    by_item, by_state = {}, {}
    for case in ProxyCase.select():
        if case.clock_start >= since:
            key = (case.item, case.direction)
            by_item[key] = by_item.get(key, 0) + 1
        if casestates.is_open(case.direction, case.state) or _finished_in_window(case, since_dt):
            key = (case.direction, case.state)
            by_state[key] = by_state.get(key, 0) + 1
    return by_item, by_state


def _assert_figures_match(d, today):
    from portal import items

    by_item, by_state = _reference_figures(today)
    assert d.since == _window_start(today)[0]
    assert {name: (o, i) for name, o, i in d.by_item} == {
        item.short: (
            by_item.get((item.code, "outbound"), 0),
            by_item.get((item.code, "inbound"), 0),
        )
        for item in items.ITEMS
        if by_item.get((item.code, "outbound")) or by_item.get((item.code, "inbound"))
    }
    for direction, bars in d.by_state.items():
        assert [b.label for b in bars] == [
            casestates.label(direction, s) for s in casestates.COLUMNS[direction]
        ]
        assert [b.value for b in bars] == [
            by_state.get((direction, s), 0) for s in casestates.COLUMNS[direction]
        ]
    open_cases = [c for c in ProxyCase.select() if casestates.is_open(c.direction, c.state)]
    assert d.open_total == len(open_cases)
    late = [
        c
        for c in open_cases
        if casestates.clock_running(c.direction, c.state) and c.deadline < today
    ]
    assert d.overdue_total == len(late)


def test_figures_match_the_cases():
    d = dashboard.build(TODAY)
    _assert_figures_match(d, TODAY)
    assert d.by_item and d.avg_workdays and all(b.value >= 0 for b in d.avg_workdays)
    assert len(d.peers_by_month) == 2 and all(len(b) == 12 for _, b in d.peers_by_month)


def test_what_was_done_counts_the_last_12_months_and_what_is_open_counts_whole():
    """Cases older than the window: one still open counts in its column and the open total
    (not by item); one finished before the window counts nowhere; one accepted before the
    window and finished in it counts in its column and the average (not by item). A case
    returned in the window counts in 退回, not in the average."""
    from datetime import datetime, timedelta

    from portal import items
    from portal.models import CaseEvent
    from portal.rules import casestates as cs
    from tests.board_helpers import make_case

    since, _since_dt = _window_start(TODAY)
    before = since - timedelta(days=400)
    item = "settlement_certificate"
    assert items.get(item)

    def moved(case, days_ago: int):
        CaseEvent.create(
            case=case,
            action="move",
            from_state="verifying",
            to_state=case.state,
            created_at=datetime.combine(TODAY - timedelta(days=days_ago), datetime.min.time()),
        )

    base = dashboard.build(TODAY)
    make_case(cs.OUTBOUND, "verifying", start=before, item=item)  # open, accepted long ago
    done_old = make_case(cs.OUTBOUND, "archived", start=before, item=item)
    moved(done_old, (TODAY - since).days + 30)
    late_finish = make_case(cs.OUTBOUND, "archived", start=before, item=item)
    moved(late_finish, 10)
    returned = make_case(cs.OUTBOUND, "rejected", start=TODAY - timedelta(days=20), item=item)
    moved(returned, 5)
    d = dashboard.build(TODAY)
    _assert_figures_match(d, TODAY)

    def column(dash, state):
        return next(
            b.value
            for b, s in zip(dash.by_state[cs.OUTBOUND], cs.COLUMNS[cs.OUTBOUND], strict=True)
            if s == state
        )

    assert column(d, "verifying") == column(base, "verifying") + 1
    assert d.open_total == base.open_total + 1
    assert column(d, "archived") == column(base, "archived") + 1  # late_finish only
    assert column(d, "rejected") == column(base, "rejected") + 1
    short = items.get(item).short
    by_item = {name: o for name, o, _i in d.by_item}
    assert by_item.get(short, 0) == {n: o for n, o, _i in base.by_item}.get(short, 0) + 1
    averages = {b.label: b.note for b in d.avg_workdays}
    before_n = {b.label: int(b.note.split()[0]) for b in base.avg_workdays}.get(short, 0)
    assert averages[short] == f"{before_n + 1} 件"  # late_finish, not the returned case


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
    from portal.filters import local_today

    since, _ = _window_start(local_today())  # the page's today, not the tests' fixed one
    assert sum(r[1] + r[2] for r in rows[1:]) == (
        ProxyCase.select().where(ProxyCase.clock_start >= since).count()
    )
    notes = dict(list(book["说明"].values))
    assert notes["近 12 个月自"] == since.isoformat()


# --- the grouped figures equal a count case by case (issue 10) ------------------------------


def _case_by_case(today, overrides):
    """What the dashboard showed when it read every case and every row: the reference."""
    from collections import defaultdict
    from datetime import datetime, timedelta

    from portal.models import Certificate, ChangeRecord, Payout
    from portal.rules.workdays import workdays_between

    finals = {"archived", "fed_back"}
    _since, since_dt = _window_start(today)
    spans = defaultdict(list)
    for case in ProxyCase.select().where(ProxyCase.state.in_(finals)):
        moves = [e.created_at for e in case.events if e.to_state == case.state]
        if moves and max(moves) >= since_dt:
            days = workdays_between(case.clock_start, max(moves).date(), overrides)
            spans[case.item].append(max(0, days))
    averages = {item: (round(sum(v) / len(v), 1), len(v)) for item, v in spans.items()}
    months = dashboard._month_starts(today, 12)
    days = [today - timedelta(days=i) for i in range(13, -1, -1)]
    per_center = defaultdict(lambda: defaultdict(int))
    for case in ProxyCase.select().where(ProxyCase.clock_start >= min(months[0], days[0])):
        per_center[case.center.name][case.clock_start] += 1
    start = datetime(months[0].year, months[0].month, 1)
    online = defaultdict(int)
    for at in (
        [c.issued_at for c in Certificate.select() if c.issued_at >= start]
        + [
            p.confirmed_at
            for p in Payout.select()
            if p.status == "confirmed" and p.confirmed_at and p.confirmed_at >= start
        ]
        + [
            c.changed_at
            for c in ChangeRecord.select()
            if c.channel == "online" and c.changed_at >= start
        ]
    ):
        online[f"{at:%y-%m}"] += 1
    return averages, per_center, days, online


def test_grouped_figures_equal_a_count_case_by_case():
    """The average working days are counted per (item, clock start, day finished) group and
    the volumes per day in SQL; the figures equal the case-by-case count, with the admin's
    calendar days, a case finished twice (its last move counts) and one whose last move came
    before its clock start (0 days)."""
    from datetime import datetime, timedelta

    from portal import items
    from portal.models import CaseEvent, Certificate, ChangeRecord
    from portal.rules import casestates as cs
    from tests.board_helpers import make_case

    def at(days_ago: int, hour: int = 0) -> datetime:
        return datetime.combine(TODAY - timedelta(days=days_ago), datetime.min.time()).replace(
            hour=hour
        )

    def finished(case, to_state: str, days_ago: int) -> None:
        CaseEvent.create(
            case=case, action="move", from_state="done", to_state=to_state, created_at=at(days_ago)
        )

    first = make_case(
        cs.OUTBOUND, "archived", start=TODAY - timedelta(days=20), item="purchase_withdrawal"
    )
    finished(first, "archived", 9)
    finished(first, "archived", 2)  # finished twice: the last move counts
    early = make_case(cs.INBOUND, "fed_back", start=TODAY - timedelta(days=3), dept=None)
    finished(early, "fed_back", 60)  # before its clock start: 0 days

    for n, (days_ago, hour) in enumerate([(1, 23), (1, 0), (40, 12), (400, 9)]):
        Certificate.create(
            kind="deposit", number=f"DB{n}", verify_code=f"DBV{n}", issued_at=at(days_ago, hour)
        )
    for days_ago, channel in [(3, "online"), (3, "counter"), (70, "online")]:
        ChangeRecord.create(
            subject_type="depositor",
            subject_id=1,
            field="phone",
            channel=channel,
            actor="test",
            changed_at=at(days_ago, 8),
        )
    overrides = {TODAY - timedelta(days=5): False, TODAY - timedelta(days=13): True}
    d = dashboard.build(TODAY, overrides)
    averages, per_center, days, online = _case_by_case(TODAY, overrides)
    assert {b.label: (b.value, b.note) for b in d.avg_workdays} == {
        items.get(code).short: (avg, f"{n} 件") for code, (avg, n) in averages.items()
    }
    for name, bars in d.peers_by_day:
        assert [b.value for b in bars] == [per_center[name].get(day, 0) for day in days]
    for name, bars in d.peers_by_month:
        assert sum(b.value for b in bars) == sum(per_center[name].values())
    assert {b.label: b.value for b in d.online_by_month if b.value} == dict(online)
    assert sum(d.online_totals.values()) == sum(online.values())
    assert online and averages  # the demo data has both
