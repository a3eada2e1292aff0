"""What each staff member sees on the intranet home: their own work, by role."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from portal.models import AuditLog, CertificateRequest, StaffUser
from portal.rules import casestates
from portal.rules.casestates import INBOUND, OUTBOUND
from portal.rules.workdays import calendar_known, workdays_between
from portal.services import cases


@dataclass
class WorkTile:
    label: str
    count: int
    hint: str = ""


@dataclass
class OverdueCase:
    case: cases.CardRow
    workdays_late: int


@dataclass
class StaffHome:
    tiles: list[WorkTile] = field(default_factory=list)
    overdue: list[OverdueCase] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    recent_audit: list[AuditLog] = field(default_factory=list)


def _counts(user: StaffUser, columns) -> dict[tuple[str, str], int]:
    """How many visible cases are in each of these (direction, state) columns, by the board's
    own counts (issue 10: only these columns, all open ones, so the count does not grow with
    the closed cases of past years)."""
    counts = {}
    for direction in dict.fromkeys(d for d, _s in columns):
        states = [s for d, s in columns if d == direction]
        for state, n in cases.column_counts(user, direction, states).items():
            counts[(direction, state)] = n
    return counts


OVERDUE_SHOWN = 10


def _overdue(user: StaffUser, today: date, overrides) -> list[OverdueCase]:
    """The visible cases whose own clock runs past their deadline, the longest overdue first,
    at most ``OVERDUE_SHOWN``. A running column's cards come most urgent first, so its late
    ones are among its first few: the page reads at most that many cards per column however
    many cases are late (issue 10)."""
    found: list[cases.CardRow] = []
    for direction, states in casestates.CLOCK_STATES.items():
        for state in states:
            first = cases.column_cards(user, direction, state, OVERDUE_SHOWN)
            found.extend(c for c in first if c.deadline < today)
    found.sort(key=lambda c: (c.deadline, c.id))
    return [
        OverdueCase(c, workdays_between(c.deadline, today, overrides))
        for c in found[:OVERDUE_SHOWN]
    ]


# Which columns are "my work" per role: (direction, state, hint).
ROLE_WORK = {
    "clerk": [
        (OUTBOUND, "accepted", "核实材料后转入材料核实"),
        (OUTBOUND, "supplement", "等待申请人补正"),
        (OUTBOUND, "feedback", "装订归档"),
    ],
    "liaison": [
        (INBOUND, "received", "分发至管理部"),
        (OUTBOUND, "verifying", "通过平台传递"),
        (INBOUND, "done", "向受理地反馈结果"),
        (OUTBOUND, "transmitted", "等待缴存地反馈"),
    ],
    "handler": [
        (INBOUND, "distributed", "领取并办理"),
        (INBOUND, "processing", "办理中"),
        (INBOUND, "supplement", "等待补正材料"),
        (OUTBOUND, "feedback", "装订归档"),
    ],
}


def staff_home(user: StaffUser, today: date, overrides=None) -> StaffHome:
    home = StaffHome()
    if user.role in ROLE_WORK:
        counts = _counts(user, [(d, s) for d, s, _hint in ROLE_WORK[user.role]])
        for direction, state, hint in ROLE_WORK[user.role]:
            name = "外地业务" if direction == OUTBOUND else "本地业务"
            home.tiles.append(
                WorkTile(
                    f"{name} · {casestates.label(direction, state)}",
                    counts.get((direction, state), 0),
                    hint,
                )
            )
        home.overdue = _overdue(user, today, overrides)
    if user.role == "official":
        pending = CertificateRequest.select().where(CertificateRequest.status == "pending").count()
        home.tiles.append(WorkTile("待签发贷款结清证明", pending, "核对结清后签发"))
    if user.role == "admin":
        for year in (today.year, today.year + 1):
            if not calendar_known(year):
                home.warnings.append(
                    f"{year} 年的法定节假日尚未收录，期限按周一至周五推算（显示“预计”），"
                    "请录入当年调休安排。"
                )
        home.tiles.append(
            WorkTile("在用工作人员", StaffUser.select().where(StaffUser.active).count())
        )
    if user.role == "auditor":
        home.recent_audit = list(AuditLog.select().order_by(AuditLog.id.desc()).limit(15))
    return home
