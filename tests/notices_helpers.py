"""Helpers for the notification, rating and job tests (tests/test_notices*.py,
tests/test_ratings*.py, tests/test_jobs*.py)."""

from __future__ import annotations

from decimal import Decimal

from portal.models import (
    Account,
    Depositor,
    EmployerOperator,
    Notice,
    Payout,
    ProxyCase,
    SmsMessage,
    StaffUser,
)
from portal.rules import casestates as cs
from tests.board_helpers import HX, make_case, soup, staff  # noqa: F401 - re-exported

OTHER_ID = "110105198001010016"  # the board helpers' fictional applicant


def depositor_case(depositor: Depositor, state: str, direction: str = cs.INBOUND, **fields):
    """A case of this depositor's (inbound: processed here; the depositor is linked)."""
    values = dict(
        depositor=depositor,
        applicant_name=depositor.name,
        applicant_id_no=depositor.resident_id,
        applicant_phone=depositor.phone,
        assignee="handler" if direction == cs.INBOUND and state != "received" else None,
    )
    if direction == cs.INBOUND and state == "received":
        values["dept"] = None
    values.update(fields)
    return make_case(direction, state, **values)


def counter_case(state: str, phone: str = "13912345678", **fields) -> ProxyCase:
    """An outbound case: another center's depositor who applied at our counter."""
    return make_case(cs.OUTBOUND, state, applicant_phone=phone, **fields)


def notices_of(kind: str, rid: int) -> list[Notice]:
    return list(
        Notice.select()
        .where((Notice.recipient_kind == kind) & (Notice.recipient_id == rid))
        .order_by(Notice.id)
    )


def sms_to(phone: str) -> list[str]:
    return [
        m.body for m in SmsMessage.select().where(SmsMessage.phone == phone).order_by(SmsMessage.id)
    ]


def operators_of(employer_id: int) -> list[EmployerOperator]:
    return list(
        EmployerOperator.select().where(
            (EmployerOperator.employer == employer_id) & EmployerOperator.active
        )
    )


def pending_payout(depositor: Depositor, kind: str = "retirement", amount="1234.56") -> Payout:
    account = Account.get(Account.depositor == depositor)
    return Payout.create(
        account=account,
        kind=kind,
        amount=Decimal(amount),
        idempotency_key=f"test-{kind}-{depositor.id}-{amount}",
        status="pending",
        bank_card=depositor.bank_card or "6217000000000000017",
        requested_by=f"depositor:{depositor.id}",
        detail={
            "on": "2026-11-25",
            "balance": amount,
            "interest": "0.00",
            "interest_since": "2026-06-30",
            "bank_name": "中国建设银行",
        },
    )


def handler_of(code: str) -> list[StaffUser]:
    from portal.models import Department

    return list(
        StaffUser.select()
        .join(Department)
        .where((StaffUser.role == "handler") & (Department.code == code))
    )
