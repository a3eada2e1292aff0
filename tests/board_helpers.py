"""Helpers for the board tests (tests/test_board*.py, tests/test_cases*.py)."""

from __future__ import annotations

import itertools
from datetime import date

from bs4 import BeautifulSoup

from portal import items
from portal.models import Center, Department, ProxyCase, StaffUser
from portal.rules import casestates as cs
from portal.rules.workdays import add_workdays

HX = {"HX-Request": "true"}
APPLICANT_ID = "110105198001010016"  # fictional, valid check character
_seq = itertools.count(1)


def soup(response) -> BeautifulSoup:
    return BeautifulSoup(response.get_data(as_text=True), "html.parser")


def staff(username: str) -> StaffUser:
    return StaffUser.get(StaffUser.username == username)


def department(code: str) -> Department:
    return Department.get(Department.code == code)


def make_case(
    direction: str,
    state: str,
    *,
    dept: str | None = "AZQ",
    assignee: str | None = None,
    start: date = date(2026, 11, 23),
    item: str = "purchase_withdrawal",
    name: str = "测试申请人",
    prefix: str = "TB",
    **fields,
) -> ProxyCase:
    """A case of our own in any column (rolled back with the test unless committed)."""
    n = next(_seq)
    center = Center.select().where(~Center.is_self).order_by(Center.id).first()
    limit = 7 if direction == cs.OUTBOUND else 3
    values = dict(
        case_no=f"{prefix}{n:08d}",
        receipt_no=f"{prefix}R{n:08d}",
        item=item,
        direction=direction,
        state=state,
        center=center,
        applicant_name=name,
        applicant_id_no=APPLICANT_ID,
        applicant_phone="13800138000",
        application={"contract_no": f"HT{n}"},
        checklist={m.code: True for m in items.get(item).materials},
        department=department(dept) if dept else None,
        assignee=staff(assignee) if assignee else None,
        accepted_by=staff("clerk") if direction == cs.OUTBOUND else None,
        clock_start=start,
        deadline=add_workdays(start, limit),
        paused_since=start if state == cs.PAUSED else None,
    )
    values.update(fields)
    return ProxyCase.create(**values)


def fresh(case: ProxyCase) -> ProxyCase:
    return ProxyCase.get_by_id(case.id)


def data_for(move: cs.Move | None) -> dict:
    """Valid data for what a move needs."""
    if move is None or move.requires is None:
        return {}
    return {
        "reason": {"reason": "材料与本人不符"},
        "missing": {"missing": ["购房合同或不动产权证书"]},
        "result": {"outcome": "办结", "note": "已办结并反馈"},
        "department": {"department": department("AZQ").id},
    }[move.requires]


def form_data(case: ProxyCase, target: str, **extra) -> dict:
    """What a card's "移至…" menu posts."""
    return {"target": target, "version": str(case.version), "from_state": case.state, **extra}
