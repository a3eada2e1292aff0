"""The depositor's HPF loans: view, schedule, quota trial, payoff, early full repayment.

Schedules, payoff and quota come from :mod:`portal.rules.money`. A rate change reaches an
existing loan on the next 1 January (``rate_for_existing_loan``); the remaining instalments are
the rules' schedule of the outstanding principal over the remaining months at that rate.
Early repayment runs through the exactly-once payout flow of :mod:`portal.services.payouts`:
the HPF-balance part (冲还贷) is the payout, the rest is collected by the payment adapter.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from functools import lru_cache
from types import MappingProxyType
from typing import NamedTuple

from portal.db import Prepared, locked, write_tx
from portal.models import (
    Account,
    Certificate,
    CertificateRequest,
    Depositor,
    DepositRecord,
    Loan,
    LoanRepayment,
    Payout,
    Setting,
)
from portal.rules.dates import add_months
from portal.rules.ids import mask_bank_card
from portal.rules.money import (
    DEFAULT_RATE_TABLE,
    ZERO,
    LoanQuota,
    loan_quota,
    payoff_amount,
    rate_for,
    rate_for_existing_loan,
    repayment_schedule,
)
from portal.services import audit, settings
from portal.services.payouts import (
    DIFFERENT_REQUEST,
    PENDING,
    REVERSED,
    REVERSED_REQUEST,
    CodeRejected,
    Refused,
    check_token,
    complete,
    other_payout_pending,
    request_fingerprint,
    same_request,
    verify_action_code,
)

PAYOFF_PURPOSE = "payoff"
METHOD_LABELS = {"annuity": "等额本息", "equal_principal": "等额本金"}
REPAYMENT_KIND_LABELS = {"scheduled": "按期还款", "early": "提前还清", "offset": "公积金冲还贷"}
REQUEST_STATUS_LABELS = {"pending": "待签发", "issued": "已签发", "refused": "未予签发"}
CALCULATOR_DAYS = 366


class NotFound(LookupError):
    """Not this depositor's loan (the view answers 404)."""


# --- rates --------------------------------------------------------------------------------


def pct(rate: Decimal) -> str:
    """Decimal('0.02775') -> '2.775%'."""
    text = format((rate * 100).normalize(), "f")
    return f"{text}%"


# The loan page's reads, built once (issue 10: peewee's SQL building cost more than the reads).
_RATE_ROWS = Prepared(
    lambda key: (
        Setting.select(Setting.effective_from, Setting.value)
        .where(Setting.key == key)
        .order_by(Setting.effective_from)
        .tuples()
    ),
    1,
)
_OWN_LOAN = Prepared(lambda me, pk: own_loans_query(me).where(Loan.id == pk).limit(1), 2)


class Repayment(NamedTuple):
    """A repayment as the loan pages show it: read as plain rows, not model instances (issue
    10: a loan in its 20th year has 240 of them, and a model instance costs several times a
    tuple)."""

    id: int
    loan_id: int
    period: int | None
    due_on: date | None
    paid_on: date
    principal: Decimal
    interest: Decimal
    amount: Decimal
    kind: str


def _repayments_query(where):
    return (
        LoanRepayment.select(*(getattr(LoanRepayment, name) for name in Repayment._fields))
        .where(where)
        .order_by(LoanRepayment.paid_on, LoanRepayment.id)
        .tuples()
    )


_REPAYMENTS = Prepared(lambda pk: _repayments_query(LoanRepayment.loan == pk), 1)


def loan_repayments(loan_id: int) -> list[Repayment]:
    """A loan's repayments, oldest first."""
    return [Repayment._make(row) for row in _REPAYMENTS.all(loan_id)]


_LATEST_REQUEST = Prepared(
    lambda pk: (
        CertificateRequest.select()
        .where(CertificateRequest.loan == pk)
        .order_by(CertificateRequest.id.desc())
        .limit(1)
    ),
    1,
)


def rate_table():
    """The loan-rate table from the ``loan_rates`` settings (the rules' default without any).

    The rows are read every time (a change applies at once, in every worker); their parsing
    is kept for the same rows (issue 10: JSON and Decimals, a tenth of a loan view)."""
    return _parsed_rate_table(tuple(_RATE_ROWS.all("loan_rates"))) or DEFAULT_RATE_TABLE


@lru_cache(maxsize=4)
def _parsed_rate_table(rows: tuple) -> tuple:
    # the rules only read the table; its rate maps are shared by every caller
    return tuple(
        (effective_from, MappingProxyType({k: Decimal(v) for k, v in json.loads(value).items()}))
        for effective_from, value in rows
    )


def current_rate(loan: Loan, on: date, table=None) -> Decimal:
    """The rate that applies to ``loan`` on ``on``: the contract rate until a change reaches it."""
    table = table or rate_table()
    try:
        at_contract = rate_for(table, loan.disbursed_on, loan.term_months, loan.first_home)
        now = rate_for_existing_loan(
            table, loan.disbursed_on, on, loan.term_months, loan.first_home
        )
    except ValueError:  # no rate on file for the contract date
        return loan.annual_rate
    return loan.annual_rate if now == at_contract else now


# --- the loan view ------------------------------------------------------------------------


class ScheduleRow(NamedTuple):
    """One instalment of a loan's schedule (a 30-year loan has 360). A tuple: the unpaid ones
    are kept and shared between views (``_unpaid_rows``), so none is ever changed in place."""

    period: int
    due_on: date
    principal: Decimal
    interest: Decimal
    payment: Decimal
    remaining: Decimal
    status: str  # paid / overdue / due / future


@lru_cache(maxsize=32)
def _unpaid_rows(
    outstanding: Decimal, rate: Decimal, left: int, first_due: date, method: str, paid: int
) -> tuple[ScheduleRow, ...]:
    """The instalments still to pay (``rules.money.repayment_schedule`` of what is
    outstanding), numbered after the ``paid`` ones, all "future": a loan's page works them out
    on every view and for every year it pages through, so they are kept for the last few
    loans' terms (issue 10); the view marks the overdue ones and the next one for its day."""
    return tuple(
        ScheduleRow(
            paid + inst.period,
            inst.due_date,
            inst.principal,
            inst.interest,
            inst.payment,
            inst.remaining,
            "future",
        )
        for inst in repayment_schedule(outstanding, rate, left, first_due, method)
    )


@dataclass
class LoanView:
    loan: Loan
    role: str  # borrower / co_borrower
    rate: Decimal
    method_label: str
    schedule: list[ScheduleRow]
    repayments: list[Repayment]
    paid_periods: int
    last_paid_due: date | None
    next_due: ScheduleRow | None
    overdue: list[ScheduleRow]
    paid_rows: int = 0  # the schedule's rows paid (its first ones)
    # the latest request for the settlement certificate and the certificate issued (a settled
    # loan's; an active loan has none)
    settlement_request: CertificateRequest | None = None
    settlement_certificate: Certificate | None = None

    @property
    def overdue_amount(self) -> Decimal:
        return sum((row.payment for row in self.overdue), ZERO)

    @property
    def remaining_periods(self) -> int:
        """Instalments not yet paid (the schedule's rows after its paid ones)."""
        return len(self.schedule) - self.paid_rows

    @property
    def active(self) -> bool:
        return self.loan.status == "active"

    @property
    def rate_text(self) -> str:
        return pct(self.rate)

    @property
    def contract_rate_text(self) -> str:
        return pct(self.loan.annual_rate)

    @property
    def last_due(self) -> date | None:
        """The due date of the final instalment."""
        return self.schedule[-1].due_on if self.schedule else None


def own_loans_query(depositor: Depositor):
    return Loan.select().where(Loan.of(depositor))


def list_loans(depositor: Depositor, today: date) -> list[LoanView]:
    """Every loan of the depositor, with what each view needs read once for all of them
    (issue 10: the same queries however many loans)."""
    loans = list(own_loans_query(depositor).order_by(Loan.status, Loan.disbursed_on.desc()))
    if not loans:
        return []
    ids = [loan.id for loan in loans]
    paid: dict[int, list[Repayment]] = {i: [] for i in ids}
    for row in _repayments_query(LoanRepayment.loan.in_(ids)):
        r = Repayment._make(row)
        paid[r.loan_id].append(r)
    requests: dict[int, CertificateRequest] = {}
    for request in (
        CertificateRequest.select()
        .where(CertificateRequest.loan.in_(ids))
        .order_by(CertificateRequest.id)
    ):
        requests[request.loan_id] = request  # the latest wins
    wanted = [r.certificate_id for r in requests.values() if r.certificate_id]
    certificates = (
        {c.id: c for c in Certificate.select().where(Certificate.id.in_(wanted))} if wanted else {}
    )
    table = rate_table()
    return [
        _view(
            loan,
            depositor,
            today,
            _Prefetched(
                paid[loan.id],
                table,
                requests.get(loan.id),  # nosec B113 - a dict named requests, no HTTP
                certificates.get(getattr(requests.get(loan.id), "certificate_id", None)),  # nosec B113
            ),
        )
        for loan in loans
    ]


@dataclass
class _Prefetched:
    repayments: list[Repayment]
    table: tuple
    request: CertificateRequest | None
    certificate: Certificate | None


def own_loan(depositor: Depositor, loan_id: int) -> Loan:
    loan = _OWN_LOAN.first(depositor.id, loan_id)
    if loan is None:
        raise NotFound(loan_id)
    return loan


def loan_view(depositor: Depositor, loan_id: int, today: date) -> LoanView:
    return _view(own_loan(depositor, loan_id), depositor, today)


def _view(
    loan: Loan, depositor: Depositor, today: date, prefetched: _Prefetched | None = None
) -> LoanView:
    if prefetched is not None:
        repayments = prefetched.repayments
    else:
        repayments = loan_repayments(loan.id)
    scheduled = sorted(
        (r for r in repayments if r.kind == "scheduled" and r.period), key=lambda r: r.period
    )
    rate = current_rate(loan, today, prefetched.table if prefetched else None)
    rows: list[ScheduleRow] = []
    remaining = loan.amount
    for r in scheduled:
        remaining -= r.principal
        rows.append(
            ScheduleRow(r.period, r.due_on, r.principal, r.interest, r.amount, remaining, "paid")
        )
    paid = scheduled[-1].period if scheduled else 0
    left = loan.term_months - paid
    overdue: list[ScheduleRow] = []
    next_due = None
    if loan.status == "active" and left > 0 and loan.outstanding > 0:
        unpaid = _unpaid_rows(
            loan.outstanding, rate, left, add_months(loan.first_due_on, paid), loan.method, paid
        )
        late = 0
        while late < len(unpaid) and unpaid[late].due_on < today:  # the first ones, if any
            late += 1
        overdue = [row._replace(status="overdue") for row in unpaid[:late]]
        rows += overdue
        if late < len(unpaid):
            next_due = unpaid[late]._replace(status="due")
            rows.append(next_due)
            rows += unpaid[late + 1 :]
    if prefetched is not None:
        request, certificate = prefetched.request, prefetched.certificate
    else:
        # only a settled loan has a settlement certificate to ask for (and show)
        request = _LATEST_REQUEST.first(loan.id) if loan.status != "active" else None
        certificate = None
        if request is not None and request.certificate_id:
            certificate = Certificate.get_or_none(Certificate.id == request.certificate_id)
    return LoanView(
        loan=loan,
        role="borrower" if loan.depositor_id == depositor.id else "co_borrower",
        rate=rate,
        method_label=METHOD_LABELS.get(loan.method, loan.method),
        schedule=rows,
        repayments=repayments,
        paid_periods=paid,
        last_paid_due=scheduled[-1].due_on if scheduled else None,
        next_due=next_due,
        overdue=overdue,
        paid_rows=len(scheduled),
        settlement_request=request,
        settlement_certificate=certificate,
    )


def schedule_years(view: LoanView) -> list[int]:
    """The years the schedule or the repayment history covers, in order."""
    return sorted(
        {row.due_on.year for row in view.schedule} | {r.paid_on.year for r in view.repayments}
    )


def schedule_year(view: LoanView, today: date, wanted: int | None = None) -> int | None:
    """The year the loan page shows (issue 10: a year at a time, not 360 rows): ``wanted`` when
    the loan has it, else the year of the next instalment (or of the last repayment)."""
    years = schedule_years(view)
    if wanted in years:
        return wanted
    if view.next_due is not None:
        anchor = view.next_due.due_on.year
    elif view.repayments:
        anchor = view.repayments[-1].paid_on.year
    else:
        anchor = today.year
    if anchor in years:
        return anchor
    return years[-1] if years else None


# --- payoff -------------------------------------------------------------------------------


@dataclass
class PayoffQuote:
    loan: Loan
    on: date
    rate: Decimal
    last_due: date
    principal: Decimal = ZERO
    interest: Decimal = ZERO
    total: Decimal = ZERO
    refused: str | None = None
    assumed_periods: int = 0  # instalments assumed paid as scheduled before ``on``


def payoff_quote(view: LoanView, on: date, today: date) -> PayoffQuote:
    """The early-full-repayment amount on ``on`` (today, or a later day for the calculator).

    Instalments due before ``on`` (from today on) are assumed paid as scheduled; interest runs
    from the last due date to ``on`` (``rules.money.payoff_amount``).
    """
    loan = view.loan
    last_due = view.last_paid_due or loan.disbursed_on
    quote = PayoffQuote(loan=loan, on=on, rate=view.rate, last_due=last_due)
    if loan.status != "active":
        quote.refused = "该笔贷款已结清。"
        return quote
    if view.overdue:
        quote.refused = (
            f"您的贷款有 {len(view.overdue)} 期逾期未还（共 {view.overdue_amount:,.2f} 元），"
            "请先归还逾期款项后再办理提前还清。"
        )
        return quote
    outstanding = loan.outstanding
    for row in view.schedule:
        if row.status != "paid" and today <= row.due_on < on:
            outstanding = row.remaining
            last_due = row.due_on
            quote.assumed_periods += 1
    quote.last_due = last_due
    principal, interest, total = payoff_amount(outstanding, view.rate, last_due, on)
    quote.principal, quote.interest, quote.total = principal, interest, total
    return quote


@dataclass
class PayoffPlan:
    quote: PayoffQuote
    balance: Decimal
    offset: Decimal
    rest: Decimal
    card_masked: str
    can_use_balance: bool
    reasons: list[str] = field(default_factory=list)
    pending: Payout | None = None


def payoff_plan(
    depositor: Depositor, loan_id: int, today: date, use_balance: bool = True
) -> PayoffPlan:
    """What the confirmation page shows: amount, the HPF-balance part and the rest."""
    view = loan_view(depositor, loan_id, today)
    account = Account.get_or_none(Account.depositor == depositor)
    return _plan(depositor, view, account, today, use_balance)


def _plan(depositor, view: LoanView, account, today, use_balance) -> PayoffPlan:
    quote = payoff_quote(view, today, today)
    reasons = [quote.refused] if quote.refused else []
    if view.role != "borrower":
        reasons.append("提前还清须由借款人本人办理。")
    can_use = account is not None and account.status in ("正常", "封存") and account.balance > 0
    balance = account.balance if account is not None else ZERO
    offset = min(balance, quote.total) if (use_balance and can_use) else ZERO
    rest = quote.total - offset
    pending = None
    if account is not None:
        pending = (
            Payout.select()
            .where(
                (Payout.account == account)
                & (Payout.kind == "loan_offset")
                & (Payout.status == PENDING)
            )
            .first()
        )
        if pending is not None:
            reasons.append("您有一笔提前还款正在办理中，请勿重复提交。")
        elif use_balance and other_payout_pending(account, "loan_offset"):
            reasons.append("您的账户有一笔其他支付正在办理中，请办结后再用公积金余额还款。")
    else:
        reasons.append("未查询到您的住房公积金个人账户，请联系 12329。")
    if rest > 0 and not depositor.bank_card and not reasons:
        reasons.append("剩余款项需从本人银行卡支付，请先在“信息变更”中登记本人借记卡。")
    return PayoffPlan(
        quote=quote,
        balance=balance,
        offset=offset,
        rest=rest,
        card_masked=mask_bank_card(depositor.bank_card) if depositor.bank_card else "",
        can_use_balance=can_use,
        reasons=reasons,
        pending=pending,
    )


def payoff_key(loan_id: int, token: str) -> str:
    return f"payoff:{loan_id}:{token}"


def payoff_fingerprint(loan_id: int, use_balance: bool) -> str:
    """What the payoff form asked for (stored with the key; a replay must match it)."""
    return request_fingerprint(kind="loan_offset", loan=loan_id, use_balance=bool(use_balance))


def early_repay(
    depositor: Depositor,
    loan_id: int,
    token: str,
    use_balance: bool,
    challenge_id: int | None,
    code: str,
    today: date,
    actor: str | None = None,
) -> Payout:
    """Settle the loan in full today, exactly once (see :mod:`portal.services.payouts`)."""
    token = check_token(token)
    key = payoff_key(loan_id, token)
    actor = actor or f"depositor:{depositor.id}"
    code_error = None
    with write_tx():
        account = locked(Account.select().where(Account.depositor == depositor)).first()
        loan = locked(own_loans_query(depositor).where(Loan.id == loan_id)).first()
        if loan is None:
            raise NotFound(loan_id)
        payout = Payout.get_or_none(Payout.idempotency_key == key)
        asked = payoff_fingerprint(loan_id, use_balance)
        if payout is not None and not same_request(payout, asked):
            raise Refused(DIFFERENT_REQUEST)
        if payout is None:
            person = Depositor.get_by_id(depositor.id)
            view = _view(loan, person, today)
            plan = _plan(person, view, account, today, use_balance)
            if plan.reasons:
                raise Refused(plan.reasons[0])
            code_error = verify_action_code(person, PAYOFF_PURPOSE, challenge_id, code)
            if code_error is None:
                won = (
                    Loan.update(version=Loan.version + 1)
                    .where((Loan.id == loan.id) & (Loan.version == loan.version))
                    .execute()
                ) and (
                    Account.update(version=Account.version + 1)
                    .where((Account.id == account.id) & (Account.version == account.version))
                    .execute()
                )
                if not won:
                    raise Refused("贷款信息已变化，请刷新页面后重试。")
                q = plan.quote
                payout = Payout.create(
                    account=account,
                    kind="loan_offset",
                    amount=plan.offset,
                    idempotency_key=key,
                    status=PENDING,
                    bank_card=person.bank_card if plan.rest > 0 else None,
                    requested_by=actor,
                    detail={
                        "loan_id": loan.id,
                        "contract_no": loan.contract_no,
                        "on": today.isoformat(),
                        "principal": str(q.principal),
                        "interest": str(q.interest),
                        "total": str(q.total),
                        "offset": str(plan.offset),
                        "rest": str(plan.rest),
                        "rate": str(q.rate),
                        "last_due": q.last_due.isoformat(),
                        "request": asked,
                    },
                )
                audit.record(
                    actor,
                    "payout.pending",
                    "payout",
                    payout.id,
                    kind="loan_offset",
                    loan=loan.contract_no,
                    total=str(q.total),
                    offset=str(plan.offset),
                )
        elif account is None or payout.account_id != account.id:
            raise Refused("请求无效，请刷新页面后重新提交。")
    if code_error:
        raise CodeRejected(code_error)
    if payout.status == REVERSED:  # a retry of a request the reconciliation undid
        raise Refused(REVERSED_REQUEST)
    return complete(payout)


def apply_early_settlement(payout: Payout) -> None:
    """Effects of a confirmed early repayment (called once, inside the confirming transaction)."""
    d = payout.detail
    day = date.fromisoformat(d["on"])
    # lock order everywhere: the account, then the loan (no deadlock with early_repay)
    account = locked(Account.select().where(Account.id == payout.account_id)).get()
    loan = locked(Loan.select().where(Loan.id == d["loan_id"])).get()
    principal, interest = Decimal(d["principal"]), Decimal(d["interest"])
    offset, rest = Decimal(d["offset"]), Decimal(d["rest"])
    offset_interest = min(offset, interest)
    offset_principal = offset - offset_interest
    rows = []
    if offset > 0:
        rows.append(("offset", offset_principal, offset_interest, offset))
    if rest > 0:
        rows.append(("early", principal - offset_principal, interest - offset_interest, rest))
    for i, (kind, part_principal, part_interest, amount) in enumerate(rows):
        LoanRepayment.create(
            loan=loan,
            paid_on=day,
            principal=part_principal,
            interest=part_interest,
            amount=amount,
            kind=kind,
            idempotency_key=payout.idempotency_key if i == 0 else None,
        )
    if offset > 0:
        DepositRecord.create(
            account=account,
            kind="提取",
            posted_on=day,
            amount=-offset,
            balance_after=account.balance - offset,
            memo=f"冲还贷：提前还清贷款 {loan.contract_no}",
        )
        Account.update(balance=Account.balance - offset, version=Account.version + 1).where(
            Account.id == account.id
        ).execute()
    Loan.update(
        outstanding=ZERO,
        status="settled",
        settled_on=day,
        settled_kind="early",
        version=Loan.version + 1,
    ).where(Loan.id == loan.id).execute()


def own_payoff(depositor: Depositor, loan_id: int, payout_id: int) -> Payout:
    payout = (
        Payout.select()
        .join(Account)
        .where(
            (Payout.id == payout_id)
            & (Payout.kind == "loan_offset")
            & (Account.depositor == depositor)
        )
        .first()
    )
    if payout is None or payout.detail.get("loan_id") != loan_id:
        raise NotFound(payout_id)
    return payout


def find_payoff(depositor: Depositor, loan_id: int, token: str) -> Payout | None:
    try:
        token = check_token(token)
    except Refused:
        return None
    payout = Payout.get_or_none(Payout.idempotency_key == payoff_key(loan_id, token))
    if payout is None or payout.account.depositor_id != depositor.id:
        return None
    return payout


# --- the loan-settlement certificate request ----------------------------------------------


def request_settlement_certificate(
    depositor: Depositor, loan_id: int, actor: str | None = None
) -> CertificateRequest:
    """Ask for the 贷款结清证明 of a settled loan; an official issues it on the intranet."""
    actor = actor or f"depositor:{depositor.id}"
    with write_tx():
        loan = locked(Loan.select().where((Loan.id == loan_id) & (Loan.depositor == depositor)))
        loan = loan.first()
        if loan is None:
            raise NotFound(loan_id)
        if loan.status != "settled":
            raise Refused("贷款结清后方可申请贷款结清证明。")
        open_request = (
            CertificateRequest.select()
            .where(
                (CertificateRequest.loan == loan)
                & CertificateRequest.status.in_(("pending", "issued"))
            )
            .first()
        )
        if open_request is not None:
            raise Refused(
                "您已申请过该笔贷款的结清证明（"
                f"{REQUEST_STATUS_LABELS[open_request.status]}），请勿重复申请。"
            )
        request = CertificateRequest.create(loan=loan, source="online", status="pending")
        audit.record(actor, "settlement_certificate.requested", "loan", loan.id, request=request.id)
    return request


# --- quota trial (可贷额度试算) -------------------------------------------------------------


@dataclass
class QuotaTrial:
    quota: LoanQuota
    rate: Decimal
    balance: Decimal
    income: Decimal
    ceiling: Decimal
    multiple: Decimal
    ratio: Decimal
    existing_payments: Decimal
    notes: list[str]

    @property
    def rate_text(self) -> str:
        return pct(self.rate)


def _setting(key: str, on: date, default: str) -> Decimal:
    return Decimal(settings.value_on(key, on, default))


def quota_trial(
    depositor: Depositor,
    monthly_income: Decimal,
    today: date,
    term_years: int | None = None,
    first_home: bool = True,
) -> QuotaTrial:
    """可贷额度试算 with the center's settings on ``today`` (``rules.money.loan_quota``)."""
    account = Account.get_or_none(Account.depositor == depositor)
    balance = account.balance if account else ZERO
    term_months = term_years * 12 if term_years else None
    table = rate_table()
    active = [v for v in list_loans(depositor, today) if v.active]
    existing = sum((v.next_due.payment if v.next_due else ZERO for v in active), ZERO)
    ceiling = _setting("loan_ceiling", today, "600000")
    multiple = _setting("loan_balance_multiple", today, "15")
    ratio = _setting("loan_repayment_ratio", today, "0.5")
    years_after = int(_setting("loan_years_after_retirement", today, "5"))

    def trial(rate: Decimal) -> LoanQuota:
        return loan_quota(
            balance,
            monthly_income,
            ceiling=ceiling,
            balance_multiple=multiple,
            repayment_ratio=ratio,
            rate=rate,
            birth=depositor.birth_date,
            category=depositor.retirement_category,
            today=today,
            existing_monthly_payments=existing,
            requested_term_months=term_months,
            years_after_retirement=years_after,
        )

    rate = rate_for(table, today, term_months or 360, first_home)
    quota = trial(rate)
    if quota.term_months:  # the age limit may shorten the term into the other rate band
        fitting = rate_for(table, today, quota.term_months, first_home)
        if fitting != rate:
            rate, quota = fitting, trial(fitting)
    notes = []
    if active:
        notes.append(
            "您有未结清的住房公积金贷款，结清前不能再次申请住房公积金贷款；"
            "试算已扣除现有贷款的月还款额。"
        )
    if account is None or account.status != "正常":
        notes.append("申请住房公积金贷款须账户处于正常缴存状态。")
    return QuotaTrial(
        quota=quota,
        rate=rate,
        balance=balance,
        income=monthly_income,
        ceiling=ceiling,
        multiple=multiple,
        ratio=ratio,
        existing_payments=existing,
        notes=notes,
    )


def payoff_calendar_limit(today: date) -> date:
    return today + timedelta(days=CALCULATOR_DAYS)
