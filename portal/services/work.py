"""What each staff member sees on the intranet home: their own work, by role."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from peewee import fn

from portal.models import AuditLog, CertificateRequest, ProxyCase, StaffUser
from portal.rules import casestates
from portal.rules.casestates import INBOUND, OUTBOUND
from portal.rules.workdays import calendar_known, workdays_between


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


def _visible_cases(user: StaffUser):
    """Cases this user works on: the boards' one visibility rule."""
    from portal.services.cases import visible_clause

    return ProxyCase.select().where(visible_clause(user))


def _counts(user: StaffUser) -> dict[tuple[str, str], int]:
    query = (
        _visible_cases(user)
        .select(ProxyCase.direction, ProxyCase.state, fn.COUNT(ProxyCase.id))
        .group_by(ProxyCase.direction, ProxyCase.state)
        .tuples()
    )
    return {(d, s): n for d, s, n in query}


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
        counts = _counts(user)
        for direction, state, hint in ROLE_WORK[user.role]:
            name = "外地业务" if direction == OUTBOUND else "本地业务"
            home.tiles.append(
                WorkTile(
                    f"{name} · {casestates.label(direction, state)}",
                    counts.get((direction, state), 0),
                    hint,
                )
            )
        running = (
            (ProxyCase.direction == OUTBOUND)
            & ProxyCase.state.in_(casestates.CLOCK_STATES[OUTBOUND])
        ) | (
            (ProxyCase.direction == INBOUND) & ProxyCase.state.in_(casestates.CLOCK_STATES[INBOUND])
        )
        late = (
            _visible_cases(user)
            .where(running & (ProxyCase.deadline < today))
            .order_by(ProxyCase.deadline, ProxyCase.id)
            .limit(10)
        )
        home.overdue = [
            OverdueCase(c, workdays_between(c.deadline, today, overrides)) for c in late
        ]
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
