"""Helpers for the security tests (issue 9): a logged-in client per role, a small world of
objects that every route's URL can point at, and the outcome class of a response.

The twelve roles of the access table:

* ``anonymous``; ``depositor`` (owns the world's depositor objects) and ``other_depositor``;
* ``operator`` (primary operator of the world's employer) and ``other_operator`` (another
  employer's operator);
* staff: ``clerk``, ``liaison``, ``handler`` (阿拉善左旗管理部, the world's department),
  ``other_handler`` (阿拉善右旗管理部), ``official``, ``admin``, ``auditor``.
"""

from __future__ import annotations

import itertools
import secrets
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from urllib.parse import urlsplit

import pyotp
from flask import url_for

from portal import items
from portal.models import (
    Account,
    Attachment,
    CasePayout,
    Center,
    Certificate,
    CertificateRequest,
    Department,
    Depositor,
    ECode,
    ECodeLookup,
    Employer,
    EmployerOperator,
    HolidayOverride,
    Loan,
    OutboxMessage,
    Payout,
    PlatformMessage,
    ProxyCase,
    StaffUser,
    utcnow,
)
from portal.rules.casestates import INBOUND, OUTBOUND
from portal.rules.workdays import add_workdays
from portal.services import materials
from tests.conftest import TODAY, last_code, login_depositor, login_operator, totp_code

CENTER_NAME = "阿拉善盟住房公积金管理中心"
ROLES = (
    "anonymous",
    "depositor",
    "other_depositor",
    "operator",
    "other_operator",
    "clerk",
    "liaison",
    "handler",
    "other_handler",
    "official",
    "admin",
    "auditor",
)
STAFF_ROLES = ("clerk", "liaison", "handler", "other_handler", "official", "admin", "auditor")
STAFF_USERNAME = {
    "clerk": "clerk",
    "liaison": "liaison",
    "handler": "handler",
    "other_handler": "handler2",
    "official": "official",
    "admin": "admin",
    "auditor": "auditor",
}
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def _tiny_pdf() -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=12)
    pdf.cell(text="security test")
    return bytes(pdf.output())


PDF = _tiny_pdf()
_seq = itertools.count(1)


def verify_url(code: str) -> str:
    return f"http://portal.test/verify/{code}"


def staff(username: str) -> StaffUser:
    return StaffUser.get(StaffUser.username == username)


def fresh_totp(user: StaffUser) -> str:
    """A TOTP code the login accepts even when an earlier step was used in this test."""
    StaffUser.update(totp_last_step=0).where(StaffUser.id == user.id).execute()
    return totp_code(user.totp_secret)


def login_staff_user(client, username: str, password: str = "Staff2026"):
    user = staff(username)
    r = client.post("/staff/login", data={"username": username, "password": password})
    assert r.status_code == 303, r.get_data(as_text=True)
    r = client.post("/staff/login/totp", data={"code": fresh_totp(user)})
    assert r.status_code == 303, r.get_data(as_text=True)
    return r


# --- the world ----------------------------------------------------------------------------


@dataclass
class World:
    depositor: Depositor
    other_depositor: Depositor
    operator: EmployerOperator
    colleague: EmployerOperator  # the operator's employer's second operator
    other_operator: EmployerOperator
    loan: Loan
    usage_certificate: Certificate
    retirement_payout: Payout
    payoff_payout: Payout
    own_case: ProxyCase  # an inbound case of the depositor (hall "我的办件")
    ecode: ECode
    employer_account: Account
    employer_certificate: Certificate
    inbound_case: ProxyCase  # 阿拉善左旗, 办理中, the handler's
    outbound_case: ProxyCase  # accepted at 阿拉善左旗's window
    material: Attachment
    result: Attachment
    cert_request: CertificateRequest
    settlement_certificate: Certificate
    case_payout: CasePayout
    outbox: OutboxMessage
    package: PlatformMessage
    lookup: ECodeLookup
    holiday: HolidayOverride
    peer: Center
    target_staff: StaffUser
    extra: dict = field(default_factory=dict)


def _login_pair():
    """Two demo depositors who can log in: the first with an active loan."""
    with_loan = (
        Depositor.select()
        .join(Account)
        .switch(Depositor)
        .join(Loan, on=(Loan.depositor == Depositor.id))
        .where(
            Depositor.password_hash.is_null(False)
            & (Account.status == "正常")
            & (Loan.status == "active")
            & Depositor.bank_card.is_null(False)
        )
        .order_by(Depositor.id)
        .first()
    )
    other = (
        Depositor.select()
        .join(Account)
        .where(Depositor.password_hash.is_null(False) & (Depositor.id != with_loan.id))
        .order_by(Depositor.id.desc())
        .first()
    )
    return with_loan, other


def _employers():
    """An employer with two active operators (the first primary), and another employer."""
    for employer in Employer.select().where(Employer.status == "正常").order_by(Employer.id):
        ops = list(
            EmployerOperator.select()
            .where((EmployerOperator.employer == employer) & EmployerOperator.active)
            .order_by(EmployerOperator.id)
        )
        if len(ops) >= 2 and ops[0].is_primary:
            other = (
                EmployerOperator.select()
                .join(Employer)
                .where((Employer.id != employer.id) & (Employer.status == "正常"))
                .where(EmployerOperator.is_primary)
                .order_by(EmployerOperator.id.desc())
                .first()
            )
            return ops[0], ops[1], other
    raise AssertionError("the demo has no employer with two operators")


def _case(direction, state, depositor=None, dept="AZQ", assignee=None, item=None, **extra):
    n = next(_seq)
    peer = Center.select().where(~Center.is_self).order_by(Center.id).first()
    item = item or ("purchase_withdrawal" if direction == INBOUND else "settlement_certificate")
    start = TODAY - timedelta(days=1)
    application = {"item": item, "note": "安全测试"}
    if item == "purchase_withdrawal":
        application.update(contract_no=f"SEC{n:05d}", price="680000.00")
    return ProxyCase.create(
        case_no=f"SEC{int(time.time() * 1000) % 10**8:08d}{n:04d}",
        receipt_no=f"SECR{int(time.time() * 1000) % 10**8:08d}{n:04d}",
        item=item,
        direction=direction,
        state=state,
        center=peer,
        depositor=depositor,
        applicant_name=depositor.name if depositor else "安全测试",
        applicant_id_no=depositor.resident_id if depositor else "110105198001010016",
        applicant_phone=depositor.phone if depositor else "13800138000",
        application=application,
        checklist={m.code: True for m in items.get(item).materials},
        department=Department.get(Department.code == dept),
        assignee=staff(assignee) if assignee else None,
        accepted_by=staff("clerk") if direction == OUTBOUND else None,
        clock_start=start,
        deadline=add_workdays(start, 7 if direction == OUTBOUND else 3),
        **extra,
    )


def _purchase_depositor(exclude):
    """A 阿拉善左旗 depositor with money, a card changed long ago and no loan."""
    query = (
        Depositor.select()
        .join(Account)
        .where(
            (Depositor.department == Department.get(Department.code == "AZQ").id)
            & (Account.status == "正常")
            & (Account.balance > Decimal("1000.00"))
            & Depositor.bank_card.is_null(False)
            & (Depositor.bank_card_changed_at < datetime(2021, 1, 1))
            & Depositor.id.not_in([d.id for d in exclude])
        )
        .order_by(Depositor.id)
    )
    for person in query:
        if not Loan.select().where((Loan.depositor == person) | (Loan.co_borrower == person)):
            return person
    raise AssertionError("no depositor for a purchase withdrawal")


def build_world() -> World:
    from portal.platform import files
    from portal.services import certificates, ecode, employer_certificates, processing
    from portal.services import settlement as settlement_svc

    depositor, other = _login_pair()
    operator, colleague, other_operator = _employers()
    loan = (
        Loan.select()
        .where((Loan.depositor == depositor) & (Loan.status == "active"))
        .order_by(Loan.id)
        .first()
    )
    account = Account.get(Account.depositor == depositor)
    usage = certificates.issue_usage(
        depositor, "北京住房公积金管理中心", TODAY, verify_url, CENTER_NAME
    )
    retirement = Payout.create(
        account=account,
        kind="retirement",
        amount=Decimal("100.00"),
        idempotency_key=f"sec:retire:{secrets.token_hex(8)}",
        status="confirmed",
        bank_card=depositor.bank_card,
        bank_ref="DEVSECURITYTEST",
        requested_by=f"depositor:{depositor.id}",
        confirmed_at=utcnow(),
        detail={
            "on": TODAY.isoformat(),
            "balance": "90.00",
            "interest": "10.00",
            "interest_since": date(TODAY.year, 6, 30).isoformat(),
            "basis": "recorded",
            "bank_name": depositor.bank_name,
        },
    )
    payoff = Payout.create(
        account=account,
        kind="loan_offset",
        amount=Decimal("100.00"),
        idempotency_key=f"sec:payoff:{secrets.token_hex(8)}",
        status="confirmed",
        bank_card=depositor.bank_card,
        requested_by=f"depositor:{depositor.id}",
        confirmed_at=utcnow(),
        detail={
            "loan_id": loan.id,
            "contract_no": loan.contract_no,
            "on": TODAY.isoformat(),
            "principal": "100.00",
            "interest": "0.00",
            "total": "100.00",
            "offset": "100.00",
            "rest": "0.00",
        },
    )
    own_case = _case(INBOUND, "processing", depositor, assignee="handler")
    code = ecode.issue(depositor, f"depositor:{depositor.id}", TODAY)
    employer_account = (
        Account.select()
        .where(Account.employer == operator.employer_id)
        .order_by(Account.id)
        .first()
    )
    employer_certificate = employer_certificates.issue(
        operator, "中国建设银行阿拉善分行", TODAY, verify_url, CENTER_NAME
    )

    buyer = _purchase_depositor([depositor, other])
    inbound = _case(INBOUND, "processing", buyer, assignee="handler")
    outbound = _case(OUTBOUND, "accepted")
    material = materials.store(outbound, PNG, "scan.png", uploaded_by=staff("clerk"))
    result = materials.store(inbound, PDF, "result.pdf", kind="result")
    case_payout = processing.prepare_purchase(
        staff("handler"),
        inbound.id,
        processing.PurchaseInput(
            property_no=f"蒙(2026)阿拉善左旗不动产权第{next(_seq):07d}号",
            property_address="阿拉善左旗巴彦浩特镇王府街 8 号 3-201",
            purchase_date=TODAY - timedelta(days=40),
            price=Decimal("300000.00"),
            card_source="file",
        ),
        TODAY,
    )

    settled = Loan.select().where(Loan.status == "settled").order_by(
        Loan.id
    ).first() or _settled_loan(other)
    cert_request = CertificateRequest.create(loan=settled, source="online", requested_by="test")
    issued_request = CertificateRequest.create(loan=settled, source="online", requested_by="test")
    official = staff("official")
    totp = pyotp.TOTP(official.totp_secret)
    step_code = totp.generate_otp(totp.timecode(time.time()) + 1)
    settlement_certificate = settlement_svc.issue(
        official, issued_request.id, step_code, TODAY, verify_url, CENTER_NAME
    )
    StaffUser.update(totp_last_step=0).where(StaffUser.id == official.id).execute()

    peer = Center.get(Center.code == "110000")
    message = PlatformMessage.create(
        message_id=str(secrets.token_hex(16)),
        direction="out",
        kind="case.send",
        sender="152900",
        recipient=peer.code,
        case=outbound,
    )
    outbox = OutboxMessage.create(
        message_id=message.message_id,
        platform_message=message,
        center=peer,
        case=outbound,
        kind="case.send",
        status="failed",
    )
    files.export_case(outbound, actor="staff:liaison")
    package = (
        PlatformMessage.select()
        .where((PlatformMessage.case == outbound) & (PlatformMessage.storage_key != ""))
        .order_by(PlatformMessage.id.desc())
        .first()
    )
    lookup = ECodeLookup.create(
        staff=staff("clerk"),
        center=peer,
        code_hint="1100****5678",
        message_id=secrets.token_hex(16),
        outcome="refused",
        reason="业务码已过期",
    )
    holiday = HolidayOverride.create(day=date(2026, 12, 31), is_workday=False, note="安全测试")
    ayq = Department.get(Department.code == "AYQ")
    ayq_person = (
        Depositor.select().where(Depositor.department == ayq.id).order_by(Depositor.id).first()
    )
    extra = {
        "ayq_case": _case(INBOUND, "processing", ayq_person, dept="AYQ", assignee="handler2"),
    }
    extra.update(_issue11_objects(depositor, operator, own_case))
    return World(
        depositor=depositor,
        other_depositor=other,
        operator=operator,
        colleague=colleague,
        other_operator=other_operator,
        loan=loan,
        usage_certificate=usage,
        retirement_payout=retirement,
        payoff_payout=payoff,
        own_case=own_case,
        ecode=code,
        employer_account=employer_account,
        employer_certificate=employer_certificate,
        inbound_case=inbound,
        outbound_case=outbound,
        material=material,
        result=result,
        cert_request=cert_request,
        settlement_certificate=settlement_certificate,
        case_payout=case_payout,
        outbox=outbox,
        package=package,
        lookup=lookup,
        holiday=holiday,
        peer=peer,
        target_staff=staff("clerk"),
        extra=extra,
    )


def _issue11_objects(depositor, operator, own_case) -> dict:
    """Inbox notices (one per side), a rating of 阿拉善左旗 and a finished job of the admin."""
    from openpyxl import Workbook

    from portal.models import Job, Notice, Rating
    from portal.storage import get_storage

    notices = {
        kind: Notice.create(recipient_kind=kind, recipient_id=rid, title="安全测试通知")
        for kind, rid in (
            ("depositor", depositor.id),
            ("operator", operator.id),
            ("staff", staff("handler").id),
        )
    }
    rating = Rating.create(
        subject_kind="case",
        subject_id=own_case.id,
        rater_kind="depositor",
        rater_id=depositor.id,
        rater_name="安*",
        channel="hall",
        item=own_case.item,
        title="安全测试评价",
        department=Department.get(Department.code == "AZQ"),
        score=1,
        followup_state="待回访",
    )
    book = Workbook()
    book.active.append(["统计项", "数值"])
    buffer = __import__("io").BytesIO()
    book.save(buffer)
    key, _digest = get_storage().put(buffer.getvalue(), "jobs", ".xlsx")
    job = Job.create(
        kind="dashboard_export",
        status="done",
        progress=100,
        result_key=key,
        result_name="dashboard.xlsx",
        created_by=staff("admin"),
        finished_at=utcnow(),
    )
    return {
        "notice_depositor": notices["depositor"],
        "notice_operator": notices["operator"],
        "notice_staff": notices["staff"],
        "rating": rating,
        "job": job,
    }


def _settled_loan(person: Depositor) -> Loan:
    n = next(_seq)
    return Loan.create(
        contract_no=f"SECJQ{person.id:05d}{n:03d}",
        loan_account_no=f"SECJQ{person.id:06d}{n:03d}",
        depositor=person,
        amount=Decimal("260000.00"),
        term_months=120,
        annual_rate=Decimal("0.0325"),
        method="annuity",
        disbursed_on=date(2019, 3, 12),
        first_due_on=date(2019, 4, 12),
        outstanding=Decimal("0.00"),
        status="settled",
        settled_on=date(2026, 9, 20),
        settled_kind="early",
    )


def login(client, role: str, world: World) -> None:
    """Log ``client`` in as ``role`` (anonymous: nothing)."""
    if role == "anonymous":
        return
    if role == "depositor":
        login_depositor(client, world.depositor)
    elif role == "other_depositor":
        login_depositor(client, world.other_depositor)
    elif role == "operator":
        login_operator(client, world.operator)
    elif role == "other_operator":
        login_operator(client, world.other_operator)
    else:
        login_staff_user(client, STAFF_USERNAME[role])


# --- outcome classes ----------------------------------------------------------------------

ALLOW, LOGIN, DENY, HIDE = "allowed", "login", "403", "404"
LOGIN_PATHS = ("/login", "/employer/login", "/staff/login")


def outcome(response) -> str:
    """The outcome class of a response; anything else (500, 405 ...) is reported raw."""
    status = response.status_code
    if status == 401:
        return LOGIN
    if status in (301, 302, 303, 307, 308):
        path = urlsplit(response.headers.get("Location", "")).path
        return LOGIN if path in LOGIN_PATHS else ALLOW
    if status == 403:
        return DENY
    if status == 404:
        return HIDE
    if status >= 500 or status == 405:
        return f"HTTP {status}"
    return ALLOW


__all__ = [
    "ALLOW",
    "DENY",
    "HIDE",
    "LOGIN",
    "ROLES",
    "STAFF_ROLES",
    "World",
    "build_world",
    "last_code",
    "login",
    "outcome",
    "url_for",
]


# --- databases beside the test database (servers, restores) -------------------------------


def side_database(url: str, suffix: str, fresh: bool = False) -> str:
    """A PostgreSQL database named after the test database plus ``_<suffix>`` on the same
    server, created when missing (``fresh``: dropped and created again). Returns its URL."""
    from urllib.parse import urlsplit, urlunsplit

    from portal.db import make_database

    parts = urlsplit(url.replace("psycopg3://", "postgresql://", 1))
    name = f"{parts.path.lstrip('/')}_{suffix}"
    admin = make_database(urlunsplit(parts._replace(path="/postgres")))
    admin.connect()
    try:
        query = "SELECT 1 FROM pg_database WHERE datname = %s"
        exists = admin.execute_sql(query, (name,)).fetchone() is not None
        if fresh and exists:
            admin.execute_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
            exists = False
        if not exists:
            admin.execute_sql(f'CREATE DATABASE "{name}"')
    finally:
        admin.close()
    return urlunsplit(parts._replace(path=f"/{name}"))
