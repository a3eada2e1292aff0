"""Officials and the loan-settlement certificate (贷款结清证明, DESIGN.md sections 4 and 5).

An official (审批签发) works a queue of ``CertificateRequest`` rows: from inbound cases (a
handler passed the case on), from depositors whose loans were paid off online (the hall's
request), and from requests registered at a counter. Issuing:

* requires the loan to be fully settled — read from the loan record, never typed in;
* requires the official to re-enter their TOTP (step-up; a replayed or wrong code is refused by
  ``services.identity.verify_totp``), and records who issued it;
* makes the PDF once (``services.certificates`` numbers, verification code, storage with its
  SHA-256, masked summary for ``/verify``); downloads read the stored file.

An official can revoke a certificate with a reason (``/verify`` then says 已撤销). Nobody else
can issue or revoke; every issue, refusal and revocation is in the audit log, and the auditor
reads the register of issued certificates.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from peewee import JOIN, fn

from portal.db import locked, write_tx
from portal.documents import Document
from portal.models import (
    Certificate,
    CertificateRequest,
    Depositor,
    Loan,
    LoanRepayment,
    ProxyCase,
    StaffUser,
    utcnow,
)
from portal.rules.ids import mask_resident_id, normalize_resident_id
from portal.services import audit, identity
from portal.services.certificates import (
    KIND_LABELS,
    VerifyUrl,
    _store_new,
    fmt_day,
    format_code,
    mask_name,
    status,
)

ISSUER_ROLES = ("official",)
READ_ROLES = ("official", "auditor")
COUNTER_ROLES = ("official", "clerk", "handler")
SOURCE_LABELS = {"online": "网上申请", "case": "跨省通办办件", "counter": "柜台申请"}
STATUS_LABELS = {"pending": "待签发", "issued": "已签发", "refused": "未予签发"}
SETTLED_LABELS = {"normal": "正常还清", "early": "提前还清"}
MAX_REASON = 500
PAGE = 50


class Refused(Exception):
    """Nothing was changed; ``field`` names the form field the message belongs to."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


class Forbidden(Exception):
    """Only an official may do this (the view answers 403)."""


class NotFound(LookupError):
    """No such request or certificate (the view answers 404)."""


def _actor(user: StaffUser) -> str:
    return f"staff:{user.username}"


def _require(user: StaffUser, roles: tuple[str, ...]) -> None:
    if user.role not in roles:
        raise Forbidden


# --- the queue ----------------------------------------------------------------------------


@dataclass
class RequestRow:
    id: int
    source: str
    source_label: str
    status: str
    status_label: str
    requested_at: object
    borrower: str  # masked name
    borrower_id: str  # masked
    contract_no: str
    loan_status: str
    settled_on: date | None
    case_no: str
    certificate_id: int | None
    certificate_number: str
    decided_by: str
    refused_reason: str


Decider = StaffUser.alias()


def _request_query():
    return (
        CertificateRequest.select(CertificateRequest, Loan, Depositor, ProxyCase, Decider)
        .join(Loan, on=(CertificateRequest.loan == Loan.id))
        .join(Depositor, on=(Loan.depositor == Depositor.id))
        .switch(CertificateRequest)
        .join(ProxyCase, JOIN.LEFT_OUTER, on=(CertificateRequest.case == ProxyCase.id))
        .switch(CertificateRequest)
        .join(Decider, JOIN.LEFT_OUTER, on=(CertificateRequest.decided_by == Decider.id))
    )


def _row(r: CertificateRequest) -> RequestRow:
    loan, person = r.loan, r.loan.depositor
    case = r.case if r.case_id else None
    certificate = Certificate.get_or_none(Certificate.id == r.certificate_id)
    return RequestRow(
        id=r.id,
        source=r.source,
        source_label=SOURCE_LABELS.get(r.source, r.source),
        status=r.status,
        status_label=STATUS_LABELS.get(r.status, r.status),
        requested_at=r.requested_at,
        borrower=mask_name(person.name),
        borrower_id=mask_resident_id(person.resident_id),
        contract_no=loan.contract_no,
        loan_status="已结清" if loan.status == "settled" else "未结清",
        settled_on=loan.settled_on,
        case_no=case.case_no if case else "",
        certificate_id=certificate.id if certificate else None,
        certificate_number=certificate.number if certificate else "",
        decided_by=r.decided_by.name if r.decided_by_id else "",
        refused_reason=r.refused_reason or "",
    )


@dataclass
class Queue:
    status: str
    rows: list[RequestRow]
    counts: dict[str, int]


def queue(user: StaffUser, state: str = "pending") -> Queue:
    """The requests in one status (pending first in, first out; decided ones newest first)."""
    _require(user, READ_ROLES)
    if state not in STATUS_LABELS:
        state = "pending"
    query = _request_query().where(CertificateRequest.status == state)
    if state == "pending":
        query = query.order_by(CertificateRequest.requested_at, CertificateRequest.id)
    else:
        query = query.order_by(CertificateRequest.decided_at.desc(), CertificateRequest.id.desc())
    counts = {s: 0 for s in STATUS_LABELS}
    for s, n in (
        CertificateRequest.select(CertificateRequest.status, fn.COUNT(CertificateRequest.id))
        .group_by(CertificateRequest.status)
        .tuples()
    ):
        counts[s] = n
    return Queue(state, [_row(r) for r in query.limit(PAGE)], counts)


def pending_count() -> int:
    return CertificateRequest.select().where(CertificateRequest.status == "pending").count()


@dataclass
class LoanFacts:
    loan: Loan
    borrower: Depositor
    method_label: str
    settled_label: str
    last_repayment: date | None
    settled: bool
    reasons: list[str]


def loan_facts(loan: Loan) -> LoanFacts:
    """What the official checks before issuing: settlement from the loan record itself."""
    borrower = Depositor.get_by_id(loan.depositor_id)
    last = (
        LoanRepayment.select(LoanRepayment.paid_on)
        .where(LoanRepayment.loan == loan)
        .order_by(LoanRepayment.paid_on.desc())
        .scalar()
    )
    reasons = []
    if loan.status != "settled":
        reasons.append(f"贷款尚未结清（剩余本金 {loan.outstanding:,.2f} 元），不能签发结清证明")
    elif loan.outstanding != 0:
        reasons.append(f"贷款记录显示仍有剩余本金 {loan.outstanding:,.2f} 元，不能签发结清证明")
    elif loan.settled_on is None:
        reasons.append("贷款记录缺少结清日期，请先核实贷款台账")
    from portal.services.loans import METHOD_LABELS

    return LoanFacts(
        loan=loan,
        borrower=borrower,
        method_label=METHOD_LABELS.get(loan.method, loan.method),
        settled_label=SETTLED_LABELS.get(loan.settled_kind or "", "—"),
        last_repayment=last,
        settled=not reasons,
        reasons=reasons,
    )


@dataclass
class RequestDetail:
    row: RequestRow
    request: CertificateRequest
    facts: LoanFacts
    certificate: Certificate | None


def request_detail(user: StaffUser, request_id: int) -> RequestDetail:
    _require(user, READ_ROLES)
    r = _request_query().where(CertificateRequest.id == request_id).first()
    if r is None:
        raise NotFound(request_id)
    certificate = Certificate.get_or_none(Certificate.id == r.certificate_id)
    return RequestDetail(_row(r), r, loan_facts(Loan.get_by_id(r.loan_id)), certificate)


# --- issuing ------------------------------------------------------------------------------


def settlement_pdf_rows(loan: Loan, borrower: Depositor) -> list[tuple[str, str]]:
    return [
        ("借款人姓名", borrower.name),
        ("身份证号码", borrower.resident_id),
        ("借款合同编号", loan.contract_no),
        ("贷款账号", loan.loan_account_no),
        ("贷款金额（元）", f"{loan.amount:,.2f}"),
        ("贷款期限", f"{loan.term_months} 个月"),
        ("放款日期", fmt_day(loan.disbursed_on)),
        ("结清日期", fmt_day(loan.settled_on)),
        ("结清方式", SETTLED_LABELS.get(loan.settled_kind or "", "—")),
        ("抵押房屋坐落", loan.property_address or "—"),
        ("不动产登记证明号", loan.property_cert_no or "—"),
        ("贷款银行", loan.lending_bank or "—"),
    ]


def _mask_contract(number: str) -> str:
    if len(number) <= 7:
        return number
    return number[:4] + "*" * (len(number) - 7) + number[-3:]


def _build(loan: Loan, borrower: Depositor, today: date, verify_url: VerifyUrl, center_name: str):
    def build(number: str, code: str) -> tuple[bytes, dict]:
        doc = Document(center_name, KIND_LABELS["settlement"], number=number, issued_on=today)
        doc.paragraph(
            f"\u3000\u3000兹证明借款人{borrower.name}（身份证号码：{borrower.resident_id}）在我中心"
            f"办理的住房公积金个人住房贷款（借款合同编号：{loan.contract_no}），本息已全部还清，"
            "借款合同项下的债务已结清。"
        )
        doc.fields(settlement_pdf_rows(loan, borrower), label_width=46)
        doc.paragraph(
            "\u3000\u3000本证明可用于向不动产登记机构申请办理抵押权注销登记（解除抵押）。"
            "涂改无效；请扫描二维码或输入核验码核验真伪。"
        )
        doc.qr(verify_url(code), f"核验码：{format_code(code)}\n证明编号：{number}")
        doc.seal(on=today)
        summary = {
            "facts": [
                ["借款人", mask_name(borrower.name)],
                ["身份证号码", mask_resident_id(borrower.resident_id)],
                ["借款合同编号", _mask_contract(loan.contract_no)],
                ["贷款金额（元）", f"{loan.amount:,.2f}"],
                ["结清日期", fmt_day(loan.settled_on)],
                ["结清方式", SETTLED_LABELS.get(loan.settled_kind or "", "—")],
                ["贷款银行", loan.lending_bank or "—"],
            ]
        }
        return doc.output(), summary

    return build


def _step_up(user: StaffUser, code: str) -> None:
    """Re-enter the TOTP (its own committed write: a used step cannot be replayed)."""
    try:
        identity.verify_totp(user, code)
    except identity.CodeFailed as exc:
        audit.record(_actor(user), "staff.step_up_failed", "staff", user.id)
        raise Refused(str(exc), "code") from None


def issue(
    user: StaffUser,
    request_id: int,
    totp_code: str,
    today: date,
    verify_url: VerifyUrl,
    center_name: str,
) -> Certificate:
    """签发: an official, with a fresh TOTP, for a settled loan; generated once."""
    _require(user, ISSUER_ROLES)
    request = CertificateRequest.get_or_none(CertificateRequest.id == request_id)
    if request is None:
        raise NotFound(request_id)
    if request.status != "pending":
        raise Refused(f"该申请{STATUS_LABELS.get(request.status, request.status)}，不能再次签发")
    facts = loan_facts(Loan.get_by_id(request.loan_id))
    if not facts.settled:
        raise Refused(facts.reasons[0])
    _step_up(user, totp_code)
    with write_tx():
        request = locked(
            CertificateRequest.select().where(CertificateRequest.id == request_id)
        ).get()
        if request.status != "pending":  # another official issued it meanwhile
            raise Refused(
                f"该申请{STATUS_LABELS.get(request.status, request.status)}，不能再次签发"
            )
        loan = locked(Loan.select().where(Loan.id == request.loan_id)).get()
        facts = loan_facts(loan)
        if not facts.settled:
            raise Refused(facts.reasons[0])
        certificate = _store_new(
            "settlement",
            "JQ",
            today,
            _build(loan, facts.borrower, today, verify_url, center_name),
            depositor=facts.borrower,
            loan=loan,
            case=request.case_id,
            addressee="",
            issued_by=user,
        )
        won = (
            CertificateRequest.update(
                status="issued", certificate=certificate, decided_by=user, decided_at=utcnow()
            )
            .where((CertificateRequest.id == request.id) & (CertificateRequest.status == "pending"))
            .execute()
        )
        if not won:  # cannot happen under the lock
            raise Refused("该申请已被处理，请刷新")
        audit.record(
            _actor(user),
            "certificate.issued",
            "certificate",
            certificate.id,
            kind="settlement",
            number=certificate.number,
            loan=loan.contract_no,
            request=request.id,
            source=request.source,
            step_up="totp",
        )
        if request.case_id:
            _attach_to_case(request, certificate, user)
        from portal.services import notices  # issue 11: tell the borrower (inbox and SMS)

        notices.certificate_issued(certificate)
    return certificate


def _attach_to_case(request: CertificateRequest, certificate: Certificate, user: StaffUser):
    """A case's certificate becomes its result; the handler then finishes the case."""
    from portal.models import CaseEvent
    from portal.services.processing import attach_certificate

    case = ProxyCase.get_by_id(request.case_id)
    attach_certificate(case, user, certificate)
    CaseEvent.create(
        case=case,
        actor=user,
        actor_label=user.name,
        action="certificate",
        data={"number": certificate.number},
    )
    ProxyCase.update(updated_at=utcnow()).where(ProxyCase.id == case.id).execute()


def refuse(user: StaffUser, request_id: int, reason: str) -> CertificateRequest:
    """未予签发, with the reason (e.g. the loan is not settled on the record)."""
    _require(user, ISSUER_ROLES)
    text = (reason or "").strip()
    if not text:
        raise Refused("请填写未予签发的原因", "reason")
    if len(text) > MAX_REASON:
        raise Refused(f"原因不超过 {MAX_REASON} 字", "reason")
    with write_tx():
        request = locked(
            CertificateRequest.select().where(CertificateRequest.id == request_id)
        ).first()
        if request is None:
            raise NotFound(request_id)
        if request.status != "pending":
            raise Refused(f"该申请{STATUS_LABELS.get(request.status, request.status)}")
        CertificateRequest.update(
            status="refused", refused_reason=text, decided_by=user, decided_at=utcnow()
        ).where(CertificateRequest.id == request.id).execute()
        audit.record(
            _actor(user),
            "settlement_certificate.refused",
            "loan",
            request.loan_id,
            request=request.id,
            reason=text,
        )
    return CertificateRequest.get_by_id(request_id)


# --- the register of issued certificates, and revocation ----------------------------------


@dataclass
class CertificateRow:
    certificate: Certificate
    state: str
    state_label: str
    borrower: str
    borrower_id: str
    contract_no: str
    issued_by: str
    revoked_by: str
    case_no: str


Issuer = StaffUser.alias()
Revoker = StaffUser.alias()


def _certificate_query():
    return (
        Certificate.select(Certificate, Loan, Depositor, Issuer, Revoker, ProxyCase)
        .join(Loan, on=(Certificate.loan == Loan.id))
        .join(Depositor, on=(Loan.depositor == Depositor.id))
        .switch(Certificate)
        .join(Issuer, JOIN.LEFT_OUTER, on=(Certificate.issued_by == Issuer.id))
        .switch(Certificate)
        .join(Revoker, JOIN.LEFT_OUTER, on=(Certificate.revoked_by == Revoker.id))
        .switch(Certificate)
        .join(ProxyCase, JOIN.LEFT_OUTER, on=(Certificate.case == ProxyCase.id))
        .where(Certificate.kind == "settlement")
    )


def _cert_row(c: Certificate, today: date) -> CertificateRow:
    from portal.services.certificates import STATE_LABELS

    state = status(c, today)
    return CertificateRow(
        certificate=c,
        state=state,
        state_label=STATE_LABELS[state],
        borrower=mask_name(c.loan.depositor.name),
        borrower_id=mask_resident_id(c.loan.depositor.resident_id),
        contract_no=c.loan.contract_no,
        issued_by=c.issued_by.name if c.issued_by_id else "",
        revoked_by=c.revoked_by.name if c.revoked_by_id else "",
        case_no=c.case.case_no if c.case_id else "",
    )


def register(user: StaffUser, today: date, revoked_only: bool = False) -> list[CertificateRow]:
    """Every settlement certificate issued (newest first): officials and the auditor."""
    _require(user, READ_ROLES)
    query = _certificate_query()
    if revoked_only:
        query = query.where(Certificate.revoked_at.is_null(False))
    rows = query.order_by(Certificate.issued_at.desc(), Certificate.id.desc()).limit(200)
    return [_cert_row(c, today) for c in rows]


def certificate_row(user: StaffUser, certificate_id: int, today: date) -> CertificateRow:
    _require(user, READ_ROLES)
    c = _certificate_query().where(Certificate.id == certificate_id).first()
    if c is None:
        raise NotFound(certificate_id)
    return _cert_row(c, today)


def certificate_pdf(user: StaffUser, certificate_id: int) -> tuple[Certificate, bytes]:
    """The stored PDF (full ID: the holder's document), for the issuing officials only."""
    from portal.services.certificates import pdf_bytes

    _require(user, ISSUER_ROLES)
    c = Certificate.get_or_none(
        (Certificate.id == certificate_id) & (Certificate.kind == "settlement")
    )
    if c is None or not c.storage_key:
        raise NotFound(certificate_id)
    with write_tx():
        audit.record(_actor(user), "certificate.downloaded", "certificate", c.id, number=c.number)
    return c, pdf_bytes(c)


def revoke(user: StaffUser, certificate_id: int, reason: str, totp_code: str) -> Certificate:
    """撤销 with a reason and a fresh TOTP; ``/verify`` then says 已撤销."""
    _require(user, ISSUER_ROLES)
    text = (reason or "").strip()
    if not text:
        raise Refused("请填写撤销原因", "reason")
    if len(text) > MAX_REASON:
        raise Refused(f"撤销原因不超过 {MAX_REASON} 字", "reason")
    c = Certificate.get_or_none(
        (Certificate.id == certificate_id) & (Certificate.kind == "settlement")
    )
    if c is None:
        raise NotFound(certificate_id)
    if c.revoked_at is not None:
        raise Refused("该证明已撤销")
    _step_up(user, totp_code)
    with write_tx():
        won = (
            Certificate.update(revoked_at=utcnow(), revoked_reason=text, revoked_by=user)
            .where((Certificate.id == c.id) & Certificate.revoked_at.is_null())
            .execute()
        )
        if not won:
            raise Refused("该证明已撤销")
        audit.record(
            _actor(user),
            "certificate.revoked",
            "certificate",
            c.id,
            kind="settlement",
            number=c.number,
            reason=text,
        )
    return Certificate.get_by_id(c.id)


# --- a request registered at a counter ----------------------------------------------------


def request_at_counter(user: StaffUser, contract_no: str, resident_id: str) -> CertificateRequest:
    """The borrower asks at one of our counters: contract number and the borrower's ID must
    match the loan record; the loan must be settled; one open request per loan."""
    _require(user, COUNTER_ROLES)
    number = "".join((contract_no or "").split()).upper()
    rid = normalize_resident_id(resident_id)
    loan = Loan.get_or_none(Loan.contract_no == number)
    if loan is None or Depositor.get_by_id(loan.depositor_id).resident_id != rid:
        raise Refused("借款合同编号与借款人身份证号码不匹配，请核对", "contract_no")
    if loan.status != "settled":
        raise Refused(
            f"贷款尚未结清（剩余本金 {loan.outstanding:,.2f} 元），结清后方可申请", "contract_no"
        )
    with write_tx():
        locked(Loan.select().where(Loan.id == loan.id)).get()
        open_request = (
            CertificateRequest.select()
            .where(
                (CertificateRequest.loan == loan)
                & CertificateRequest.status.in_(("pending", "issued"))
            )
            .order_by(CertificateRequest.id.desc())
            .first()
        )
        if open_request is not None and not (
            open_request.status == "issued"
            and open_request.certificate_id
            and Certificate.get_by_id(open_request.certificate_id).revoked_at is not None
        ):
            raise Refused(
                f"该贷款已有结清证明申请（{STATUS_LABELS[open_request.status]}，"
                f"来源：{SOURCE_LABELS.get(open_request.source, open_request.source)}），"
                "请勿重复申请",
                "contract_no",
            )
        request = CertificateRequest.create(
            loan=loan, source="counter", status="pending", requested_by=_actor(user)
        )
        audit.record(
            _actor(user),
            "settlement_certificate.requested",
            "loan",
            loan.id,
            request=request.id,
            source="counter",
        )
    return request
