"""What each staff member sees on the intranet home: their own work, by role."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from peewee import fn

from portal.db import Shapes
from portal.models import AuditLog, CertificateRequest, ProxyCase, StaffUser
from portal.rules import casestates
from portal.rules.casestates import INBOUND, OUTBOUND
from portal.rules.workdays import calendar_known, workdays_between
from portal.services.cases import visibility, visible_by_kind


@dataclass
class WorkTile:
    label: str
    count: int
    hint: str = ""


@dataclass
class OverdueCase:
    case: ProxyCase
    workdays_late: int


@dataclass
class StaffHome:
    tiles: list[WorkTile] = field(default_factory=list)
    overdue: list[OverdueCase] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    recent_audit: list[AuditLog] = field(default_factory=list)


_HOME_COUNTS = Shapes(
    lambda shape, dept: (
        ProxyCase.select(ProxyCase.direction, ProxyCase.state, fn.COUNT(ProxyCase.id))
        .where(
            visible_by_kind(shape[0], dept)
            & ProxyCase.direction.in_(list(shape[1]))
            & ProxyCase.state.in_(list(shape[2]))
        )
        .group_by(ProxyCase.direction, ProxyCase.state)
        .tuples()
    ),
    1,
)


def _counts(user: StaffUser, columns) -> dict[tuple[str, str], int]:
    """How many visible cases are in each of these (direction, state) columns. Only their
    states are read, over the (direction, state) index, so the count does not grow with the
    closed cases of past years (issue 10: every column on a home page is an open one)."""
    kind, dept = visibility(user)
    directions = tuple(sorted({d for d, _s in columns}))
    states = tuple(sorted({s for _d, s in columns}))
    wanted = set(columns)
    rows = _HOME_COUNTS[kind, directions, states].all(dept)
    return {(d, s): n for d, s, n in rows if (d, s) in wanted}


OVERDUE_SHOWN = 10

_LATE = Shapes(
    lambda shape, dept, today, n: (
        ProxyCase.select(
            ProxyCase.id,
            ProxyCase.case_no,
            ProxyCase.item,
            ProxyCase.direction,
            ProxyCase.state,
            ProxyCase.deadline,
        )
        .where(
            visible_by_kind(shape[0], dept)
            & (ProxyCase.direction == shape[1])
            & (ProxyCase.state == shape[2])
            & (ProxyCase.deadline < today)
        )
        .order_by(ProxyCase.deadline, ProxyCase.id)
        .limit(n)
    ),
    3,
)


def _overdue(user: StaffUser, today: date, overrides) -> list[OverdueCase]:
    """The visible cases whose own clock runs past their deadline, the longest overdue first,
    at most ``OVERDUE_SHOWN``. Each running column gives its first few in the order of the
    (direction, state, deadline) index, so the page reads at most that many rows per column
    however many cases are late (issue 10)."""
    kind, dept = visibility(user)
    found: list[ProxyCase] = []
    for direction, states in casestates.CLOCK_STATES.items():
        for state in states:
            found.extend(_LATE[kind, direction, state].all(dept, today, OVERDUE_SHOWN))
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
