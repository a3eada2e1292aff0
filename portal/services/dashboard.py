"""The center's dashboard: aggregate figures only (no personal data), computed with GROUP BY
queries over the open cases and the last 12 months, so the cost grows neither with the number
of depositors nor with the years of history."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from peewee import SQL, fn

from portal import items
from portal.models import CaseEvent, Center, Certificate, ChangeRecord, Payout, ProxyCase
from portal.rules import casestates
from portal.rules.casestates import INBOUND, OUTBOUND
from portal.rules.workdays import workdays_between


@dataclass
class Bar:
    label: str
    value: float
    note: str = ""


@dataclass
class Dashboard:
    today: date
    since: date  # the first day of the 12 months the figures of what was done cover
    by_item: list[tuple[str, int, int]] = field(default_factory=list)  # name, outbound, inbound
    by_state: dict[str, list[Bar]] = field(default_factory=dict)
    open_total: int = 0
    overdue_total: int = 0
    overdue_by_direction: dict[str, int] = field(default_factory=dict)
    avg_workdays: list[Bar] = field(default_factory=list)
    peers_by_month: list[tuple[str, list[Bar]]] = field(default_factory=list)
    peers_by_day: list[tuple[str, list[Bar]]] = field(default_factory=list)
    online_by_month: list[Bar] = field(default_factory=list)
    online_totals: dict[str, int] = field(default_factory=dict)
    satisfaction: object = None  # services.ratings.Satisfaction (issue 11: 好差评)

    @property
    def max_item(self) -> int:
        return max([o + i for _, o, i in self.by_item] or [1]) or 1


def _month_starts(today: date, months: int) -> list[date]:
    starts, d = [], date(today.year, today.month, 1)
    for _ in range(months):
        starts.append(d)
        d = date(d.year - 1, 12, 1) if d.month == 1 else date(d.year, d.month - 1, 1)
    return list(reversed(starts))


def build(today: date, overrides=None) -> Dashboard:
    """The figures as of ``today``. What is open is counted whole (every open case, however
    old); what is done, over the last 12 months the charts show (``since``): cases accepted
    or received since then by item, cases that reached a final state since then, and their
    average working days. So the page's cost follows the open cases and a year's volume,
    never the years of history a center keeps (issue 10)."""
    months = _month_starts(today, 12)
    dash = Dashboard(today=today, since=months[0])
    since_dt = datetime(months[0].year, months[0].month, 1)

    # cases accepted (outbound) or received (inbound) in the window, by item and direction
    taken = defaultdict(int)
    for item, direction, n in (
        ProxyCase.select(ProxyCase.item, ProxyCase.direction, fn.COUNT(ProxyCase.id))
        .where(ProxyCase.clock_start >= dash.since)
        .group_by(ProxyCase.item, ProxyCase.direction)
        .tuples()
    ):
        taken[(item, direction)] = n
    for item in items.ITEMS:
        out, inn = taken[(item.code, OUTBOUND)], taken[(item.code, INBOUND)]
        if out or inn:
            dash.by_item.append((item.short, out, inn))

    # open columns: every open case, counted from the (direction, state) index
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for direction in (OUTBOUND, INBOUND):
        open_states = [s for s in casestates.COLUMNS[direction] if casestates.is_open(direction, s)]
        for state, n in (
            ProxyCase.select(ProxyCase.state, fn.COUNT(SQL("*")))
            .where((ProxyCase.direction == direction) & ProxyCase.state.in_(open_states))
            .group_by(ProxyCase.state)
            .tuples()
        ):
            counts[(direction, state)] = n
        dash.overdue_by_direction[direction] = (
            ProxyCase.select()
            .where(
                (ProxyCase.direction == direction)
                & ProxyCase.state.in_(casestates.CLOCK_STATES[direction])
                & (ProxyCase.deadline < today)
            )
            .count()
        )
    dash.open_total = sum(counts.values())
    dash.overdue_total = sum(dash.overdue_by_direction.values())

    # final columns and the average working days: the cases whose last move into the final
    # state they are in came in the window, grouped by item, clock start and day finished,
    # so the working days are counted once per group, not once per case; read from the
    # (to_state, created_at) index of the moves (migration 0016)
    finals = sorted({s for d in (OUTBOUND, INBOUND) for s in casestates.FINAL[d]})
    moves = (
        CaseEvent.select(
            CaseEvent.case, CaseEvent.to_state, fn.MAX(CaseEvent.created_at).alias("finished")
        )
        .where(CaseEvent.to_state.in_(finals) & (CaseEvent.created_at >= since_dt))
        .group_by(CaseEvent.case, CaseEvent.to_state)
    ).alias("moves")
    day_done = fn.DATE(moves.c.finished)
    done = (
        ProxyCase.select(
            ProxyCase.item,
            ProxyCase.direction,
            ProxyCase.state,
            ProxyCase.clock_start,
            day_done,
            fn.COUNT(SQL("*")),
        )
        .from_(moves)
        .join(
            ProxyCase,
            on=(ProxyCase.id == moves.c.case_id) & (ProxyCase.state == moves.c.to_state),
        )
        .group_by(
            ProxyCase.item, ProxyCase.direction, ProxyCase.state, ProxyCase.clock_start, day_done
        )
    )
    spans: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # item: working days, cases
    for item, direction, state, start, finished, n in done.tuples():
        if state not in casestates.FINAL[direction]:  # another direction's final state name
            continue
        counts[(direction, state)] += n
        if state == "rejected":  # returned, not carried out: not in the average
            continue
        span = spans[item]
        span[0] += n * max(0, workdays_between(_day(start), _day(finished), overrides))
        span[1] += n
    for direction in (OUTBOUND, INBOUND):
        dash.by_state[direction] = [
            Bar(casestates.label(direction, state), counts[(direction, state)])
            for state in casestates.COLUMNS[direction]
        ]
    for item in items.ITEMS:
        total, n = spans.get(item.code, (0, 0))
        if n:
            dash.avg_workdays.append(Bar(item.short, round(total / n, 1), f"{n} 件"))

    # volumes with each peer center: cases opened per month (12) and per day (14)
    days = [today - timedelta(days=i) for i in range(13, -1, -1)]
    since = min(months[0], days[0])
    per_center = defaultdict(lambda: defaultdict(int))
    for code, created, n in (
        ProxyCase.select(Center.code, ProxyCase.clock_start, fn.COUNT(ProxyCase.id))
        .join(Center)
        .where(ProxyCase.clock_start >= since)
        .group_by(Center.code, ProxyCase.clock_start)
        .tuples()
    ):
        per_center[code][_day(created)] += n
    for center in Center.select().where(~Center.is_self).order_by(Center.code):
        by_day = per_center.get(center.code, {})
        monthly = []
        for i, start in enumerate(months):
            end = months[i + 1] if i + 1 < len(months) else date.max
            monthly.append(
                Bar(f"{start:%y-%m}", sum(n for d, n in by_day.items() if start <= d < end))
            )
        dash.peers_by_month.append((center.name, monthly))
        dash.peers_by_day.append((center.name, [Bar(f"{d:%m-%d}", by_day.get(d, 0)) for d in days]))

    # online items done (certificates issued, payouts confirmed, changes made) per month
    online = defaultdict(int)
    totals = defaultdict(int)
    for label, model, at, only in (
        ("证明出具", Certificate, Certificate.issued_at, None),
        ("提取与还贷", Payout, Payout.confirmed_at, Payout.status == "confirmed"),
        ("信息变更", ChangeRecord, ChangeRecord.changed_at, ChangeRecord.channel == "online"),
    ):
        since_start = at >= since_dt
        # counted per day in SQL (issue 10: not a row per certificate or payout)
        for day, n in (
            model.select(fn.DATE(at), fn.COUNT(SQL("*")))
            .where(since_start if only is None else only & since_start)
            .group_by(fn.DATE(at))
            .tuples()
        ):
            online[_month(_day(day))] += n
            totals[label] += n
    dash.online_by_month = [Bar(f"{m:%y-%m}", online.get(f"{m:%Y-%m}", 0)) for m in months]
    dash.online_totals = dict(totals)

    from portal.services import ratings  # issue 11: satisfaction rate of all ratings

    dash.satisfaction = ratings.satisfaction()
    return dash


def _day(value) -> date:
    """A date as the database gives it (SQLite: text; ``DATE()`` of a timestamp too)."""
    if isinstance(value, str):
        return date.fromisoformat(value[:10])
    if isinstance(value, datetime):
        return value.date()
    return value


def _month(value) -> str:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return f"{value:%Y-%m}"


def rows_for_export(dash: Dashboard) -> dict[str, list[list]]:
    """The dashboard's figures as sheets of rows (for the Excel export)."""
    sheets = {
        "说明": [
            ["截至", dash.today.isoformat()],
            ["近 12 个月自", dash.since.isoformat()],
            ["在办、超期", "当前全部在办件"],
            ["按事项", "近 12 个月受理（外地业务）或接收（本地业务）的办件"],
            ["按状态", "在办各列为全部在办件；办结、退回各列为近 12 个月进入该列的办件"],
            ["平均办结工作日", "近 12 个月办结的办件，自受理或接收起的工作日"],
        ],
        "按事项": [["事项", "外地业务", "本地业务"]] + [list(r) for r in dash.by_item],
        "按状态": [["方向", "状态", "件数"]]
        + [
            [("外地业务" if d == OUTBOUND else "本地业务"), b.label, b.value]
            for d, bars in dash.by_state.items()
            for b in bars
        ],
        "超期": [["方向", "超期件数"]]
        + [
            [("外地业务" if d == OUTBOUND else "本地业务"), n]
            for d, n in dash.overdue_by_direction.items()
        ],
        "平均办结工作日": [["事项", "平均工作日", "件数"]]
        + [[b.label, b.value, b.note] for b in dash.avg_workdays],
        "合作中心按月": [["中心", "月份", "件数"]]
        + [[name, b.label, b.value] for name, bars in dash.peers_by_month for b in bars],
        "网办按月": [["月份", "件数"]] + [[b.label, b.value] for b in dash.online_by_month],
    }
    if dash.satisfaction is not None:  # issue 11: 好差评
        from portal.models import RATING_LABELS

        sat = dash.satisfaction
        sheets["服务评价"] = (
            [["评价", "件数"]]
            + [[label, sat.counts.get(score, 0)] for score, label in RATING_LABELS.items()]
            + [["评价数", sat.rated], ["满意率", sat.percent]]
        )
    return sheets
