"""Money leaving the fund, exactly once (DESIGN.md section 3), and the retirement withdrawal.

The flow for every payout:

1. **begin** — one write transaction locks the account (``FOR UPDATE`` on PostgreSQL, the
   ``BEGIN IMMEDIATE`` write lock on SQLite), checks the rules again on fresh data, checks the
   one-time code, bumps the account's ``version`` by a conditional update and inserts the payout
   as ``pending`` with a unique idempotency key. A second request with the same key (double click)
   finds that row and continues it; a second request with another key (two tabs) finds the first
   one pending or the account closed and is refused.
2. **bank** — the adapter is called with the same key; it is idempotent by key.
3. **confirm** — a conditional update ``pending → confirmed`` (one caller wins) applies the
   effects once: the account is closed (retirement), the loan is settled (early repayment).

A crash between 1 and 3 leaves a pending payout: :func:`reconcile` (on start, by
``flask --app portal payouts reconcile`` and when the depositor opens the page again) completes it
when the bank has the transfer and reverses it when not. Only payouts older than a grace period
are reconciled, so a request still in flight in another process is not reversed under it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from peewee import JOIN

from portal.db import locked, write_tx
from portal.models import Account, Depositor, DepositRecord, Loan, Payout, utcnow
from portal.rules.ids import mask_bank_card
from portal.rules.money import DEPOSIT_RATE, accrued_interest, last_settlement_date
from portal.rules.retirement import retirement_eligibility
from portal.services import audit, bank, identity, settings

log = logging.getLogger(__name__)

CARD_WAIT_DAYS = 7
RECONCILE_GRACE_SECONDS = 120
TOKEN_RE = re.compile(r"^[0-9a-f]{32}$")
WITHDRAW_PURPOSE = "withdraw"
SHANGHAI_OFFSET = timedelta(hours=8)  # Asia/Shanghai has no daylight saving time

PENDING, CONFIRMED, REVERSED = "pending", "confirmed", "reversed"
OUT_KINDS = ("retirement", "purchase")  # paid out to the depositor's card by the bank adapter


class Refused(Exception):
    """The action is not allowed; the message is for the depositor."""


class CodeRejected(Refused):
    """The one-time code was wrong, expired or used (shown next to the code field)."""


class InProgress(Refused):
    """The bank did not answer; the payout stays pending and will be reconciled."""


def deposit_rate(on: date) -> Decimal:
    return Decimal(settings.value_on("deposit_rate", on, str(DEPOSIT_RATE)))


def local_date(moment: datetime) -> date:
    """The Asia/Shanghai date of a naive UTC timestamp."""
    return (moment.replace(tzinfo=UTC) + SHANGHAI_OFFSET).date()


def fmt_day(d: date) -> str:
    return f"{d.year}年{d.month}月{d.day}日"


# --- the retirement withdrawal: eligibility and amount ------------------------------------


@dataclass
class RetirementQuote:
    """What the retirement-withdrawal page shows; ``reasons`` empty means eligible."""

    account: Account | None
    reasons: list[str] = field(default_factory=list)
    statutory_date: date | None = None
    basis: str | None = None  # recorded / statutory_age
    balance: Decimal = Decimal("0.00")
    interest: Decimal = Decimal("0.00")
    interest_since: date | None = None
    card_masked: str = ""
    bank_name: str = ""
    card_usable_from: date | None = None
    pending: Payout | None = None
    done: Payout | None = None
    rate: Decimal = DEPOSIT_RATE

    @property
    def rate_text(self) -> str:
        return f"{format((self.rate * 100).normalize(), 'f')}%"

    @property
    def eligible(self) -> bool:
        return not self.reasons

    @property
    def amount(self) -> Decimal:
        return self.balance + self.interest


def _active_loans(depositor: Depositor):
    return Loan.select().where(Loan.of(depositor) & (Loan.status == "active"))


def accrued(account: Account, today: date) -> tuple[Decimal, date]:
    """Interest accrued since the last 30 June settlement (积数 method) and that date."""
    since = account.last_interest_on or last_settlement_date(today)
    opening = (
        DepositRecord.select(DepositRecord.balance_after)
        .where((DepositRecord.account == account) & (DepositRecord.posted_on < since))
        .order_by(DepositRecord.posted_on.desc(), DepositRecord.id.desc())
        .scalar()
    )
    events = [
        (r.posted_on, r.balance_after)
        for r in DepositRecord.select(DepositRecord.posted_on, DepositRecord.balance_after)
        .where(
            (DepositRecord.account == account)
            & (DepositRecord.posted_on >= since)
            & (DepositRecord.posted_on < today)
        )
        .order_by(DepositRecord.posted_on, DepositRecord.id)
    ]
    opening = opening if opening is not None else Decimal("0.00")
    if today <= since:
        return Decimal("0.00"), since
    interest = accrued_interest(events, since, today, deposit_rate(today), opening)
    return max(interest, Decimal("0.00")), since


def _retirement_quote(depositor: Depositor, account: Account | None, today: date):
    quote = RetirementQuote(account=account)
    if account is None:
        quote.reasons.append("未查询到您的住房公积金个人账户，请联系 12329。")
        return quote
    quote.pending = (
        Payout.select()
        .where(
            (Payout.account == account) & (Payout.kind == "retirement") & (Payout.status == PENDING)
        )
        .first()
    )
    quote.done = (
        Payout.select()
        .where(
            (Payout.account == account)
            & (Payout.kind == "retirement")
            & (Payout.status == CONFIRMED)
        )
        .first()
    )
    eligibility = retirement_eligibility(
        depositor.birth_date, depositor.retirement_category, depositor.retired_on, today
    )
    quote.statutory_date, quote.basis = eligibility.statutory_date, eligibility.basis
    if account.status == "销户":
        quote.reasons.append("您的住房公积金账户已销户，无可提取余额。")
        return quote
    if quote.pending is not None:
        quote.reasons.append("您有一笔退休提取正在办理中，请勿重复提交。")
    elif other_payout_pending(account, "retirement"):
        quote.reasons.append("您的账户有一笔其他支付正在办理中，请办结后再办理退休提取。")
    if not eligibility:
        quote.reasons.append(
            f"您尚未达到法定退休年龄（法定退休日期：{fmt_day(eligibility.statutory_date)}），"
            "且未登记退休，暂不能办理退休提取。"
        )
    if account.status == "冻结":
        quote.reasons.append("您的住房公积金账户已冻结，暂不能办理提取，请联系所属管理部。")
    loans = list(_active_loans(depositor))
    if loans:
        numbers = "、".join(loan.contract_no for loan in loans)
        quote.reasons.append(
            f"您有未结清的住房公积金贷款（合同号 {numbers}），请先还清贷款后再办理退休提取。"
        )
    if not depositor.bank_card:
        quote.reasons.append("您尚未登记提取银行卡，请先在“信息变更”中登记本人借记卡。")
    else:
        quote.card_masked = mask_bank_card(depositor.bank_card)
        quote.bank_name = depositor.bank_name
        if depositor.bank_card_changed_at is not None:
            changed_on = local_date(depositor.bank_card_changed_at)
            usable = changed_on + timedelta(days=CARD_WAIT_DAYS)
            if today < usable:
                quote.card_usable_from = usable
                quote.reasons.append(
                    f"您的提取银行卡于 {fmt_day(changed_on)} 变更，为保障资金安全，"
                    f"变更 {CARD_WAIT_DAYS} 日后方可提取（{fmt_day(usable)} 起可办理）。"
                )
    quote.balance = account.balance
    quote.rate = deposit_rate(today)
    quote.interest, quote.interest_since = accrued(account, today)
    if not quote.reasons and quote.amount <= 0:
        quote.reasons.append("您的账户余额为零，无需办理提取。")
    return quote


def other_payout_pending(account: Account, kind: str) -> bool:
    """Another kind of payout of the account is still pending (its amount leaves the balance
    only when it is confirmed, so nothing else may be paid from the balance meanwhile)."""
    return (
        Payout.select()
        .where((Payout.account == account) & (Payout.status == PENDING) & (Payout.kind != kind))
        .exists()
    )


def retirement_quote(depositor: Depositor, today: date) -> RetirementQuote:
    """Eligibility (every refusal reason that applies) and the amount, without changing data."""
    account = Account.get_or_none(Account.depositor == depositor)
    return _retirement_quote(depositor, account, today)


# --- the exactly-once flow ----------------------------------------------------------------


def retirement_key(depositor: Depositor, token: str) -> str:
    return f"retire:{depositor.id}:{token}"


def request_fingerprint(**fields) -> str:
    """A hash of what a money form asked for, stored with its idempotency key: a replay with
    the same key must ask for the same thing (issue 9, point 16)."""
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def same_request(payout: Payout, fingerprint: str) -> bool:
    """Whether a replay asks for what the stored payout was created for."""
    stored = (payout.detail or {}).get("request")
    return stored is None or hmac.compare_digest(stored, fingerprint)


REVERSED_REQUEST = "上次提交未能完成，已撤销，资金未转出。请刷新页面后重新提交。"
DIFFERENT_REQUEST = "该请求编号已用于内容不同的另一笔业务，本次未办理。请刷新页面后重新提交。"


def check_token(token: str | None) -> str:
    token = (token or "").strip().lower()
    if not TOKEN_RE.match(token):
        raise Refused("页面已过期，请刷新页面后重新提交。")
    return token


def verify_action_code(depositor, purpose: str, challenge_id, code: str) -> str | None:
    """Check the one-time code inside the caller's transaction; the error text or None."""
    try:
        identity.verify_code(challenge_id, purpose, f"d:{depositor.id}", code)
    except identity.CodeFailed as exc:
        return str(exc)
    return None


def retire(
    depositor: Depositor,
    token: str,
    challenge_id: int | None,
    code: str,
    today: date,
    actor: str | None = None,
) -> Payout:
    """Pay the whole balance plus accrued interest to the card on file and close the account."""
    token = check_token(token)
    key = retirement_key(depositor, token)
    fingerprint = request_fingerprint(kind="retirement", depositor=depositor.id)
    actor = actor or f"depositor:{depositor.id}"
    code_error = None
    with write_tx():
        account = locked(Account.select().where(Account.depositor == depositor)).first()
        payout = Payout.get_or_none(Payout.idempotency_key == key)
        if payout is not None and not same_request(payout, fingerprint):
            raise Refused(DIFFERENT_REQUEST)
        if payout is None:
            person = Depositor.get_by_id(depositor.id)  # fresh: the card may have changed
            quote = _retirement_quote(person, account, today)
            if not quote.eligible:
                raise Refused(quote.reasons[0])
            code_error = verify_action_code(person, WITHDRAW_PURPOSE, challenge_id, code)
            if code_error is None:
                won = (
                    Account.update(version=Account.version + 1)
                    .where((Account.id == account.id) & (Account.version == account.version))
                    .execute()
                )
                if not won:  # cannot happen under the lock; never pay on a stale read
                    raise Refused("账户信息已变化，请刷新页面后重试。")
                payout = Payout.create(
                    account=account,
                    kind="retirement",
                    amount=quote.amount,
                    idempotency_key=key,
                    status=PENDING,
                    bank_card=person.bank_card,
                    requested_by=actor,
                    detail={
                        "on": today.isoformat(),
                        "balance": str(quote.balance),
                        "interest": str(quote.interest),
                        "interest_since": quote.interest_since.isoformat(),
                        "basis": quote.basis,
                        "bank_name": person.bank_name,
                        "request": fingerprint,
                    },
                )
                audit.record(
                    actor,
                    "payout.pending",
                    "payout",
                    payout.id,
                    kind="retirement",
                    amount=str(payout.amount),
                    card=mask_bank_card(person.bank_card),
                )
        elif payout.account_id != (account.id if account else None):
            raise Refused("请求无效，请刷新页面后重新提交。")
    if code_error:
        raise CodeRejected(code_error)
    if payout.status == REVERSED:  # a retry of a request the reconciliation undid
        raise Refused(REVERSED_REQUEST)
    return complete(payout)


def bank_leg(payout: Payout):
    """Ask the adapter to move the money (idempotent by key); the transfer, or None when the
    payout has no bank leg (an early repayment paid wholly from the HPF balance)."""
    if payout.kind in OUT_KINDS:
        return bank.bank().pay_out(payout.idempotency_key, payout.bank_card, payout.amount)
    if payout.kind == "loan_offset":
        rest = Decimal(payout.detail.get("rest", "0"))
        if rest <= 0:
            return None
        return bank.payments().collect(payout.idempotency_key, payout.bank_card, rest)
    raise ValueError(f"no bank leg for payout kind {payout.kind!r}")


def find_bank_leg(payout: Payout):
    """What the bank knows about this payout: (has_leg, transfer or None)."""
    if payout.kind == "loan_offset" and Decimal(payout.detail.get("rest", "0")) <= 0:
        return False, None
    ledger = bank.bank() if payout.kind in OUT_KINDS else bank.payments()
    return True, ledger.find(payout.idempotency_key)


def complete(payout: Payout) -> Payout:
    """Steps 2 and 3 for a pending payout (safe to call from several requests at once)."""
    if payout.status != PENDING:
        return payout
    try:
        transfer = bank_leg(payout)
    except bank.BankUnavailable:
        log.warning("bank unavailable for payout %s; left pending", payout.id)
        raise InProgress("银行暂时无法处理，业务已受理，结果将在核对后更新，请稍后查看。") from None
    except bank.BankError as exc:
        reverse(payout, f"bank refused: {exc}")
        raise Refused(f"银行未能完成转账：{exc}。本次业务已撤销，未扣减您的账户。") from None
    return confirm(payout, transfer.reference if transfer else None)


def confirm(payout: Payout, reference: str | None) -> Payout:
    with write_tx():
        won = (
            Payout.update(status=CONFIRMED, bank_ref=reference, confirmed_at=utcnow())
            .where((Payout.id == payout.id) & (Payout.status == PENDING))
            .execute()
        )
        fresh = Payout.get_by_id(payout.id)
        if won:
            _apply_effects(fresh)
            audit.record(
                fresh.requested_by or "system",
                "payout.confirmed",
                "payout",
                fresh.id,
                kind=fresh.kind,
                amount=str(fresh.amount),
                bank_ref=reference or "",
            )
            from portal.services import notices  # issue 11: tell the depositor (inbox and SMS)

            notices.payout_confirmed(fresh)
    return fresh


def reverse(payout: Payout, reason: str) -> bool:
    """Mark a pending payout reversed (nothing was applied to the account)."""
    with write_tx():
        won = (
            Payout.update(status=REVERSED, detail={**payout.detail, "reversed": reason})
            .where((Payout.id == payout.id) & (Payout.status == PENDING))
            .execute()
        )
        if won:
            audit.record("system", "payout.reversed", "payout", payout.id, reason=reason)
    return bool(won)


def _apply_effects(payout: Payout) -> None:
    if payout.kind == "retirement":
        _close_account(payout)
    elif payout.kind == "loan_offset":
        from portal.services.loans import apply_early_settlement

        apply_early_settlement(payout)
    elif payout.kind == "purchase":  # home-purchase withdrawal (services.processing)
        from portal.services.processing import apply_purchase_withdrawal

        apply_purchase_withdrawal(payout)
    else:  # pragma: no cover - other kinds belong to other items
        raise ValueError(f"unknown payout kind {payout.kind!r}")


def _close_account(payout: Payout) -> None:
    day = date.fromisoformat(payout.detail["on"])
    account = locked(Account.select().where(Account.id == payout.account_id)).get()
    interest = Decimal(payout.detail.get("interest", "0"))
    balance = account.balance
    if interest > 0:
        balance += interest
        DepositRecord.create(
            account=account,
            kind="结息",
            posted_on=day,
            amount=interest,
            balance_after=balance,
            memo="销户结息",
        )
    balance -= payout.amount
    DepositRecord.create(
        account=account,
        kind="提取",
        posted_on=day,
        amount=-payout.amount,
        balance_after=balance,
        memo="正常退休提取（销户）",
    )
    Account.update(
        balance=balance, status="销户", closed_on=day, version=Account.version + 1
    ).where(Account.id == account.id).execute()


# --- reconciliation -----------------------------------------------------------------------


@dataclass
class ReconcileResult:
    confirmed: int = 0
    reversed: int = 0
    left: int = 0


def reconcile(
    older_than_seconds: int = RECONCILE_GRACE_SECONDS, account: Account | None = None
) -> ReconcileResult:
    """Complete pending payouts the bank has made; reverse those it has not."""
    result = ReconcileResult()
    cutoff = utcnow() - timedelta(seconds=older_than_seconds)
    query = Payout.select().where((Payout.status == PENDING) & (Payout.created_at <= cutoff))
    if account is not None:
        query = query.where(Payout.account == account)
    for payout in list(query.order_by(Payout.id)):
        try:
            has_leg, transfer = find_bank_leg(payout)
        except bank.BankUnavailable:
            result.left += 1
            continue
        if transfer is not None or not has_leg:
            confirm(payout, transfer.reference if transfer else None)
            result.confirmed += 1
        elif reverse(payout, "reconcile: no bank transfer"):
            result.reversed += 1
    if result.confirmed or result.reversed:
        log.info("payout reconciliation: %s", result)
    return result


def own_payout(depositor: Depositor, payout_id: int, kind: str | None = None) -> Payout | None:
    """A payout of this depositor's account (None for anyone else's)."""
    query = (
        Payout.select(Payout, Account)
        .join(Account, JOIN.INNER)
        .where((Payout.id == payout_id) & (Account.depositor == depositor))
    )
    if kind:
        query = query.where(Payout.kind == kind)
    return query.first()


def find_by_token(depositor: Depositor, token: str) -> Payout | None:
    try:
        token = check_token(token)
    except Refused:
        return None
    payout = Payout.get_or_none(Payout.idempotency_key == retirement_key(depositor, token))
    return payout


# --- app integration: reconcile on start and the CLI command ------------------------------


def init_app(app) -> None:
    import click

    from portal.db import db

    @app.cli.group("payouts", help="Exactly-once payouts.")
    def payouts_group():
        pass

    @payouts_group.command("reconcile", help="Complete or reverse pending payouts.")
    @click.option(
        "--older-than",
        default=RECONCILE_GRACE_SECONDS,
        show_default=True,
        help="Only payouts pending at least this many seconds.",
    )
    def reconcile_command(older_than: int):
        db.connect(reuse_if_open=True)
        result = reconcile(older_than)
        click.echo(
            f"confirmed {result.confirmed}, reversed {result.reversed}, left pending {result.left}"
        )

    reconcile_on_start(app.config.get("RECONCILE_GRACE_SECONDS", RECONCILE_GRACE_SECONDS))


def reconcile_on_start(older_than: int = RECONCILE_GRACE_SECONDS) -> ReconcileResult | None:
    """Reconcile when the application starts; skipped while the schema is not there yet."""
    from portal.db import db

    try:
        db.connect(reuse_if_open=True)
        if not db.table_exists("payout") or not db.table_exists("bank_transfer"):
            return None
        return reconcile(older_than)
    except Exception:  # a start must not fail because reconciliation could not run
        log.exception("payout reconciliation on start failed")
        return None
    finally:
        if not db.in_transaction():
            db.close()
