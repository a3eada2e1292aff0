"""Helpers for the processing, settlement and reconciliation tests (issue 7)."""

from __future__ import annotations

import itertools
import time
from datetime import date, datetime, timedelta
from decimal import Decimal

import pyotp
import pytest
from bs4 import BeautifulSoup

from portal import items
from portal.models import (
    Account,
    Center,
    Department,
    Depositor,
    Loan,
    ProxyCase,
    StaffUser,
)
from portal.rules.casestates import INBOUND
from portal.rules.workdays import add_workdays
from portal.services import processing
from tests.conftest import TODAY

HX = {"HX-Request": "true"}
CENTER = "阿拉善盟住房公积金管理中心"
_seq = itertools.count(1)


def soup(response) -> BeautifulSoup:
    return BeautifulSoup(response.get_data(as_text=True), "html.parser")


def staff(username: str) -> StaffUser:
    return StaffUser.get(StaffUser.username == username)


def verify_url(code: str) -> str:
    return f"http://portal.test/verify/{code}"


def department(code: str) -> Department:
    return Department.get(Department.code == code)


def depositors(dept: str = "AZQ", *, exclude=(), with_loan: bool | None = False):
    """Demo depositors of a department with a usable account and a card changed long ago."""
    query = (
        Depositor.select()
        .join(Account)
        .where(
            (Depositor.department == department(dept).id)
            & (Account.status == "正常")
            & (Account.balance > Decimal("1000.00"))
            & Depositor.bank_card.is_null(False)
            & (Depositor.bank_card_changed_at < datetime(2021, 1, 1))
            & Depositor.id.not_in([d.id for d in exclude] or [0])
        )
        .order_by(Depositor.id)
    )
    people = list(query)
    if with_loan is not None:
        people = [
            p
            for p in people
            if Loan.select().where((Loan.depositor == p) | (Loan.co_borrower == p)).exists()
            == with_loan
        ]
    return people


def account_of(depositor: Depositor) -> Account:
    return Account.get(Account.depositor == depositor)


def inbound(
    item: str,
    depositor: Depositor | None,
    *,
    state: str = "processing",
    assignee: str | None = "handler",
    dept: str = "AZQ",
    application: dict | None = None,
    prefix: str = "PR",
) -> ProxyCase:
    """An inbound case of ours in 办理中 (rolled back with the test unless committed)."""
    n = next(_seq)
    center = Center.select().where(~Center.is_self).order_by(Center.id).first()
    start = TODAY - timedelta(days=1)
    return ProxyCase.create(
        case_no=f"{prefix}{int(time.time() * 1000) % 10**8:08d}{n:04d}",
        receipt_no=f"{prefix}R{int(time.time() * 1000) % 10**8:08d}{n:04d}",
        item=item,
        direction=INBOUND,
        state=state,
        center=center,
        depositor=depositor,
        applicant_name=depositor.name if depositor else "示例单位经办人",
        applicant_id_no=depositor.resident_id if depositor else "110105198001010016",
        applicant_phone=depositor.phone if depositor else "13800138000",
        application={"item": item, **(application or {})},
        checklist={m.code: True for m in items.get(item).materials},
        department=department(dept),
        assignee=staff(assignee) if assignee else None,
        clock_start=start,
        deadline=add_workdays(start, 3),
    )


def purchase(**overrides) -> processing.PurchaseInput:
    values = dict(
        property_no="蒙(2026)阿拉善左旗不动产权第0012345号",
        property_address="阿拉善左旗巴彦浩特镇王府街 8 号 3-201",
        purchase_date=TODAY - timedelta(days=40),
        price=Decimal("300000.00"),
        card_source="file",
    )
    values.update(overrides)
    return processing.PurchaseInput(**values)


def prepare_and_approve(case: ProxyCase, data=None, preparer="handler", approver="handler3"):
    record = processing.prepare_purchase(staff(preparer), case.id, data or purchase(), TODAY)
    return processing.approve(staff(approver), record.id, record.version, TODAY, CENTER, verify_url)


def step_code(user: StaffUser, ahead: int = 1) -> str:
    """A TOTP code of a later step than the login's (what the step-up must use)."""
    totp = pyotp.TOTP(user.totp_secret)
    return totp.generate_otp(totp.timecode(time.time()) + ahead)


def wrong_code(user: StaffUser) -> str:
    totp = pyotp.TOTP(user.totp_secret)
    now = totp.timecode(time.time())
    valid = {totp.generate_otp(s) for s in (now - 1, now, now + 1)}
    return next(c for c in (f"{i:06d}" for i in range(0, 10**6, 7919)) if c not in valid)


def settled_loan(exclude=()) -> Loan:
    """A settled loan of a demo depositor who can log in, with no certificate request yet."""
    taken = {x.depositor_id for x in exclude}
    person = next(
        d
        for d in Depositor.select()
        .where(Depositor.password_hash.is_null(False) & Depositor.id.not_in(list(taken) or [0]))
        .order_by(Depositor.id.desc())
    )
    n = next(_seq)
    disbursed = date(2019, 3, 12)
    return Loan.create(
        contract_no=f"ALSJQ{person.id:05d}{n:03d}",
        loan_account_no=f"1529JQ{person.id:06d}{n:03d}",
        depositor=person,
        amount=Decimal("260000.00"),
        term_months=120,
        annual_rate=Decimal("0.0325"),
        method="annuity",
        disbursed_on=disbursed,
        first_due_on=date(2019, 4, 12),
        outstanding=Decimal("0.00"),
        status="settled",
        settled_on=date(2026, 9, 20),
        settled_kind="early",
        property_address="阿拉善左旗巴彦浩特镇安德街 12 号小区 3-502",
        property_cert_no="蒙(2019)阿拉善左旗不动产证明第1234567号",
        lending_bank="中国建设银行",
    )


def utc(day: date, hour: int = 4) -> datetime:
    return datetime(day.year, day.month, day.day, hour, 0)


def later(user: StaffUser) -> StaffUser:
    """As if the next TOTP step had come: forget the last step used (a test cannot wait 30 s)."""
    StaffUser.update(totp_last_step=0).where(StaffUser.id == user.id).execute()
    return StaffUser.get_by_id(user.id)


SECOND_HANDLER = ("handler3", "钱慧", "HANDLERTHREEDEMOSECRETHANDLERTH")


def ensure_second_handler() -> StaffUser:
    """A second handler of 阿拉善左旗管理部 (the demo has one per department): the approver."""
    from portal.services.identity import hash_password

    username, name, secret = SECOND_HANDLER
    user = StaffUser.get_or_none(StaffUser.username == username)
    if user is None:
        user = StaffUser.create(
            username=username,
            name=name,
            role="handler",
            department=department("AZQ"),
            password_hash=hash_password("Staff2026"),
            totp_secret=secret,
            totp_confirmed=True,
        )
    return user


@pytest.fixture
def second_handler():
    return ensure_second_handler()
