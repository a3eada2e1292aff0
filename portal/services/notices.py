"""Notifications (站内消息): the in-portal inbox of depositors, employer operators and staff,
and the SMS that goes with the depositors' and counter applicants' notices.

Who is told of what:

* a depositor, when their case changes state, when a certificate is issued to them and when
  money is paid to them: a notice in the inbox and an SMS (``services.sms``);
* an applicant at our counter (an outbound case: no login here): an SMS only;
* an employer's operators, when the employer's case changes state: a notice;
* staff: when a case is assigned to them, when a case nears its deadline (``remind_deadlines``,
  run daily), when a bad rating reaches their department and when their background job ends.

Every notice carries a ``key`` naming the event: the same event told twice is stored (and
texted) once. The hooks are called inside the transaction of the change they report, so a
rolled-back change tells no one. SMS texts are short and never carry a full ID number.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date

from peewee import IntegrityError, fn

from portal import items
from portal.db import Prepared, db, write_tx
from portal.models import (
    NOTICE_RECIPIENTS,
    Certificate,
    Depositor,
    EmployerOperator,
    Notice,
    Payout,
    ProxyCase,
    StaffUser,
    utcnow,
)
from portal.rules import casestates as cs
from portal.rules.ids import mask_bank_card
from portal.rules.workdays import add_workdays, workdays_left
from portal.services import audit, sms

log = logging.getLogger(__name__)

PAGE_SIZE = 20
SMS_TAG = "【公积金】"
CERTIFICATE_NAMES = {
    "usage": "住房公积金缴存使用证明",
    "settlement": "住房公积金个人住房贷款全部还清证明",
    "employer_deposit": "单位住房公积金缴存证明",
}
PAYOUT_NAMES = {
    "retirement": "正常退休提取",
    "purchase": "购房提取",
    "loan_offset": "提前还清贷款（冲还贷）",
}


class NotFound(LookupError):
    """No such notice in this person's inbox (the view answers 404)."""


Recipient = tuple[str, int]


def recipient_of(principal) -> Recipient:
    """The inbox of a logged-in principal (``access.Principal``)."""
    return principal.kind, principal.obj.id


# --- writing ------------------------------------------------------------------------------


def notify(
    recipient: Recipient, title: str, body: str = "", link: str = "", key: str | None = None
) -> Notice | None:
    """Put a notice in the inbox; None when this recipient was already told of ``key``."""
    kind, rid = recipient
    if kind not in NOTICE_RECIPIENTS:
        raise ValueError(f"unknown recipient kind {kind!r}")
    if key is not None:
        key = key[:100]
        if Notice.select().where(_mine(recipient) & (Notice.key == key)).exists():
            return None
    try:
        with db.atomic():  # a savepoint: a concurrent duplicate leaves the caller's tx intact
            return Notice.create(
                recipient_kind=kind,
                recipient_id=rid,
                title=title[:100],
                body=body,
                link=link[:200],
                key=key,
            )
    except IntegrityError:
        return None


def _text(phone: str | None, body: str) -> None:
    if phone:
        sms.send(phone, SMS_TAG + body)


def _tell_depositor(depositor: Depositor, title, body, link, key, text) -> Notice | None:
    notice = notify(("depositor", depositor.id), title, body, link, key)
    if notice is not None:  # a duplicate event is not texted again either
        _text(depositor.phone, text)
    return notice


def _item_name(code: str) -> str:
    try:
        return items.get(code).short
    except KeyError:
        return code


# --- cases --------------------------------------------------------------------------------


def case_moved(case: ProxyCase, source: str, target: str) -> list[Notice]:
    """A case changed state (``services.cases.move_case``, in its transaction)."""
    label = cs.label(case.direction, target)
    item = _item_name(case.item)
    title = f"办件进度：{item} {label}"
    body = f"您的“{item}”办件（受理回执 {case.receipt_no}）已进入“{label}”。"
    if target == cs.PAUSED and case.missing_materials:
        body += "需补正材料：" + "、".join(case.missing_materials) + "。"
    if target == "rejected" and case.rejection_reason:
        body += f"退回原因：{case.rejection_reason}"
    from portal.services.ratings import RATABLE_CASE_STATES

    if target in RATABLE_CASE_STATES[case.direction]:
        body += "欢迎对本次服务进行评价。"
    text = f"您的办件{case.receipt_no}（{item}）已进入“{label}”。"
    if target == cs.PAUSED:
        text += "请按告知补正材料。"
    key = f"case:{case.id}:v{case.version}"
    told: list[Notice] = []
    if case.direction == cs.INBOUND and case.depositor_id:
        notice = _tell_depositor(
            case.depositor, title, body, f"/me/cases/{case.id}", key, text + "详见网上大厅。"
        )
        told += [notice] if notice else []
    elif case.direction == cs.OUTBOUND:  # applied at our counter: no login here, SMS only
        _text(case.applicant_phone, text + "可凭回执在网上大厅查询进度。")
    if case.employer_id:
        for operator in EmployerOperator.select().where(
            (EmployerOperator.employer == case.employer_id) & EmployerOperator.active
        ):
            notice = notify(("operator", operator.id), title, body, "", key)
            told += [notice] if notice else []
    return told


def case_assigned(case: ProxyCase, handler: StaffUser, by: StaffUser) -> Notice | None:
    """The liaison assigned a case to a handler (``services.cases.assign_case``)."""
    item = _item_name(case.item)
    return notify(
        ("staff", handler.id),
        f"新指派办件：{case.case_no}",
        f"{by.name}将“{item}”办件 {case.case_no} 指派给您，办理期限 {case.deadline:%Y-%m-%d}。",
        f"/staff/board/case/{case.id}",
        f"assign:{case.id}:v{case.version}",
    )


def _deadline_recipients(case: ProxyCase) -> list[StaffUser]:
    """The assignee; else whoever moves the case on: the department's handlers (and clerks at
    an outbound window), or the liaison when that move is theirs or no department has the
    case."""
    if case.assignee_id:
        assignee = StaffUser.get_or_none((StaffUser.id == case.assignee_id) & StaffUser.active)
        if assignee is not None:
            return [assignee]
    targets = cs.next_columns(case.direction, case.state)
    forward = [t for t in targets if t not in (cs.PAUSED, "rejected")] or targets
    roles = set()
    for target in forward:  # who moves the case on (not aside to 待补正 or 退回)
        roles |= cs.find_move(case.direction, case.state, target).roles
    department_roles = roles & {"handler", "clerk"}
    if case.department_id and department_roles:
        people = list(
            StaffUser.select()
            .where(
                StaffUser.active
                & (StaffUser.department == case.department_id)
                & StaffUser.role.in_(sorted(department_roles))
            )
            .order_by(StaffUser.id)
        )
        if people:
            return people
    return list(
        StaffUser.select()
        .where(StaffUser.active & (StaffUser.role == "liaison"))
        .order_by(StaffUser.id)
    )


@dataclass
class Reminders:
    cases: int = 0
    notices: int = 0


def remind_deadlines(today: date, overrides=None) -> Reminders:
    """Tell staff of the cases whose deadline is today or the next working day (a daily job,
    ``flask --app portal notices deadlines``); running it twice a day tells no one twice."""
    horizon = add_workdays(today, 1, overrides)
    result = Reminders()
    states = [(d, s) for d, states in cs.CLOCK_STATES.items() for s in states]
    clause = None
    for direction, state in states:
        part = (ProxyCase.direction == direction) & (ProxyCase.state == state)
        clause = part if clause is None else clause | part
    query = (
        ProxyCase.select()
        .where(clause & (ProxyCase.deadline >= today) & (ProxyCase.deadline <= horizon))
        .order_by(ProxyCase.deadline, ProxyCase.id)
    )
    with write_tx():
        for case in query:
            left = workdays_left(today, case.deadline, overrides)
            when = "今天" if left <= 0 else "下一个工作日"
            item = _item_name(case.item)
            result.cases += 1
            for person in _deadline_recipients(case):
                notice = notify(
                    ("staff", person.id),
                    f"办件即将到期：{case.case_no}",
                    f"“{item}”办件 {case.case_no}（{cs.label(case.direction, case.state)}）"
                    f"的办理期限是{when}（{case.deadline:%Y-%m-%d}），请及时办理。",
                    f"/staff/board/case/{case.id}",
                    f"deadline:{case.id}:{case.deadline.isoformat()}:{today.isoformat()}",
                )
                result.notices += notice is not None
        if result.notices:
            audit.record(
                "system",
                "notice.deadlines",
                "notice",
                "",
                on=today.isoformat(),
                cases=result.cases,
                notices=result.notices,
            )
    return result


# --- certificates and money ---------------------------------------------------------------


def certificate_issued(certificate: Certificate) -> Notice | None:
    """A certificate was issued to a depositor (the holder, or the borrower of its loan)."""
    depositor = certificate.depositor
    if depositor is None and certificate.loan_id:
        depositor = certificate.loan.depositor
    if depositor is None or certificate.kind not in CERTIFICATE_NAMES:
        return None
    name = CERTIFICATE_NAMES[certificate.kind]
    return _tell_depositor(
        depositor,
        f"证明已出具：{name}",
        f"您的{name}（编号 {certificate.number}）已出具，可在“证明”中查看和下载。",
        f"/me/certificates/{certificate.id}",
        f"certificate:{certificate.id}",
        f"您的{name}已出具，编号{certificate.number}，可登录网上大厅下载。",
    )


def payout_confirmed(payout: Payout) -> Notice | None:
    """Money was paid (``services.payouts.confirm``, in its transaction)."""
    depositor = payout.account.depositor
    name = PAYOUT_NAMES.get(payout.kind, "住房公积金业务")
    amount = f"{payout.amount:,.2f}"
    if payout.kind == "loan_offset":
        body = f"您的{name}已办结，使用住房公积金 {amount} 元，贷款已结清。"
        text = f"您的{name}已办结，贷款已结清。"
        loan_id = payout.detail.get("loan_id")
        link = f"/me/loans/{loan_id}/payoff/{payout.id}" if loan_id else "/me/loans"
    else:
        card = mask_bank_card(payout.bank_card) if payout.bank_card else ""
        tail = f"尾号 {payout.bank_card[-4:]} 的银行卡" if payout.bank_card else "您的银行卡"
        body = f"您的{name} {amount} 元已转入 {card or '您的银行卡'}。"
        text = f"您的{name}{amount}元已转入{tail}。"
        link = (
            f"/me/retirement/receipt/{payout.id}" if payout.kind == "retirement" else "/me/deposits"
        )
    return _tell_depositor(
        depositor, f"资金已到账：{name}", body, link, f"payout:{payout.id}", text
    )


# --- reading ------------------------------------------------------------------------------


def _mine(recipient: Recipient):
    kind, rid = recipient
    return (Notice.recipient_kind == kind) & (Notice.recipient_id == rid)


# the header's bell on every page: built once (issue 10)
_UNREAD = Prepared(
    lambda kind, rid: Notice.select(fn.COUNT(Notice.id)).where(
        (Notice.recipient_kind == kind) & (Notice.recipient_id == rid) & Notice.read_at.is_null()
    ),
    2,
)


def unread_count(recipient: Recipient) -> int:
    kind, rid = recipient
    return _UNREAD.scalar(kind, rid) or 0


@dataclass
class Page:
    notices: list[Notice]
    page: int
    pages: int
    total: int
    unread: int
    only_unread: bool


def page(recipient: Recipient, number: int = 1, only_unread: bool = False) -> Page:
    query = Notice.select().where(_mine(recipient))
    if only_unread:
        query = query.where(Notice.read_at.is_null())
    total = query.count()
    pages = max(1, -(-total // PAGE_SIZE))
    number = min(max(1, number), pages)
    rows = list(
        query.order_by(Notice.created_at.desc(), Notice.id.desc()).paginate(number, PAGE_SIZE)
    )
    return Page(rows, number, pages, total, unread_count(recipient), only_unread)


def get(recipient: Recipient, notice_id: int) -> Notice:
    notice = Notice.get_or_none((Notice.id == notice_id) & _mine(recipient))
    if notice is None:
        raise NotFound(notice_id)
    return notice


def mark_read(recipient: Recipient, notice_id: int) -> Notice:
    """Mark one of this person's notices read (someone else's: NotFound)."""
    with write_tx():
        notice = get(recipient, notice_id)
        if notice.read_at is None:
            Notice.update(read_at=utcnow()).where(
                (Notice.id == notice.id) & Notice.read_at.is_null()
            ).execute()
    return Notice.get_by_id(notice.id)


def mark_all_read(recipient: Recipient) -> int:
    with write_tx():
        return (
            Notice.update(read_at=utcnow())
            .where(_mine(recipient) & Notice.read_at.is_null())
            .execute()
        )


def safe_link(notice: Notice) -> str:
    """The notice's link when it is a same-site path (never an open redirect)."""
    link = notice.link or ""
    if link.startswith("/") and not link.startswith("//") and "\\" not in link:
        return link
    return ""
