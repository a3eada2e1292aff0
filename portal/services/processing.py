"""Processing inbound proxy cases for real (DESIGN.md section 4, inbound step 3; issue 7).

A handler of the depositor's management department carries out the item of a case in 办理中
with the same services and rules the online hall uses, attaches the result (Attachment kind
``result``, stored through ``portal.storage``) and moves the case to 已办结 through
``services.cases.move_case`` (so history, audit and deadlines stay right):

* **购房提取** (home-purchase withdrawal): the handler enters the purchase; the portal computes
  the amount that may be withdrawn (:func:`purchase_allowance`) and records a
  :class:`~portal.models.CasePayout` waiting for a second handler of the department (复核).
  The approval pays through the exactly-once flow of ``services.payouts`` (idempotency key
  ``case:<record id>``), so approving twice, or concurrently, pays once.
* The proxy **retirement withdrawal** and **early repayment** are payouts too and go through the
  same approval; their amounts come from ``services.payouts`` / ``services.loans``.
* **单位登记开户**: ``services.employers.register_employer``.
* **贷款全部还清证明**: a ``CertificateRequest`` for an official (``services.settlement``); the
  issued certificate is attached to the case, then the handler finishes it.
* **query / usage certificate / changes**: the same documents and effects as the online hall.

Refusals carry every reason that applies, in Chinese; a handler can also close a case as
不予办理 with those reasons (a notice PDF is attached and fed back).

Decision (issue 7): an outstanding HPF loan does NOT block a home-purchase withdrawal. The rule
that blocks withdrawals while a loan is outstanding is the retirement withdrawal's (DESIGN
section 3); the purchase rules are balance, price less what the household already withdrew for
the property, and the configured window after the purchase date.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation

from peewee import JOIN

from portal import items
from portal.db import db, is_postgres, locked, write_tx
from portal.documents import Document
from portal.models import (
    Account,
    Attachment,
    CaseEvent,
    CasePayout,
    Certificate,
    CertificateRequest,
    Depositor,
    DepositRecord,
    Employer,
    Loan,
    Payout,
    ProxyCase,
    StaffUser,
    utcnow,
)
from portal.rules.casestates import INBOUND
from portal.rules.dates import add_months
from portal.rules.ids import (
    is_valid_bank_card,
    is_valid_resident_id,
    mask_bank_card,
    mask_phone,
    mask_resident_id,
    normalize_resident_id,
)
from portal.rules.money import ZERO, quantize
from portal.services import audit, bank, cases, settings

PROCESSING = "processing"
DONE = "done"
OPEN_STATUSES = ("pending_approval", "approved", "paid")
STATUS_LABELS = {
    "pending_approval": "待复核",
    "approved": "已复核，支付中",
    "paid": "已支付",
    "refused": "复核退回",
    "failed": "支付未成功",
}
KIND_LABELS = {"purchase": "购房提取", "retirement": "正常退休提取", "loan_offset": "提前还清贷款"}
SOURCE_LABELS = {"online": "网上申请", "counter": "柜台申请", "case": "跨省通办办件"}
PAYOUT_ITEMS = {
    "purchase_withdrawal": "purchase",
    "retirement_withdrawal": "retirement",
    "early_repayment": "loan_offset",
}
WINDOW_KEY = "purchase_withdrawal_months"
CO_OWNERS_KEY = "purchase_withdrawal_co_owners"
DEFAULT_WINDOW_MONTHS = 12
MAX_CO_OWNERS = 5
MAX_REASON = 500
CARD_SOURCES = {"file": "职工登记的提取银行卡", "application": "申请表填写的收款银行卡"}
_PROPERTY_LOCK = 152900_0007  # PostgreSQL advisory-lock namespace: one property at a time

VerifyUrl = Callable[[str], str]


class Refused(Exception):
    """Nothing was changed. ``reasons`` lists every reason that applies (Chinese, for the
    handler and the feedback); ``field`` names the form field a single reason belongs to."""

    def __init__(self, message: str | list[str], field: str | None = None):
        reasons = [message] if isinstance(message, str) else list(message)
        super().__init__("；".join(reasons))
        self.reasons = reasons
        self.field = field

    @property
    def message(self) -> str:
        return str(self)


class NotFound(LookupError):
    """No such case or record this user may see (the view answers 404)."""


def _actor(user: StaffUser) -> str:
    return f"staff:{user.username}"


def fmt_day(d: date | None) -> str:
    return f"{d.year}年{d.month}月{d.day}日" if d else "—"


def yuan(amount: Decimal | None) -> str:
    return "—" if amount is None else f"{amount:,.2f}"


# --- the pure rule: how much a home-purchase withdrawal may be ------------------------------


@dataclass(frozen=True)
class Allowance:
    """What :func:`purchase_allowance` decided; ``reasons`` empty means allowed."""

    allowed: Decimal  # the most that may be withdrawn now
    room: Decimal  # price less what was already withdrawn for the property
    window_end: date
    amount: Decimal  # what would be paid (the request, or the allowed maximum)
    reasons: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.reasons


def purchase_allowance(
    *,
    balance: Decimal,
    price: Decimal,
    withdrawn: Decimal,
    purchase_date: date,
    today: date,
    window_months: int,
    requested: Decimal | None = None,
) -> Allowance:
    """购房提取额度: not more than the balance, nor than the price less everything already
    withdrawn for the same property by the household, and only within ``window_months`` after
    the purchase date (the last day included). Pure: no database, no Flask."""
    reasons: list[str] = []
    window_end = add_months(purchase_date, window_months)
    room = max(ZERO, quantize(price - withdrawn))
    allowed = max(ZERO, min(quantize(balance), room))
    if price <= 0:
        reasons.append("房屋总价须大于 0")
    if purchase_date > today:
        reasons.append(f"购房日期（{fmt_day(purchase_date)}）不能晚于今天")
    elif today > window_end:
        reasons.append(
            f"购房提取须在购房之日起 {window_months} 个月内申请"
            f"（购房日期 {fmt_day(purchase_date)}，申请期限至 {fmt_day(window_end)}），已超过期限"
        )
    if balance <= 0:
        reasons.append("职工账户余额为零，无可提取金额")
    if price > 0 and room <= 0:
        reasons.append(
            f"该房产已累计提取 {yuan(withdrawn)} 元，已达到房屋总价 {yuan(price)} 元，不能再提取"
        )
    amount = allowed if requested is None else quantize(requested)
    if requested is not None and not reasons:
        if amount <= 0:
            reasons.append("提取金额须大于 0")
        elif amount > allowed:
            reasons.append(
                f"申请提取金额 {yuan(amount)} 元超过可提取额度 {yuan(allowed)} 元"
                f"（不超过账户余额 {yuan(quantize(balance))} 元，"
                f"且不超过房屋总价减去已提取金额后的 {yuan(room)} 元）"
            )
    return Allowance(allowed, room, window_end, amount, tuple(reasons))


def normalize_property_no(text: str | None) -> str:
    return re.sub(r"\s+", "", text or "").upper()


def normalize_address(text: str | None) -> str:
    return " ".join((text or "").split())


# --- who may process which case -----------------------------------------------------------


def case_for(user: StaffUser, case_id: int) -> ProxyCase:
    """An inbound case of the handler's department (anything else: NotFound)."""
    if user.role != "handler" or not user.department_id:
        raise NotFound(case_id)
    try:
        case = cases.get_case(user, case_id)
    except cases.NotFound:
        raise NotFound(case_id) from None
    if case.direction != INBOUND or case.department_id != user.department_id:
        raise NotFound(case_id)
    return case


def acting_refusal(user: StaffUser, case: ProxyCase) -> str | None:
    """Why this handler cannot carry out the case now, or None."""
    if case.state != PROCESSING:
        return f"办件处于“{cases.cs.label(case.direction, case.state)}”，只有“办理中”的办件可以办理"
    if case.assignee_id and case.assignee_id != user.id:
        return f"该办件由{case.assignee.name}经办，只有其经办人可以办理"
    return None


def _check_acting(user: StaffUser, case: ProxyCase) -> None:
    reason = acting_refusal(user, case)
    if reason:
        raise Refused(reason)


def _locked_case(user: StaffUser, case_id: int) -> ProxyCase:
    case_for(user, case_id)
    case = locked(ProxyCase.select().where(ProxyCase.id == case_id)).get()
    _check_acting(user, case)
    return case


def _depositor(case: ProxyCase) -> Depositor:
    if not case.depositor_id:
        raise Refused("该办件未关联本中心缴存职工，无法办理；请核对后退回或不予办理")
    return Depositor.get_by_id(case.depositor_id)


def _event(case: ProxyCase, user: StaffUser, action: str, **data) -> None:
    CaseEvent.create(case=case, actor=user, actor_label=user.name, action=action, data=data)


# --- result documents ---------------------------------------------------------------------


def _attach_pdf(case: ProxyCase, user: StaffUser, data: bytes, filename: str) -> Attachment:
    from portal.services.materials import store

    return store(
        case,
        data,
        filename,
        material="",
        uploaded_by=user,
        kind="result",
        content_type="application/pdf",
    )


def attach_certificate(case: ProxyCase, user: StaffUser, certificate: Certificate) -> Attachment:
    """A stored certificate as a result of the case (the same stored file, not a copy)."""
    existing = Attachment.get_or_none(
        (Attachment.case == case)
        & (Attachment.kind == "result")
        & (Attachment.storage_key == certificate.storage_key)
    )
    if existing is not None:
        return existing
    from portal.storage import get_storage

    size = len(get_storage().get(certificate.storage_key, certificate.sha256 or None))
    return Attachment.create(
        case=case,
        kind="result",
        material="",
        filename=f"{certificate.number}.pdf",
        content_type="application/pdf",
        size=size,
        sha256=certificate.sha256,
        storage_key=certificate.storage_key,
        uploaded_by=user,
    )


@dataclass
class ResultFile:
    id: int
    filename: str
    size: int
    sha256: str
    uploaded_by: str
    created_at: object


def results(case: ProxyCase) -> list[ResultFile]:
    rows = (
        Attachment.select(Attachment, StaffUser)
        .join(StaffUser, JOIN.LEFT_OUTER, on=(Attachment.uploaded_by == StaffUser.id))
        .where((Attachment.case == case) & (Attachment.kind == "result"))
        .order_by(Attachment.id)
    )
    return [
        ResultFile(
            a.id,
            a.filename,
            a.size,
            a.sha256,
            a.uploaded_by.name if a.uploaded_by_id else "系统",
            a.created_at,
        )
        for a in rows
    ]


def result_file(user: StaffUser, case_id: int, attachment_id: int) -> tuple[Attachment, bytes]:
    """A result document of a case this staff member may see (the board's visibility rule)."""
    from portal.storage import get_storage

    try:
        case = cases.get_case(user, case_id)
    except cases.NotFound:
        raise NotFound(case_id) from None
    attachment = Attachment.get_or_none(
        (Attachment.id == attachment_id) & (Attachment.case == case) & (Attachment.kind == "result")
    )
    if attachment is None:
        raise NotFound(attachment_id)
    return attachment, get_storage().get(attachment.storage_key, attachment.sha256)


def _doc(center_name: str, title: str, case: ProxyCase, today: date):
    return Document(center_name, title, number=case.case_no, issued_on=today)


def _case_rows(case: ProxyCase) -> list[tuple[str, str]]:
    return [
        ("办件编号", case.case_no),
        ("受理回执编号", case.receipt_no),
        ("办理事项", items.get(case.item).name),
        ("受理地公积金中心", case.center.name),
        ("申请人", case.applicant_name),
        ("身份证号码", mask_resident_id(case.applicant_id_no)),
    ]


def _finish(
    user: StaffUser,
    case: ProxyCase,
    outcome: str,
    note: str,
    today: date,
    overrides=None,
) -> ProxyCase:
    """Move the case to 已办结 with its result, through the boards' one move (inside the
    caller's transaction, so the attachments and the move commit together)."""
    note = note[:MAX_REASON]
    try:
        return cases.move_case(
            user,
            case.id,
            DONE,
            case.version,
            {"outcome": outcome, "note": note},
            today=today,
            overrides=overrides,
        )
    except cases.NotFound:
        raise NotFound(case.id) from None
    except cases.Refused as exc:
        raise Refused(exc.message) from None


# --- reading: the processing panel --------------------------------------------------------


@dataclass
class PriorWithdrawal:
    who: str  # masked name (本人 / 配偶 / 共有人)
    relation: str
    on: date | None
    amount: Decimal
    status: str
    case_no: str


@dataclass
class PayoutView:
    record: CasePayout
    kind_label: str
    status_label: str
    case_no: str
    applicant_name: str
    depositor_name: str
    depositor_id_masked: str
    card_masked: str
    prepared_by: str
    approved_by: str
    refused_by: str
    own: bool  # prepared by the viewer
    may_approve: bool
    approve_refusal: str
    detail_rows: list[tuple[str, str]]
    priors: list[PriorWithdrawal] = field(default_factory=list)


def _staff_names(ids) -> dict[int, str]:
    ids = [i for i in ids if i]
    if not ids:
        return {}
    return {s.id: s.name for s in StaffUser.select().where(StaffUser.id.in_(ids))}


def _approve_refusal(user: StaffUser, record: CasePayout, case: ProxyCase) -> str:
    if record.status != "pending_approval":
        return f"该笔支付{STATUS_LABELS.get(record.status, record.status)}"
    if user.role != "handler" or case.department_id != user.department_id:
        return "只有该办件所属管理部的其他经办人可以复核"
    if record.prepared_by_id == user.id:
        return "这笔支付由您经办，须由本管理部其他经办人复核（不能复核自己经办的支付）"
    if case.state != PROCESSING:
        return "办件已不在“办理中”，不能复核"
    return ""


def _detail_rows(record: CasePayout) -> list[tuple[str, str]]:
    d = record.detail or {}
    if record.kind == "purchase":
        owners = "、".join(
            f"{o.get('name', '')}（{mask_resident_id(o.get('id_no', ''))}）"
            for o in record.co_owners or []
        )
        rows = [
            ("购房合同或不动产权证书编号", record.property_no),
            ("房屋坐落", record.property_address),
            ("购房日期", fmt_day(record.purchase_date)),
            ("房屋总价（元）", yuan(record.price)),
            (
                "配偶",
                f"{record.spouse_name}（{mask_resident_id(record.spouse_id_no)}）"
                if record.spouse_id_no
                else "无",
            ),
            ("其他共有人", owners or "无"),
            (
                "其他共有人提取额合并计算",
                "是" if d.get("co_owners_counted") else "否（仅合并配偶）",
            ),
            ("申请期限至", d.get("window_end_text", "")),
            ("账户余额（元）", d.get("balance", "")),
            ("该房产已提取（元）", d.get("withdrawn", "")),
            ("房价可提取余额（元）", d.get("room", "")),
            ("可提取额度（元）", d.get("allowed", "")),
        ]
    elif record.kind == "retirement":
        rows = [
            ("账户余额（元）", d.get("balance", "")),
            ("销户结息（元）", f"{d.get('interest', '')}（自{d.get('interest_since', '')}起）"),
            ("认定依据", "已登记退休" if d.get("basis") == "recorded" else "达到法定退休年龄"),
            ("提取后账户", "销户"),
        ]
    else:
        rows = [
            ("借款合同编号", d.get("contract_no", "")),
            ("提前还清本金（元）", d.get("principal", "")),
            ("利息（元）", d.get("interest", "")),
            ("应还合计（元）", d.get("total", "")),
            ("公积金冲还（元）", d.get("offset", "")),
            ("银行卡扣款（元）", d.get("rest", "")),
        ]
    rows.append(("本次金额（元）", yuan(record.amount)))
    return rows


def _priors(record: CasePayout) -> list[PriorWithdrawal]:
    if record.kind != "purchase":
        return []
    depositor = Depositor.get_by_id(record.depositor_id)
    family = _family(
        depositor,
        record.spouse_id_no,
        record.co_owners,
        bool((record.detail or {}).get("co_owners_counted")),
    )
    rows = _prior_rows(record.property_no, record.property_address, family, record.id)
    return [_prior_view(r, family) for r in rows]


def payout_view(user: StaffUser, record: CasePayout) -> PayoutView:
    case = ProxyCase.get_by_id(record.case_id)
    depositor = Depositor.get_by_id(record.depositor_id)
    names = _staff_names((record.prepared_by_id, record.approved_by_id, record.refused_by_id))
    refusal = _approve_refusal(user, record, case)
    return PayoutView(
        record=record,
        kind_label=KIND_LABELS.get(record.kind, record.kind),
        status_label=STATUS_LABELS.get(record.status, record.status),
        case_no=case.case_no,
        applicant_name=case.applicant_name,
        depositor_name=depositor.name,
        depositor_id_masked=mask_resident_id(depositor.resident_id),
        card_masked=(
            f"{record.bank_name} {mask_bank_card(record.bank_card)}".strip()
            if record.bank_card
            else "—"
        ),
        prepared_by=names.get(record.prepared_by_id, ""),
        approved_by=names.get(record.approved_by_id, ""),
        refused_by=names.get(record.refused_by_id, ""),
        own=record.prepared_by_id == user.id,
        may_approve=not refusal,
        approve_refusal=refusal,
        detail_rows=_detail_rows(record),
        priors=_priors(record),
    )


@dataclass
class SettlementState:
    request: CertificateRequest | None
    certificate: Certificate | None
    status_label: str
    loan: Loan | None


@dataclass
class Panel:
    case: ProxyCase
    item: items.Item
    item_code: str
    state_label: str
    refusal: str | None  # why this handler cannot act now (None: may act)
    depositor: Depositor | None
    depositor_id_masked: str
    account: Account | None
    application: list[tuple[str, str]]
    payouts: list[PayoutView]
    open_payout: PayoutView | None
    settlement: SettlementState | None
    results: list[ResultFile]
    loans: list[Loan]
    employer: Employer | None
    finish_ready: bool
    finish_note: str
    app_card_masked: str
    file_card_masked: str

    @property
    def may_act(self) -> bool:
        return self.refusal is None

    @property
    def payout_kind(self) -> str | None:
        return PAYOUT_ITEMS.get(self.item_code)


def panel(user: StaffUser, case_id: int, today: date) -> Panel:
    case = case_for(user, case_id)
    _sync_case_payouts(case)
    item = items.get(case.item)
    depositor = (
        Depositor.get_or_none(Depositor.id == case.depositor_id) if case.depositor_id else None
    )
    account = Account.get_or_none(Account.depositor == depositor) if depositor else None
    records = list(
        CasePayout.select().where(CasePayout.case == case).order_by(CasePayout.id.desc())
    )
    views = [payout_view(user, r) for r in records]
    open_view = next((v for v in views if v.record.status in OPEN_STATUSES), None)
    settlement = _settlement_state(case) if case.item == "settlement_certificate" else None
    loans = []
    if depositor is not None and case.item in ("settlement_certificate", "early_repayment"):
        loans = list(
            Loan.select().where(Loan.depositor == depositor).order_by(Loan.disbursed_on.desc())
        )
    employer = Employer.get_or_none(Employer.id == case.employer_id) if case.employer_id else None
    ready, note = _finish_state(case, open_view, settlement, employer)
    application = case.application or {}
    app_card = str(application.get("bank_card") or "")
    return Panel(
        case=case,
        item=item,
        item_code=case.item,
        state_label=cases.cs.label(case.direction, case.state),
        refusal=acting_refusal(user, case),
        depositor=depositor,
        depositor_id_masked=mask_resident_id(depositor.resident_id) if depositor else "",
        account=account,
        application=cases._application_rows(case),
        payouts=views,
        open_payout=open_view,
        settlement=settlement,
        results=results(case),
        loans=loans,
        employer=employer,
        finish_ready=ready,
        finish_note=note,
        app_card_masked=(
            f"{application.get('bank_name', '')} {mask_bank_card(app_card)}".strip()
            if is_valid_bank_card(app_card)
            else ""
        ),
        file_card_masked=(
            f"{depositor.bank_name} {mask_bank_card(depositor.bank_card)}".strip()
            if depositor is not None and depositor.bank_card
            else ""
        ),
    )


def _settlement_state(case: ProxyCase) -> SettlementState:
    request = (
        CertificateRequest.select()
        .where(CertificateRequest.case == case)
        .order_by(CertificateRequest.id.desc())
        .first()
    )
    certificate = None
    loan = None
    if request is not None:
        loan = Loan.get_by_id(request.loan_id)
        if request.certificate_id:
            certificate = Certificate.get_by_id(request.certificate_id)
    label = {
        None: "尚未提交签发",
        "pending": "已提交，待审批签发",
        "issued": "已签发",
        "refused": "未予签发",
    }[request.status if request else None]
    if certificate is not None and certificate.revoked_at is not None:
        label = "已签发，但已被撤销"
    return SettlementState(request, certificate, label, loan)


def _finish_state(
    case: ProxyCase,
    open_view: PayoutView | None,
    settlement: SettlementState | None,
    employer: Employer | None,
) -> tuple[bool, str]:
    if case.item in PAYOUT_ITEMS:
        if open_view is not None and open_view.record.status == "paid":
            return True, _payout_note(open_view.record)
        return False, ""
    if case.item == "settlement_certificate":
        if (
            settlement
            and settlement.certificate is not None
            and settlement.certificate.revoked_at is None
        ):
            return True, f"已开具贷款结清证明，编号 {settlement.certificate.number}"
        return False, ""
    if case.item == "employer_registration" and employer is not None:
        return True, _registration_note(employer)
    return False, ""


# --- the household and the property: what was already withdrawn ----------------------------


@dataclass(frozen=True)
class Person:
    name: str
    id_no: str
    relation: str  # 本人 / 配偶 / 共有人


def _family(
    depositor: Depositor, spouse_id_no: str, co_owners: list[dict], co_owners_counted: bool
) -> dict[str, str]:
    """Resident ID -> relation of the people whose withdrawals for the property count."""
    family = {depositor.resident_id: "本人"}
    if spouse_id_no:
        family[spouse_id_no] = "配偶"
    if co_owners_counted:
        for owner in co_owners or []:
            family.setdefault(owner.get("id_no", ""), "共有人")
    family.pop("", None)
    return family


def _prior_rows(
    property_no: str, property_address: str, family: dict[str, str], exclude_id: int | None
):
    same_property = CasePayout.property_no == property_no
    if property_address:
        same_property |= CasePayout.property_address == property_address
    query = (
        CasePayout.select(CasePayout, Depositor, ProxyCase)
        .join(Depositor, on=(CasePayout.depositor == Depositor.id))
        .switch(CasePayout)
        .join(ProxyCase, on=(CasePayout.case == ProxyCase.id))
        .where(
            (CasePayout.kind == "purchase")
            & CasePayout.status.in_(OPEN_STATUSES)
            & same_property
            & Depositor.resident_id.in_(list(family) or ["-"])
        )
        .order_by(CasePayout.id)
    )
    if exclude_id is not None:
        query = query.where(CasePayout.id != exclude_id)
    return list(query)


def _prior_view(row: CasePayout, family: dict[str, str]) -> PriorWithdrawal:
    from portal.services.certificates import mask_name

    person = row.depositor
    on = None
    if row.status == "paid" and row.approved_at:
        from portal.services.payouts import local_date

        on = local_date(row.approved_at)
    return PriorWithdrawal(
        who=mask_name(person.name),
        relation=family.get(person.resident_id, ""),
        on=on,
        amount=row.amount,
        status=STATUS_LABELS.get(row.status, row.status),
        case_no=row.case.case_no,
    )


def _lock_property(*keys: str) -> None:
    """On PostgreSQL, one household's withdrawals for one property are computed one at a time
    (SQLite's write transaction already serialises every writer)."""
    if not is_postgres():
        return
    for key in sorted({k for k in keys if k}):
        digest = zlib.crc32(key.encode()) - 2**31
        db.execute_sql("SELECT pg_advisory_xact_lock(%s, %s)", (_PROPERTY_LOCK % 2**31, digest))


# --- preparing a home-purchase withdrawal -------------------------------------------------


@dataclass
class PurchaseInput:
    property_no: str
    property_address: str
    purchase_date: date
    price: Decimal
    spouse_name: str = ""
    spouse_id_no: str = ""
    co_owners: list[tuple[str, str]] = field(default_factory=list)
    amount: Decimal | None = None  # None: the allowed maximum
    card_source: str = "file"


def parse_co_owners(text: str | None) -> list[tuple[str, str]]:
    """Lines of "姓名 身份证号码" (a comma or spaces between); Refused names the bad line."""
    owners = []
    for n, line in enumerate((text or "").splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        parts = [p for p in re.split(r"[\s,，、]+", line) if p]
        if len(parts) != 2:
            raise Refused(f"第 {n} 行请按“姓名 身份证号码”填写一位共有人", "co_owners")
        name, id_no = parts[0], normalize_resident_id(parts[1])
        if not is_valid_resident_id(id_no):
            raise Refused(f"第 {n} 行的身份证号码格式不正确", "co_owners")
        owners.append((name[:40], id_no))
    if len(owners) > MAX_CO_OWNERS:
        raise Refused(f"其他共有人最多填写 {MAX_CO_OWNERS} 位", "co_owners")
    return owners


@dataclass
class PurchaseQuote:
    allowance: Allowance | None
    reasons: list[str]
    balance: Decimal
    withdrawn: Decimal
    priors: list[PriorWithdrawal]
    window_months: int
    co_owners_counted: bool
    card: str | None
    bank_name: str

    @property
    def ok(self) -> bool:
        return not self.reasons


def _window_months(today: date) -> int:
    raw = settings.value_on(WINDOW_KEY, today, str(DEFAULT_WINDOW_MONTHS))
    try:
        return max(1, int(raw))
    except (TypeError, ValueError):
        return DEFAULT_WINDOW_MONTHS


def _co_owners_counted(today: date) -> bool:
    return (settings.value_on(CO_OWNERS_KEY, today, "0") or "0").strip() in ("1", "true", "True")


def _account_reasons(account: Account | None) -> list[str]:
    if account is None:
        return ["未查询到该职工的住房公积金个人账户"]
    if account.status == "销户":
        return ["职工住房公积金账户已销户，不能办理提取"]
    if account.status == "冻结":
        return ["职工住房公积金账户已冻结，暂不能办理提取，请核实冻结原因"]
    return []


def _payee(
    depositor: Depositor, case: ProxyCase, source: str, today: date
) -> tuple[str | None, str, list[str]]:
    """(card, bank name, reasons) for the chosen card source."""
    from portal.services.payouts import CARD_WAIT_DAYS, local_date

    if source == "application":
        data = case.application or {}
        card = re.sub(r"\s+", "", str(data.get("bank_card") or ""))
        if not is_valid_bank_card(card):
            return None, "", ["申请表未填写有效的收款银行卡号"]
        try:
            bank.bank().verify_card(card, depositor.name, depositor.resident_id)
        except bank.CardRefused as exc:
            return None, "", [f"申请表填写的收款银行卡未通过核验：{exc}"]
        return card, str(data.get("bank_name") or ""), []
    if source != "file":
        return None, "", ["请选择收款银行卡"]
    if not depositor.bank_card:
        return None, "", ["职工尚未登记提取银行卡，请选择申请表填写的收款银行卡"]
    if depositor.bank_card_changed_at is not None:
        changed_on = local_date(depositor.bank_card_changed_at)
        usable = changed_on + timedelta(days=CARD_WAIT_DAYS)
        if today < usable:
            return (
                None,
                "",
                [
                    f"职工的提取银行卡于 {fmt_day(changed_on)} 变更，变更 {CARD_WAIT_DAYS} 日后"
                    f"方可用于提取（{fmt_day(usable)} 起）"
                ],
            )
    return depositor.bank_card, depositor.bank_name, []


def _purchase_quote(
    case: ProxyCase,
    depositor: Depositor,
    account: Account | None,
    data: PurchaseInput,
    today: date,
    exclude_id: int | None = None,
    check_card: bool = True,
) -> PurchaseQuote:
    reasons = _account_reasons(account)
    balance = account.balance if account is not None else ZERO
    counted = _co_owners_counted(today)
    owners = [{"name": n, "id_no": i} for n, i in data.co_owners]
    family = _family(depositor, data.spouse_id_no, owners, counted)
    rows = _prior_rows(data.property_no, data.property_address, family, exclude_id)
    withdrawn = sum((r.amount for r in rows), ZERO)
    window = _window_months(today)
    allowance = purchase_allowance(
        balance=balance,
        price=data.price,
        withdrawn=withdrawn,
        purchase_date=data.purchase_date,
        today=today,
        window_months=window,
        requested=data.amount,
    )
    reasons += [r for r in allowance.reasons if not (account is None and "余额为零" in r)]
    card, bank_name = None, ""
    if check_card:
        card, bank_name, card_reasons = _payee(depositor, case, data.card_source, today)
        reasons += card_reasons
    return PurchaseQuote(
        allowance=allowance,
        reasons=reasons,
        balance=balance,
        withdrawn=withdrawn,
        priors=[_prior_view(r, family) for r in rows],
        window_months=window,
        co_owners_counted=counted,
        card=card,
        bank_name=bank_name,
    )


def _check_purchase_input(depositor: Depositor, data: PurchaseInput) -> PurchaseInput:
    data.property_no = normalize_property_no(data.property_no)
    data.property_address = normalize_address(data.property_address)
    if not 4 <= len(data.property_no) <= 60:
        raise Refused("请填写 4–60 位的购房合同或不动产权证书编号", "property_no")
    if not 4 <= len(data.property_address) <= 200:
        raise Refused("请填写 4–200 个字的房屋坐落", "property_address")
    if data.price is None or data.price <= 0:
        raise Refused("房屋总价须大于 0", "price")
    data.spouse_name = (data.spouse_name or "").strip()[:40]
    data.spouse_id_no = normalize_resident_id(data.spouse_id_no or "")
    if data.spouse_id_no or data.spouse_name:
        if not data.spouse_name:
            raise Refused("请填写配偶姓名", "spouse_name")
        if not is_valid_resident_id(data.spouse_id_no):
            raise Refused("配偶身份证号码格式不正确", "spouse_id_no")
        if data.spouse_id_no == depositor.resident_id:
            raise Refused("配偶不能是申请人本人", "spouse_id_no")
    seen = {depositor.resident_id, data.spouse_id_no}
    for _name, id_no in data.co_owners:
        if id_no in seen:
            raise Refused("共有人重复，或与申请人、配偶重复", "co_owners")
        seen.add(id_no)
    return data


def quote_purchase(
    user: StaffUser, case_id: int, data: PurchaseInput, today: date
) -> PurchaseQuote:
    """核算 without changing anything (the form's preview)."""
    case = case_for(user, case_id)
    _check_acting(user, case)
    if case.item != "purchase_withdrawal":
        raise Refused("该办件不是购房提取")
    depositor = _depositor(case)
    data = _check_purchase_input(depositor, data)
    account = Account.get_or_none(Account.depositor == depositor)
    return _purchase_quote(case, depositor, account, data, today)


def _open_record(case: ProxyCase) -> CasePayout | None:
    return (
        CasePayout.select()
        .where((CasePayout.case == case) & CasePayout.status.in_(OPEN_STATUSES))
        .first()
    )


def prepare_purchase(user: StaffUser, case_id: int, data: PurchaseInput, today: date) -> CasePayout:
    """经办: compute and record the withdrawal for a second handler's approval."""
    with write_tx():
        case = _locked_case(user, case_id)
        if case.item != "purchase_withdrawal":
            raise Refused("该办件不是购房提取")
        depositor = _depositor(case)
        data = _check_purchase_input(depositor, data)
        _lock_property(data.property_no, data.property_address)
        account = locked(Account.select().where(Account.depositor == depositor)).first()
        if _open_record(case) is not None:
            raise Refused("该办件已有一笔提取在复核或已支付，不能重复经办")
        quote = _purchase_quote(case, depositor, account, data, today)
        if not quote.ok:
            raise Refused(quote.reasons)
        a = quote.allowance
        record = CasePayout.create(
            case=case,
            kind="purchase",
            depositor=depositor,
            account=account,
            amount=a.amount,
            status="pending_approval",
            property_no=data.property_no,
            property_address=data.property_address,
            purchase_date=data.purchase_date,
            price=quantize(data.price),
            spouse_name=data.spouse_name,
            spouse_id_no=data.spouse_id_no,
            co_owners=[{"name": n, "id_no": i} for n, i in data.co_owners],
            detail={
                "on": today.isoformat(),
                "balance": yuan(quote.balance),
                "withdrawn": yuan(quote.withdrawn),
                "room": yuan(a.room),
                "allowed": yuan(a.allowed),
                "window_months": quote.window_months,
                "window_end": a.window_end.isoformat(),
                "window_end_text": fmt_day(a.window_end),
                "co_owners_counted": quote.co_owners_counted,
                "requested": yuan(data.amount) if data.amount is not None else "",
                "card_source": data.card_source,
            },
            bank_card=quote.card,
            bank_name=quote.bank_name,
            prepared_by=user,
        )
        _prepared(user, case, record)
    return record


def _prepared(user: StaffUser, case: ProxyCase, record: CasePayout) -> None:
    _event(
        case,
        user,
        "prepare",
        kind=KIND_LABELS[record.kind],
        amount=yuan(record.amount),
        status=STATUS_LABELS["pending_approval"],
    )
    audit.record(
        _actor(user),
        "case_payout.prepared",
        "case_payout",
        record.id,
        case_no=case.case_no,
        kind=record.kind,
        amount=str(record.amount),
        card=mask_bank_card(record.bank_card) if record.bank_card else "",
    )


# --- preparing the proxy retirement withdrawal and early repayment ------------------------


def retirement_preview(user: StaffUser, case_id: int, today: date):
    """The online hall's retirement quote for the case's depositor (read only)."""
    from portal.services.payouts import retirement_quote

    case = case_for(user, case_id)
    return retirement_quote(_depositor(case), today)


def prepare_retirement(user: StaffUser, case_id: int, card_source: str, today: date) -> CasePayout:
    from portal.services.payouts import retirement_quote

    with write_tx():
        case = _locked_case(user, case_id)
        if case.item != "retirement_withdrawal":
            raise Refused("该办件不是正常退休提取")
        depositor = _depositor(case)
        account = locked(Account.select().where(Account.depositor == depositor)).first()
        if _open_record(case) is not None:
            raise Refused("该办件已有一笔提取在复核或已支付，不能重复经办")
        quote = retirement_quote(depositor, today)
        reasons = [r for r in quote.reasons if "银行卡" not in r]
        card, bank_name, card_reasons = _payee(depositor, case, card_source, today)
        reasons += card_reasons
        if reasons:
            raise Refused(reasons)
        record = CasePayout.create(
            case=case,
            kind="retirement",
            depositor=depositor,
            account=account,
            amount=quote.amount,
            status="pending_approval",
            detail=_retirement_detail(quote, today, bank_name, case),
            bank_card=card,
            bank_name=bank_name,
            prepared_by=user,
        )
        _prepared(user, case, record)
    return record


def _retirement_detail(quote, today: date, bank_name: str, case: ProxyCase) -> dict:
    return {
        "on": today.isoformat(),
        "balance": str(quote.balance),
        "interest": str(quote.interest),
        "interest_since": quote.interest_since.isoformat(),
        "basis": quote.basis,
        "bank_name": bank_name,
        "channel": f"跨省通办（{case.center.name}代收代办）",
    }


def payoff_preview(user: StaffUser, case_id: int, loan_id: int, today: date):
    from portal.services import loans

    case = case_for(user, case_id)
    depositor = _depositor(case)
    try:
        return loans.payoff_plan(depositor, loan_id, today, True)
    except loans.NotFound:
        raise Refused("请选择该职工本人的住房公积金贷款", "loan") from None


def prepare_payoff(
    user: StaffUser, case_id: int, loan_id: int, card_source: str, today: date
) -> CasePayout:
    from portal.services import loans

    with write_tx():
        case = _locked_case(user, case_id)
        if case.item != "early_repayment":
            raise Refused("该办件不是提前还清贷款")
        depositor = _depositor(case)
        account = locked(Account.select().where(Account.depositor == depositor)).first()
        if _open_record(case) is not None:
            raise Refused("该办件已有一笔还款在复核或已办理，不能重复经办")
        try:
            plan = loans.payoff_plan(depositor, loan_id, today, True)
        except loans.NotFound:
            raise Refused("请选择该职工本人的住房公积金贷款", "loan") from None
        reasons = [r for r in plan.reasons if "银行卡" not in r]
        card, bank_name = None, ""
        if plan.rest > 0:
            card, bank_name, card_reasons = _payee(depositor, case, card_source, today)
            reasons += [f"剩余 {yuan(plan.rest)} 元须从银行卡扣款：{r}" for r in card_reasons]
        if reasons:
            raise Refused(reasons)
        q = plan.quote
        record = CasePayout.create(
            case=case,
            kind="loan_offset",
            depositor=depositor,
            account=account,
            amount=plan.offset,
            status="pending_approval",
            detail={
                "loan_id": q.loan.id,
                "contract_no": q.loan.contract_no,
                "on": today.isoformat(),
                "principal": str(q.principal),
                "interest": str(q.interest),
                "total": str(q.total),
                "offset": str(plan.offset),
                "rest": str(plan.rest),
                "rate": str(q.rate),
                "last_due": q.last_due.isoformat(),
            },
            bank_card=card,
            bank_name=bank_name,
            prepared_by=user,
        )
        _prepared(user, case, record)
    return record


def withdraw_prepared(user: StaffUser, record_id: int, reason: str = "") -> CasePayout:
    """The preparer takes back a record still waiting for approval (e.g. a typing error)."""
    with write_tx():
        record = _locked_record(user, record_id)
        if record.prepared_by_id != user.id:
            raise Refused("只有经办人本人可以撤回")
        if record.status != "pending_approval":
            raise Refused(f"该笔支付{STATUS_LABELS.get(record.status, record.status)}，不能撤回")
        text = (reason or "").strip()[:MAX_REASON] or "经办人撤回重新核算"
        CasePayout.update(
            status="refused", refused_by=user, refused_reason=text, version=CasePayout.version + 1
        ).where(CasePayout.id == record.id).execute()
        _event(record.case, user, "withdraw_payout", reason=text)
        audit.record(_actor(user), "case_payout.withdrawn", "case_payout", record.id)
    return CasePayout.get_by_id(record.id)


# --- approval (复核) and the payout -------------------------------------------------------


def _locked_record(user: StaffUser, record_id: int) -> CasePayout:
    if user.role != "handler" or not user.department_id:
        raise NotFound(record_id)
    record = locked(CasePayout.select().where(CasePayout.id == record_id)).first()
    if record is None:
        raise NotFound(record_id)
    case = ProxyCase.get_by_id(record.case_id)
    if case.department_id != user.department_id:
        raise NotFound(record_id)
    return record


def record_for(user: StaffUser, record_id: int) -> CasePayout:
    if user.role != "handler" or not user.department_id:
        raise NotFound(record_id)
    record = (
        CasePayout.select()
        .join(ProxyCase, on=(CasePayout.case == ProxyCase.id))
        .where((CasePayout.id == record_id) & (ProxyCase.department == user.department_id))
        .first()
    )
    if record is None:
        raise NotFound(record_id)
    return record


def payout_key(record: CasePayout) -> str:
    return f"case:{record.id}"


def _recheck(record: CasePayout, case: ProxyCase, account: Account, today: date) -> dict:
    """The rules again under the lock at approval; the fields to update, or Refused."""
    depositor = Depositor.get_by_id(record.depositor_id)
    if record.kind == "purchase":
        data = PurchaseInput(
            property_no=record.property_no,
            property_address=record.property_address,
            purchase_date=record.purchase_date,
            price=record.price,
            spouse_name=record.spouse_name,
            spouse_id_no=record.spouse_id_no,
            co_owners=[(o["name"], o["id_no"]) for o in record.co_owners or []],
            amount=record.amount,
        )
        quote = _purchase_quote(
            case, depositor, account, data, today, exclude_id=record.id, check_card=False
        )
        if quote.reasons:
            raise Refused(["复核时重新核算未通过：", *quote.reasons])
        return {"detail": {**record.detail, "on": today.isoformat()}}
    if record.kind == "retirement":
        from portal.services.payouts import retirement_quote

        quote = retirement_quote(depositor, today)
        reasons = [r for r in quote.reasons if "银行卡" not in r]
        if reasons:
            raise Refused(["复核时重新核算未通过：", *reasons])
        detail = _retirement_detail(quote, today, record.bank_name, case)
        return {"amount": quote.amount, "detail": detail}
    from portal.services import loans

    plan = loans.payoff_plan(depositor, record.detail["loan_id"], today, True)
    reasons = [r for r in plan.reasons if "银行卡" not in r]
    if plan.rest > 0 and not record.bank_card:
        reasons.append("剩余款项须从银行卡扣款，但经办时未选择银行卡，请经办人重新核算")
    if reasons:
        raise Refused(["复核时重新核算未通过：", *reasons])
    q = plan.quote
    detail = {
        **record.detail,
        "on": today.isoformat(),
        "principal": str(q.principal),
        "interest": str(q.interest),
        "total": str(q.total),
        "offset": str(plan.offset),
        "rest": str(plan.rest),
        "rate": str(q.rate),
        "last_due": q.last_due.isoformat(),
    }
    return {"amount": plan.offset, "detail": detail}


def approve(
    user: StaffUser,
    record_id: int,
    version: int | None,
    today: date,
    center_name: str,
    verify_url: VerifyUrl,
) -> CasePayout:
    """复核通过: a second handler of the department releases the payout, exactly once."""
    from portal.services import payouts

    if user.role != "handler":
        raise Refused("只有管理部经办人可以复核")
    payout = None
    with write_tx():
        record = _locked_record(user, record_id)
        case = locked(ProxyCase.select().where(ProxyCase.id == record.case_id)).get()
        if record.prepared_by_id == user.id:
            raise Refused("不能复核自己经办的支付，须由本管理部其他经办人复核")
        if record.status in ("approved", "paid") and record.approved_by_id == user.id:
            payout = Payout.get_by_id(record.payout_id)  # a repeated click: continue it
        elif record.status != "pending_approval":
            who = _staff_names((record.approved_by_id, record.refused_by_id))
            by = who.get(record.approved_by_id) or who.get(record.refused_by_id) or ""
            raise Refused(
                f"该笔支付{STATUS_LABELS.get(record.status, record.status)}"
                + (f"（{by}）" if by else "")
            )
        else:
            if version is not None and record.version != version:
                raise Refused("经办内容已变化，请刷新后重新复核")
            if case.state != PROCESSING:
                raise Refused("办件已不在“办理中”，不能复核")
            if record.kind == "purchase":
                _lock_property(record.property_no, record.property_address)
            account = locked(Account.select().where(Account.id == record.account_id)).get()
            if record.kind == "loan_offset":
                locked(Loan.select().where(Loan.id == record.detail["loan_id"])).get()
            # issue 9: the balance is taken out when a payout is confirmed, so another payout
            # still pending on the account (in flight at the bank) must finish first
            in_flight = Payout.select().where(
                (Payout.account == account.id) & (Payout.status == payouts.PENDING)
            )
            if in_flight.exists():
                raise Refused("该职工账户有一笔支付正在办理中，请稍后再复核")
            changes = _recheck(record, case, account, today)
            amount = changes.get("amount", record.amount)
            detail = changes.get("detail", record.detail)
            if record.kind != "loan_offset" and amount <= 0:
                raise Refused("可提取金额为零，不能支付")
            won = (
                Account.update(version=Account.version + 1)
                .where((Account.id == account.id) & (Account.version == account.version))
                .execute()
            )
            if not won:
                raise Refused("账户信息已变化，请刷新后重试")
            payout = Payout.create(
                account=account,
                kind=record.kind,
                amount=amount,
                idempotency_key=payout_key(record),
                status=payouts.PENDING,
                bank_card=record.bank_card,
                requested_by=f"staff:{record.prepared_by.username}",
                approved_by=user,
                proxy_case_id=case.id,
                detail={**detail, "case_payout": record.id, "case_no": case.case_no},
            )
            won = (
                CasePayout.update(
                    status="approved",
                    approved_by=user,
                    approved_at=utcnow(),
                    payout=payout,
                    amount=amount,
                    detail=detail if record.kind != "purchase" else record.detail,
                    version=CasePayout.version + 1,
                )
                .where((CasePayout.id == record.id) & (CasePayout.status == "pending_approval"))
                .execute()
            )
            if not won:  # cannot happen under the lock; never pay on a stale read
                raise Refused("该笔支付已被处理，请刷新")
            _event(case, user, "approve", kind=KIND_LABELS[record.kind], amount=yuan(amount))
            audit.record(
                _actor(user),
                "case_payout.approved",
                "case_payout",
                record.id,
                case_no=case.case_no,
                prepared_by=record.prepared_by.username,
                payout=payout.id,
                amount=str(amount),
            )
            audit.record(
                _actor(user),
                "payout.pending",
                "payout",
                payout.id,
                kind=record.kind,
                amount=str(amount),
                card=mask_bank_card(record.bank_card) if record.bank_card else "",
                case_no=case.case_no,
            )
    try:
        payout = payouts.complete(payout)
    except payouts.InProgress as exc:
        raise Refused(f"已复核。{exc}") from None
    except payouts.Refused as exc:
        _sync_record(CasePayout.get_by_id(record_id))
        raise Refused(f"支付未成功：{exc}") from None
    record = _sync_record(CasePayout.get_by_id(record_id))
    if record.status == "paid":
        ensure_payout_result(record, user, today, center_name, verify_url)
    return record


def refuse(user: StaffUser, record_id: int, reason: str) -> CasePayout:
    """复核退回: the approver sends the preparation back with the reason (nothing is paid)."""
    text = (reason or "").strip()
    if not text:
        raise Refused("请填写退回原因", "reason")
    if len(text) > MAX_REASON:
        raise Refused(f"退回原因不超过 {MAX_REASON} 字", "reason")
    with write_tx():
        record = _locked_record(user, record_id)
        if record.prepared_by_id == user.id:
            raise Refused("不能复核自己经办的支付；如需修改，请撤回后重新经办")
        if record.status != "pending_approval":
            raise Refused(f"该笔支付{STATUS_LABELS.get(record.status, record.status)}，不能退回")
        CasePayout.update(
            status="refused",
            refused_by=user,
            refused_reason=text,
            version=CasePayout.version + 1,
        ).where(CasePayout.id == record.id).execute()
        _event(record.case, user, "refuse_payout", reason=text)
        audit.record(
            _actor(user),
            "case_payout.refused",
            "case_payout",
            record.id,
            case_no=record.case.case_no,
        )
    return CasePayout.get_by_id(record.id)


def apply_purchase_withdrawal(payout: Payout) -> None:
    """Effects of a confirmed home-purchase payout (called once, inside the confirming
    transaction by ``services.payouts``): the withdrawal line, the balance, the record paid."""
    record_id = (payout.detail or {}).get("case_payout")
    account = locked(Account.select().where(Account.id == payout.account_id)).get()
    day = date.fromisoformat(payout.detail["on"])
    property_no = ""
    if record_id:
        record = CasePayout.get_or_none(CasePayout.id == record_id)
        property_no = record.property_no if record else ""
    DepositRecord.create(
        account=account,
        kind="提取",
        posted_on=day,
        amount=-payout.amount,
        balance_after=account.balance - payout.amount,
        memo=f"购房提取（{property_no}）"[:100] if property_no else "购房提取",
    )
    Account.update(balance=Account.balance - payout.amount, version=Account.version + 1).where(
        Account.id == account.id
    ).execute()
    if record_id:
        CasePayout.update(status="paid", version=CasePayout.version + 1).where(
            (CasePayout.id == record_id) & (CasePayout.status == "approved")
        ).execute()


def _sync_record(record: CasePayout) -> CasePayout:
    """Bring an approved record in line with its payout: paid when confirmed, failed when the
    payout was reversed (bank refusal or reconciliation)."""
    if record.status != "approved" or not record.payout_id:
        return record
    payout = Payout.get_by_id(record.payout_id)
    if payout.status == "confirmed":
        status, reason = "paid", ""
    elif payout.status == "reversed":
        status, reason = "failed", str((payout.detail or {}).get("reversed", "银行未完成转账"))
    else:
        return record
    with write_tx():
        CasePayout.update(
            status=status, refused_reason=reason[:MAX_REASON], version=CasePayout.version + 1
        ).where((CasePayout.id == record.id) & (CasePayout.status == "approved")).execute()
    return CasePayout.get_by_id(record.id)


def _sync_case_payouts(case: ProxyCase) -> None:
    for record in CasePayout.select().where(
        (CasePayout.case == case) & (CasePayout.status == "approved")
    ):
        _sync_record(record)


def retry_payout(user: StaffUser, record_id: int, today: date, center_name: str, verify_url):
    """An approved payout the bank did not answer: ask again (same key, so never twice)."""
    from portal.services import payouts

    record = record_for(user, record_id)
    if record.status != "approved" or not record.payout_id:
        return _sync_record(record)
    try:
        payouts.complete(Payout.get_by_id(record.payout_id))
    except payouts.InProgress as exc:
        raise Refused(str(exc)) from None
    except payouts.Refused as exc:
        _sync_record(record)
        raise Refused(f"支付未成功：{exc}") from None
    record = _sync_record(CasePayout.get_by_id(record.id))
    if record.status == "paid":
        ensure_payout_result(record, user, today, center_name, verify_url)
    return record


def _payout_note(record: CasePayout) -> str:
    card = f"{record.bank_name} {mask_bank_card(record.bank_card)}".strip()
    if record.kind == "purchase":
        return f"购房提取 {yuan(record.amount)} 元已支付至{card}"
    if record.kind == "retirement":
        return f"正常退休提取 {yuan(record.amount)} 元已支付至{card}，账户已销户"
    d = record.detail or {}
    return (
        f"贷款 {d.get('contract_no', '')} 已提前还清，合计 {d.get('total', '')} 元"
        f"（公积金冲还 {d.get('offset', '')} 元，银行卡扣款 {d.get('rest', '')} 元）"
    )


def ensure_payout_result(
    record: CasePayout, user: StaffUser, today: date, center_name: str, verify_url: VerifyUrl
) -> None:
    """The receipt of a paid record attached to its case, once."""
    case = ProxyCase.get_by_id(record.case_id)
    if (record.detail or {}).get("result_attachment"):
        return
    payout = Payout.get_by_id(record.payout_id)
    with write_tx():
        fresh = locked(CasePayout.select().where(CasePayout.id == record.id)).get()
        if (fresh.detail or {}).get("result_attachment"):
            return
        if record.kind == "retirement":
            from portal.services.certificates import retirement_receipt

            certificate = retirement_receipt(payout, today, verify_url, center_name)
            Certificate.update(case=case).where(Certificate.id == certificate.id).execute()
            attachment = attach_certificate(case, user, certificate)
        else:
            data = payout_receipt_pdf(fresh, payout, case, center_name)
            attachment = _attach_pdf(
                case, user, data, f"{KIND_LABELS[record.kind]}凭证-{case.case_no}.pdf"
            )
        CasePayout.update(detail={**fresh.detail, "result_attachment": attachment.id}).where(
            CasePayout.id == fresh.id
        ).execute()
        _event(case, user, "payout", kind=KIND_LABELS[record.kind], amount=yuan(record.amount))


def payout_receipt_pdf(
    record: CasePayout, payout: Payout, case: ProxyCase, center_name: str
) -> bytes:
    from portal.services.payouts import local_date

    depositor = Depositor.get_by_id(record.depositor_id)
    account = Account.get_by_id(record.account_id)
    paid_on = date.fromisoformat(payout.detail["on"]) if payout.detail.get("on") else None
    paid_on = paid_on or local_date(payout.confirmed_at or payout.created_at)
    approver = record.approved_by.name if record.approved_by_id else ""
    title = (
        "住房公积金提取凭证（购房提取）"
        if record.kind == "purchase"
        else "住房公积金贷款提前还清凭证"
    )
    doc = _doc(center_name, title, case, paid_on)
    rows = [
        ("姓名", depositor.name),
        ("身份证号码", mask_resident_id(depositor.resident_id)),
        ("个人账号", account.account_no),
    ]
    if record.kind == "purchase":
        rows += [
            ("提取原因", "购买自住住房"),
            ("购房合同或不动产权证书编号", record.property_no),
            ("房屋坐落", record.property_address),
            ("购房日期", fmt_day(record.purchase_date)),
            ("房屋总价（元）", yuan(record.price)),
            ("提取金额（元）", yuan(payout.amount)),
            ("收款银行卡", f"{record.bank_name} {mask_bank_card(record.bank_card)}".strip()),
        ]
    else:
        d = payout.detail
        rows += [
            ("借款合同编号", d.get("contract_no", "")),
            ("提前还清本金（元）", yuan(Decimal(d["principal"]))),
            ("利息（元）", yuan(Decimal(d["interest"]))),
            ("合计（元）", yuan(Decimal(d["total"]))),
            ("公积金冲还（元）", yuan(Decimal(d["offset"]))),
            ("银行卡扣款（元）", yuan(Decimal(d["rest"]))),
            ("贷款状态", "已结清（提前还清）"),
        ]
    rows += [
        ("银行流水号", payout.bank_ref or "—"),
        ("办理日期", fmt_day(paid_on)),
        ("办理渠道", f"跨省通办（{case.center.name}代收代办）"),
        (
            "经办 / 复核",
            f"{record.prepared_by.name} / {approver}",
        ),
    ]
    doc.fields(rows, label_width=58)
    doc.paragraph(
        "本凭证由缴存地中心办结后出具，经全国住房公积金监管服务平台反馈受理地中心。", size=9
    )
    doc.seal(on=paid_on)
    return doc.output()


# --- the approvals queue (待复核) -----------------------------------------------------------


@dataclass
class Approvals:
    waiting: list[PayoutView]  # pending approval in the department
    mine_waiting: int  # of those, prepared by the viewer (someone else must approve)
    recent: list[PayoutView]  # decided lately


def approvals(user: StaffUser) -> Approvals:
    if user.role != "handler" or not user.department_id:
        return Approvals([], 0, [])
    base = (
        CasePayout.select(CasePayout)
        .join(ProxyCase, on=(CasePayout.case == ProxyCase.id))
        .where(ProxyCase.department == user.department_id)
    )
    waiting = [
        payout_view(user, r)
        for r in base.where(CasePayout.status == "pending_approval").order_by(CasePayout.id)
    ]
    recent = [
        payout_view(user, r)
        for r in base.where(CasePayout.status != "pending_approval")
        .order_by(CasePayout.id.desc())
        .limit(10)
    ]
    return Approvals(waiting, sum(1 for v in waiting if v.own), recent)


def approvals_count(user: StaffUser) -> int:
    if user.role != "handler" or not user.department_id:
        return 0
    return (
        CasePayout.select()
        .join(ProxyCase, on=(CasePayout.case == ProxyCase.id))
        .where(
            (ProxyCase.department == user.department_id)
            & (CasePayout.status == "pending_approval")
            & (CasePayout.prepared_by != user.id)
        )
        .count()
    )


# --- finishing the payout and certificate items -------------------------------------------


def finish(
    user: StaffUser,
    case_id: int,
    version: int | None,
    today: date,
    center_name: str,
    verify_url: VerifyUrl,
    overrides=None,
) -> ProxyCase:
    """办结 a case whose business is done (paid, certificate issued, employer registered): the
    result is attached (once) and the case moves to 已办结."""
    case = case_for(user, case_id)
    _check_acting(user, case)
    _sync_case_payouts(case)
    if case.item in PAYOUT_ITEMS:
        record = _open_record(case)
        if record is None or record.status != "paid":
            raise Refused("支付尚未完成（须经复核并支付成功），暂不能办结")
        ensure_payout_result(record, user, today, center_name, verify_url)
    with write_tx():
        case = _locked_case(user, case_id)
        if version is not None and case.version != version:
            raise Refused("办件刚刚已被更新，请刷新后再操作")
        if case.item in PAYOUT_ITEMS:
            note = _payout_note(_open_record(case))
        elif case.item == "settlement_certificate":
            state = _settlement_state(case)
            certificate = state.certificate
            if certificate is None or certificate.revoked_at is not None:
                raise Refused("贷款结清证明尚未签发，暂不能办结")
            attach_certificate(case, user, certificate)
            note = f"已开具贷款结清证明，编号 {certificate.number}"
        elif case.item == "employer_registration":
            employer = Employer.get_or_none(Employer.id == case.employer_id)
            if employer is None:
                raise Refused("单位尚未登记开户，暂不能办结")
            if (
                not Attachment.select()
                .where((Attachment.case == case) & (Attachment.kind == "result"))
                .exists()
            ):
                data = registration_pdf(employer, case, center_name, today)
                _attach_pdf(case, user, data, f"单位登记开户通知书-{case.case_no}.pdf")
            note = _registration_note(employer)
        else:
            raise Refused("该事项在办理时即办结，无需单独办结")
        return _finish(user, case, "办结", note, today, overrides)


def decline(
    user: StaffUser,
    case_id: int,
    version: int | None,
    reason: str,
    today: date,
    center_name: str,
    overrides=None,
) -> ProxyCase:
    """不予办理: the case ends with the reasons, in a notice PDF fed back to the applicant."""
    text = (reason or "").strip()
    if not text:
        raise Refused("请填写不予办理的原因", "reason")
    if len(text) > MAX_REASON:
        raise Refused(f"原因不超过 {MAX_REASON} 字", "reason")
    case = case_for(user, case_id)
    _check_acting(user, case)
    _sync_case_payouts(case)
    data = decline_pdf(case, text, center_name, today)
    with write_tx():
        case = _locked_case(user, case_id)
        if version is not None and case.version != version:
            raise Refused("办件刚刚已被更新，请刷新后再操作")
        record = _open_record(case)
        if record is not None and record.status in ("approved", "paid"):
            raise Refused("该办件的支付已复核，不能不予办理")
        if record is not None:
            CasePayout.update(
                status="refused",
                refused_by=user,
                refused_reason=f"不予办理：{text}"[:MAX_REASON],
                version=CasePayout.version + 1,
            ).where(CasePayout.id == record.id).execute()
        pending = CertificateRequest.select().where(
            (CertificateRequest.case == case) & (CertificateRequest.status == "pending")
        )
        for request in pending:
            CertificateRequest.update(
                status="refused",
                refused_reason=f"不予办理：{text}"[:MAX_REASON],
                decided_at=utcnow(),
            ).where(CertificateRequest.id == request.id).execute()
        _attach_pdf(case, user, data, f"不予办理告知书-{case.case_no}.pdf")
        return _finish(user, case, "不予办理", text, today, overrides)


def decline_pdf(case: ProxyCase, reason: str, center_name: str, today: date) -> bytes:
    doc = _doc(center_name, "“跨省通办”业务不予办理告知书", case, today)
    doc.paragraph(
        f"{case.applicant_name}（身份证号码：{mask_resident_id(case.applicant_id_no)}）："
    )
    doc.paragraph(
        f"\u3000\u3000您经{case.center.name}提交的“{items.get(case.item).name}”申请"
        f"（办件编号 {case.case_no}），经本中心审核，因下列原因不予办理："
    )
    doc.paragraph(reason)
    doc.paragraph("\u3000\u3000如有疑问，请拨打服务热线 12329；符合条件后可重新申请。", size=10)
    doc.fields(_case_rows(case))
    doc.seal(on=today)
    return doc.output()


# --- employer registration ----------------------------------------------------------------


@dataclass
class EmployerInput:
    name: str
    credit_code: str
    address: str
    contact_name: str
    contact_phone: str
    employer_ratio: int | None
    employee_ratio: int | None
    operator_name: str
    operator_resident_id: str
    operator_phone: str


def _registration_note(employer: Employer) -> str:
    return f"已登记开户：{employer.name}，单位账号 {employer.account_no}"


def registration_pdf(employer: Employer, case: ProxyCase, center_name: str, today: date) -> bytes:
    from portal.models import EmployerOperator

    operator = (
        EmployerOperator.select()
        .where((EmployerOperator.employer == employer) & EmployerOperator.is_primary)
        .first()
    )
    doc = _doc(center_name, "住房公积金单位登记开户通知书", case, today)
    doc.fields(
        [
            ("单位名称", employer.name),
            ("统一社会信用代码", employer.credit_code),
            ("单位住房公积金账号", employer.account_no),
            ("开户日期", fmt_day(employer.opened_on)),
            ("单位地址", employer.address),
            ("缴存比例", f"单位 {employer.employer_ratio}%，个人 {employer.employee_ratio}%"),
            ("联系人", employer.contact_name),
            (
                "单位经办人",
                f"{operator.name}（{mask_resident_id(operator.resident_id)}，"
                f"{mask_phone(operator.phone)}）"
                if operator
                else "—",
            ),
        ],
        label_width=50,
    )
    doc.paragraph(
        "\u3000\u3000单位经办人已收到激活短信，可凭统一社会信用代码、本人身份证号码在"
        "单位网上业务大厅“首次登录”设置密码后办理缴存业务。"
    )
    doc.fields(_case_rows(case))
    doc.seal(on=today)
    return doc.output()


def register_employer(
    user: StaffUser,
    case_id: int,
    version: int | None,
    data: EmployerInput,
    today: date,
    center_name: str,
    overrides=None,
) -> ProxyCase:
    """单位登记开户 through ``services.employers.register_employer``, then 办结. A retry after a
    registration whose move failed finishes without registering again."""
    from portal.services import employers

    case = case_for(user, case_id)
    _check_acting(user, case)
    if case.item != "employer_registration":
        raise Refused("该办件不是单位登记开户")
    if version is not None and case.version != version:
        raise Refused("办件刚刚已被更新，请刷新后再操作")
    employer = Employer.get_or_none(Employer.id == case.employer_id) if case.employer_id else None
    if employer is None:
        try:
            employer = employers.register_employer(
                name=data.name,
                credit_code=data.credit_code,
                address=data.address,
                operator_name=data.operator_name,
                operator_resident_id=data.operator_resident_id,
                operator_phone=data.operator_phone,
                today=today,
                actor=_actor(user),
                contact_name=data.contact_name or None,
                contact_phone=data.contact_phone or None,
                employer_ratio=data.employer_ratio,
                employee_ratio=data.employee_ratio,
                case=case,
            )
        except employers.Refused as exc:
            field_map = {"name": "name", "operator_phone": "operator_phone"}
            raise Refused(str(exc), field_map.get(exc.field, exc.field)) from None
    pdf = registration_pdf(employer, case, center_name, today)
    with write_tx():
        case = _locked_case(user, case_id)
        _event(case, user, "register", employer=employer.name, account_no=employer.account_no)
        _attach_pdf(case, user, pdf, f"单位登记开户通知书-{case.case_no}.pdf")
        return _finish(user, case, "办结", _registration_note(employer), today, overrides)


# --- the loan-settlement certificate item --------------------------------------------------


def request_certificate(
    user: StaffUser, case_id: int, loan_id: int, today: date
) -> CertificateRequest:
    """Hand the case's 贷款结清证明 to the officials (the loan must be the depositor's own and
    settled); an already issued, valid certificate is attached instead."""
    with write_tx():
        case = _locked_case(user, case_id)
        if case.item != "settlement_certificate":
            raise Refused("该办件不是贷款结清证明")
        depositor = _depositor(case)
        loan = Loan.get_or_none((Loan.id == loan_id) & (Loan.depositor == depositor))
        if loan is None:
            raise Refused("请选择该职工作为借款人的住房公积金贷款", "loan")
        if loan.status != "settled":
            raise Refused(
                f"贷款 {loan.contract_no} 尚未结清（剩余本金 {yuan(loan.outstanding)} 元），"
                "不能开具贷款全部还清证明",
                "loan",
            )
        requests = list(
            CertificateRequest.select()
            .where(CertificateRequest.loan == loan)
            .order_by(CertificateRequest.id.desc())
        )
        for r in requests:
            if r.status == "pending":
                if r.case_id == case.id:
                    raise Refused("已提交审批签发，请等待签发")
                source = SOURCE_LABELS.get(r.source, r.source)
                raise Refused(f"该贷款已有待签发的结清证明申请（来源：{source}），签发后可在此附加")
        issued = next(
            (
                r
                for r in requests
                if r.status == "issued"
                and r.certificate_id
                and Certificate.get_by_id(r.certificate_id).revoked_at is None
            ),
            None,
        )
        request = CertificateRequest.create(
            loan=loan,
            source="case",
            case=case,
            status="issued" if issued else "pending",
            certificate=issued.certificate_id if issued else None,
            requested_by=_actor(user),
            decided_at=utcnow() if issued else None,
            decided_by=issued.decided_by_id if issued else None,
        )
        if issued:
            certificate = Certificate.get_by_id(issued.certificate_id)
            attach_certificate(case, user, certificate)
            _event(case, user, "request_cert", loan=loan.contract_no, note="已签发，直接附加")
        else:
            _event(case, user, "request_cert", loan=loan.contract_no)
        audit.record(
            _actor(user),
            "settlement_certificate.requested",
            "loan",
            loan.id,
            request=request.id,
            source="case",
            case_no=case.case_no,
        )
    return request


# --- online items received as proxy cases -------------------------------------------------


def _loans_rows(depositor: Depositor, today: date) -> list[list[str]]:
    from portal.services import loans

    rows = []
    for view in loans.list_loans(depositor, today):
        loan = view.loan
        rows.append(
            [
                loan.contract_no,
                yuan(loan.amount),
                f"{loan.term_months}",
                view.rate_text,
                view.method_label,
                yuan(loan.outstanding),
                "已结清"
                if loan.status == "settled"
                else (f"{view.next_due.due_on}" if view.next_due else "—"),
            ]
        )
    return rows


def query_pdf(case: ProxyCase, depositor: Depositor, today: date, center_name: str) -> bytes:
    """个人住房公积金缴存贷款等信息查询结果: what the online hall's query shows."""
    scope = str((case.application or {}).get("scope") or "缴存和贷款信息")
    account = Account.get_or_none(Account.depositor == depositor)
    doc = _doc(center_name, "个人住房公积金缴存贷款信息查询结果", case, today)
    doc.fields(
        [
            ("姓名", depositor.name),
            ("身份证号码", mask_resident_id(depositor.resident_id)),
            ("查询内容", scope),
            ("查询日期", fmt_day(today)),
        ]
    )
    if "缴存" in scope:
        doc.heading("一、缴存信息")
        if account is None:
            doc.paragraph("未查询到住房公积金个人账户。")
        else:
            employer = Employer.get_or_none(Employer.id == account.employer_id)
            doc.fields(
                [
                    ("个人账号", account.account_no),
                    ("账户状态", account.status),
                    ("缴存单位", employer.name if employer else "—"),
                    ("开户日期", fmt_day(account.opened_on)),
                    ("缴存基数（元）", yuan(account.deposit_base)),
                    ("缴存比例", f"单位 {account.employer_ratio}%，个人 {account.employee_ratio}%"),
                    ("月缴存额（元）", yuan(account.monthly_amount)),
                    ("缴至年月", account.paid_up_to or "—"),
                    ("账户余额（元）", yuan(account.balance)),
                ]
            )
            lines = list(
                DepositRecord.select()
                .where(DepositRecord.account == account)
                .order_by(DepositRecord.posted_on.desc(), DepositRecord.id.desc())
                .limit(12)
            )
            doc.heading("最近 12 笔明细")
            doc.table(
                ["日期", "业务", "所属年月", "发生额（元）", "余额（元）"],
                [
                    [
                        f"{r.posted_on:%Y-%m-%d}",
                        r.kind,
                        r.period or "",
                        yuan(r.amount),
                        yuan(r.balance_after),
                    ]
                    for r in lines
                ]
                or [["", "无", "", "", ""]],
                [28, 20, 26, 48, 48],
                "CCCRR",
            )
    if "贷款" in scope:
        doc.heading("二、贷款信息" if "缴存" in scope else "一、贷款信息")
        rows = _loans_rows(depositor, today)
        if rows:
            doc.table(
                ["合同编号", "贷款金额", "期限(月)", "利率", "还款方式", "剩余本金", "下期还款"],
                rows,
                [34, 26, 16, 18, 22, 26, 28],
                "LRCCCRC",
            )
        else:
            doc.paragraph("无住房公积金贷款记录。")
    doc.paragraph("本查询结果由缴存地中心出具，仅供申请人办理业务使用。", size=9)
    doc.seal(on=today)
    return doc.output()


def process_query(
    user: StaffUser,
    case_id: int,
    version: int | None,
    today: date,
    center_name: str,
    overrides=None,
) -> ProxyCase:
    case = case_for(user, case_id)
    _check_acting(user, case)
    if case.item != "query":
        raise Refused("该办件不是信息查询")
    depositor = _depositor(case)
    data = query_pdf(case, depositor, today, center_name)
    with write_tx():
        case = _locked_case(user, case_id)
        if version is not None and case.version != version:
            raise Refused("办件刚刚已被更新，请刷新后再操作")
        _attach_pdf(case, user, data, f"信息查询结果-{case.case_no}.pdf")
        audit.record(_actor(user), "case.query_result", "proxy_case", case.id, case_no=case.case_no)
        return _finish(user, case, "办结", "已出具住房公积金缴存贷款信息查询结果", today, overrides)


def process_usage(
    user: StaffUser,
    case_id: int,
    version: int | None,
    addressee: str,
    today: date,
    center_name: str,
    verify_url: VerifyUrl,
    overrides=None,
) -> ProxyCase:
    """出具缴存使用证明 exactly as the hall does (``services.certificates.issue_usage``)."""
    from portal.services import certificates

    case = case_for(user, case_id)
    _check_acting(user, case)
    if case.item != "usage_certificate":
        raise Refused("该办件不是缴存使用证明")
    depositor = _depositor(case)
    with write_tx():
        case = _locked_case(user, case_id)
        if version is not None and case.version != version:
            raise Refused("办件刚刚已被更新，请刷新后再操作")
        try:
            certificate = certificates.issue_usage(
                depositor, addressee, today, verify_url, center_name, actor=_actor(user)
            )
        except certificates.Refused as exc:
            raise Refused(str(exc), "addressee") from None
        Certificate.update(case=case).where(Certificate.id == certificate.id).execute()
        attach_certificate(case, user, certificate)
        return _finish(
            user, case, "办结", f"已出具缴存使用证明，编号 {certificate.number}", today, overrides
        )


@dataclass
class ChangeInput:
    phone: str = ""
    bank_card: str = ""
    bank_name: str = ""
    address: str = ""


def change_pdf(
    case: ProxyCase, title: str, rows: list[tuple[str, str, str]], center_name: str, today: date
) -> bytes:
    doc = _doc(center_name, title, case, today)
    doc.fields(_case_rows(case))
    doc.table(
        ["变更事项", "变更前", "变更后"],
        [[a, b or "—", c or "—"] for a, b, c in rows],
        [40, 65, 65],
    )
    doc.paragraph("以上变更已由缴存地中心办理完毕。", size=10)
    doc.seal(on=today)
    return doc.output()


def process_individual_change(
    user: StaffUser,
    case_id: int,
    version: int | None,
    data: ChangeInput,
    today: date,
    center_name: str,
    overrides=None,
) -> ProxyCase:
    """个人缴存信息变更 (phone, withdrawal card, address) as the hall records it (channel
    跨省通办代办)."""
    from portal.services import changes, sms

    case = case_for(user, case_id)
    _check_acting(user, case)
    if case.item != "individual_change":
        raise Refused("该办件不是个人缴存信息变更")
    depositor = _depositor(case)
    phone = changes.normalize_phone(data.phone)
    card = changes.normalize_card(data.bank_card)
    address = normalize_address(data.address)
    if not (phone or card or address):
        raise Refused("请至少填写一项变更内容", "phone")
    if phone and (not changes.PHONE_RE.match(phone) or phone == depositor.phone):
        raise Refused("请填写与原号码不同的 11 位手机号码", "phone")
    if card:
        try:
            card = changes.check_card(depositor, card, data.bank_name)
        except changes.Refused as exc:
            raise Refused(str(exc), "bank_card" if exc.field == "card" else exc.field) from None
    if address and (not 4 <= len(address) <= 200 or address == depositor.address):
        raise Refused("请填写与原地址不同的 4–200 个字的联系地址", "address")
    actor = _actor(user)
    rows: list[tuple[str, str, str]] = []
    with write_tx():
        case = _locked_case(user, case_id)
        if version is not None and case.version != version:
            raise Refused("办件刚刚已被更新，请刷新后再操作")
        current = locked(Depositor.select().where(Depositor.id == depositor.id)).get()
        fields: dict = {}
        if phone:
            fields["phone"] = phone
            rows.append(("手机号码", mask_phone(current.phone), mask_phone(phone)))
            changes._record(
                current, "phone", mask_phone(current.phone), mask_phone(phone), actor, "case"
            )
        if card:
            fields.update(bank_card=card, bank_name=data.bank_name, bank_card_changed_at=utcnow())
            old = (
                f"{current.bank_name} {mask_bank_card(current.bank_card)}".strip()
                if current.bank_card
                else None
            )
            new = f"{data.bank_name} {mask_bank_card(card)}"
            rows.append(("提取银行卡", old or "", new))
            changes._record(current, "bank_card", old, new, actor, "case")
        if address:
            fields["address"] = address
            rows.append(("联系地址", current.address, address))
            changes._record(current, "address", current.address or None, address, actor, "case")
        Depositor.update(**fields).where(Depositor.id == current.id).execute()
        audit.record(
            actor,
            "depositor.changed_by_case",
            "depositor",
            current.id,
            case_no=case.case_no,
            fields=sorted(fields),
        )
        pdf = change_pdf(case, "住房公积金个人缴存信息变更确认书", rows, center_name, today)
        _attach_pdf(case, user, pdf, f"个人信息变更确认书-{case.case_no}.pdf")
        moved = _finish(
            user,
            case,
            "办结",
            "已变更：" + "、".join(r[0] for r in rows),
            today,
            overrides,
        )
    notice = (
        "【信息变更】您的住房公积金"
        + "、".join(r[0] for r in rows)
        + "已通过跨省通办变更。如非本人申请，请立即拨打 12329。"
    )
    sms.send(current.phone, notice)
    if phone:
        sms.send(phone, notice)
    return moved


@dataclass
class EmployerChangeInput:
    contact_name: str = ""
    contact_phone: str = ""
    address: str = ""
    employer_ratio: str = ""
    employee_ratio: str = ""
    effective_from: str = ""


def case_employer(case: ProxyCase) -> Employer | None:
    from portal.rules.ids import normalize_uscc

    code = normalize_uscc((case.application or {}).get("credit_code"))
    return Employer.get_or_none(Employer.credit_code == code) if code else None


def process_employer_change(
    user: StaffUser,
    case_id: int,
    version: int | None,
    data: EmployerChangeInput,
    today: date,
    center_name: str,
    overrides=None,
) -> ProxyCase:
    """单位缴存信息变更 (contact, address, ratios from a month) as the employer hall records it."""
    from portal.models import ChangeRecord
    from portal.services import employers

    case = case_for(user, case_id)
    _check_acting(user, case)
    if case.item != "employer_change":
        raise Refused("该办件不是单位缴存信息变更")
    employer = case_employer(case)
    if employer is None:
        raise Refused("申请表中的统一社会信用代码未在本中心登记开户")
    name = " ".join((data.contact_name or "").split())
    phone = employers.normalize_phone(data.contact_phone)
    address = normalize_address(data.address)
    ratios = bool((data.employer_ratio or "").strip() or (data.employee_ratio or "").strip())
    if not (name or phone or address or ratios):
        raise Refused("请至少填写一项变更内容", "contact_name")
    try:
        if name and not 2 <= len(name) <= 40:
            raise employers.Refused("请填写 2–40 个字的联系人姓名", "contact_name")
        if phone:
            phone = employers.check_phone(phone)
        if address and not 4 <= len(address) <= 200:
            raise employers.Refused("请填写 4–200 个字的单位地址", "address")
        month = employers.month_of(today)
        if ratios:
            month = employers.parse_month(data.effective_from or month, today)
            mine, theirs = employers.check_ratios(data.employer_ratio, data.employee_ratio, month)
    except employers.Refused as exc:
        raise Refused(str(exc), exc.field) from None
    actor = _actor(user)
    rows: list[tuple[str, str, str]] = []
    with write_tx():
        case = _locked_case(user, case_id)
        if version is not None and case.version != version:
            raise Refused("办件刚刚已被更新，请刷新后再操作")
        current = locked(Employer.select().where(Employer.id == employer.id)).get()

        def record(field_name, old, new, status="applied"):
            ChangeRecord.create(
                subject_type="employer",
                subject_id=current.id,
                field=field_name,
                old_value=None if old in (None, "") else str(old),
                new_value=None if new in (None, "") else str(new),
                channel="case",
                effective_from=month,
                actor=actor,
                changed_at=utcnow(),
                status=status,
            )

        fields: dict = {}
        if name and name != current.contact_name:
            fields["contact_name"] = name
            record("contact_name", current.contact_name, name)
            rows.append(("联系人", current.contact_name, name))
        if phone and phone != current.contact_phone:
            fields["contact_phone"] = phone
            record("contact_phone", mask_phone(current.contact_phone), mask_phone(phone))
            rows.append(("联系电话", mask_phone(current.contact_phone), mask_phone(phone)))
        if address and address != current.address:
            fields["address"] = address
            record("address", current.address, address)
            rows.append(("单位地址", current.address, address))
        if fields:
            Employer.update(**fields).where(Employer.id == current.id).execute()
        if ratios:
            due = month <= employers.month_of(today)
            for field_name, value, label in (
                ("employer_ratio", mine, "单位缴存比例"),
                ("employee_ratio", theirs, "个人缴存比例"),
            ):
                old = getattr(current, field_name)
                if old == value:
                    continue
                employers._supersede(current.id, field_name)
                record(field_name, f"{old}%", f"{value}%", "applied" if due else "scheduled")
                if due:
                    employers._apply_ratio(current.id, field_name, value)
                when = "" if due else f"（{employers.month_label(month)}起）"
                rows.append((label, f"{old}%", f"{value}%{when}"))
        if not rows:
            raise Refused("填写的内容与当前登记的相同，无需变更", "contact_name")
        audit.record(
            actor,
            "employer.changed_by_case",
            "employer",
            current.id,
            case_no=case.case_no,
            fields=[r[0] for r in rows],
        )
        pdf = change_pdf(case, "住房公积金单位缴存信息变更确认书", rows, center_name, today)
        _attach_pdf(case, user, pdf, f"单位信息变更确认书-{case.case_no}.pdf")
        return _finish(
            user, case, "办结", "已变更：" + "、".join(r[0] for r in rows), today, overrides
        )


# --- the handler's entry point on the card detail ----------------------------------------


def can_process(user: StaffUser, case: ProxyCase) -> bool:
    """Whether the card detail offers this handler the "办理" entry point."""
    return (
        user.role == "handler"
        and case.direction == INBOUND
        and case.state == PROCESSING
        and bool(user.department_id)
        and case.department_id == user.department_id
    )


def parse_money(text) -> Decimal | None:
    try:
        value = Decimal(str(text).replace(",", "").strip())
    except (InvalidOperation, AttributeError):
        return None
    if not value.is_finite() or value != value.quantize(Decimal("0.01")):
        return None
    return value
