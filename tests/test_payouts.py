"""Retirement withdrawal and the exactly-once payout flow, sequentially (rolled back).
Real concurrency is in test_payouts_concurrency.py."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from portal.models import (
    Account,
    AuditLog,
    BankTransfer,
    Certificate,
    Depositor,
    DepositRecord,
    Loan,
    OtpChallenge,
    Payout,
    utcnow,
)
from portal.rules.money import accrued_interest, last_settlement_date
from portal.services import bank, payouts
from tests.conftest import TODAY, login_depositor, pdf_text
from tests.hall_helpers import (  # noqa: F401
    fixed_today,
    not_retired_without_loan,
    retired_eligible,
    send_code,
    service_code,
    soup,
)

TOKEN = "0123456789abcdef0123456789abcdef"
OTHER_TOKEN = "fedcba9876543210fedcba9876543210"


def _retire(depositor, token=TOKEN, today=TODAY):
    challenge, code = service_code(depositor, "withdraw")
    return payouts.retire(depositor, token, challenge, code, today)


# --- eligibility and amount ---------------------------------------------------------------


def test_amount_is_balance_plus_interest_since_the_last_settlement():
    depositor = retired_eligible()
    account = Account.get(Account.depositor == depositor)
    quote = payouts.retirement_quote(depositor, TODAY)
    events = [
        (r.posted_on, r.balance_after)
        for r in DepositRecord.select()
        .where(DepositRecord.account == account)
        .order_by(DepositRecord.posted_on, DepositRecord.id)
    ]
    expected = accrued_interest(events, last_settlement_date(TODAY), TODAY)
    assert quote.eligible and quote.interest == expected > 0
    assert quote.interest_since == last_settlement_date(TODAY)
    assert quote.amount == account.balance + expected


def test_not_retired_is_refused_with_the_statutory_date():
    depositor = not_retired_without_loan()
    quote = payouts.retirement_quote(depositor, TODAY)
    d = quote.statutory_date
    assert quote.reasons == [
        f"您尚未达到法定退休年龄（法定退休日期：{d.year}年{d.month}月{d.day}日），"
        "且未登记退休，暂不能办理退休提取。"
    ]
    with pytest.raises(payouts.Refused, match="尚未达到法定退休年龄"):
        _retire(depositor)


def test_outstanding_loan_is_refused():
    depositor = retired_eligible()
    Loan.create(
        contract_no="TESTLOAN0001",
        loan_account_no="TESTLOANACC1",
        depositor=depositor,
        amount=Decimal("100000.00"),
        term_months=120,
        annual_rate=Decimal("0.026"),
        method="annuity",
        disbursed_on=TODAY - timedelta(days=400),
        first_due_on=TODAY - timedelta(days=370),
        outstanding=Decimal("90000.00"),
    )
    reasons = payouts.retirement_quote(depositor, TODAY).reasons
    assert reasons == [
        "您有未结清的住房公积金贷款（合同号 TESTLOAN0001），请先还清贷款后再办理退休提取。"
    ]


@pytest.mark.parametrize(
    "status, reason",
    [
        ("冻结", "您的住房公积金账户已冻结，暂不能办理提取，请联系所属管理部。"),
        ("销户", "您的住房公积金账户已销户，无可提取余额。"),
    ],
)
def test_frozen_or_closed_account_is_refused(status, reason):
    depositor = retired_eligible()
    Account.update(status=status).where(Account.depositor == depositor).execute()
    assert payouts.retirement_quote(depositor, TODAY).reasons == [reason]
    with pytest.raises(payouts.Refused, match=reason[:8]):
        _retire(depositor)


def test_card_changed_within_seven_days_is_refused_until_the_eighth_day():
    depositor = retired_eligible()
    changed = utcnow() - timedelta(days=2)
    Depositor.update(bank_card_changed_at=changed).where(Depositor.id == depositor.id).execute()
    depositor = Depositor.get_by_id(depositor.id)
    on = payouts.local_date(changed)
    quote = payouts.retirement_quote(depositor, on + timedelta(days=6))
    usable = on + timedelta(days=7)
    assert quote.reasons == [
        f"您的提取银行卡于 {on.year}年{on.month}月{on.day}日 变更，为保障资金安全，"
        f"变更 7 日后方可提取（{usable.year}年{usable.month}月{usable.day}日 起可办理）。"
    ]
    assert payouts.retirement_quote(depositor, usable).eligible


def test_several_reasons_are_all_listed():
    depositor = not_retired_without_loan()
    Account.update(status="冻结").where(Account.depositor == depositor).execute()
    reasons = payouts.retirement_quote(depositor, TODAY).reasons
    assert len(reasons) == 2 and "法定退休" in reasons[0] and "冻结" in reasons[1]


# --- the flow -----------------------------------------------------------------------------


def test_retire_pays_once_closes_the_account_and_audits():
    depositor = retired_eligible()
    quote = payouts.retirement_quote(depositor, TODAY)
    payout = _retire(depositor)
    assert payout.status == "confirmed" and payout.amount == quote.amount
    account = Account.get(Account.depositor == depositor)
    assert account.status == "销户" and account.balance == 0 and account.closed_on == TODAY
    lines = list(
        DepositRecord.select()
        .where(DepositRecord.account == account)
        .order_by(DepositRecord.id.desc())
        .limit(2)
    )
    assert [(r.kind, r.amount) for r in lines] == [
        ("提取", -quote.amount),
        ("结息", quote.interest),
    ]
    transfer = BankTransfer.get(BankTransfer.idempotency_key == payout.idempotency_key)
    assert transfer.direction == "out" and transfer.amount == quote.amount
    assert transfer.card == depositor.bank_card and payout.bank_ref == transfer.reference
    actions = [
        a.action
        for a in AuditLog.select().where(
            (AuditLog.target_type == "payout") & (AuditLog.target_id == str(payout.id))
        )
    ]
    assert actions == ["payout.pending", "payout.confirmed"]
    assert depositor.bank_card not in str([a.detail for a in AuditLog.select()])


def test_same_key_twice_is_the_same_payout_and_one_transfer():
    depositor = retired_eligible()
    first = _retire(depositor)
    again = payouts.retire(depositor, TOKEN, None, "000000", TODAY)  # no code needed to resume
    assert again.id == first.id
    assert (
        BankTransfer.select().where(BankTransfer.idempotency_key == first.idempotency_key).count()
        == 1
    )
    assert (
        DepositRecord.select()
        .where(
            (DepositRecord.account == first.account)
            & (DepositRecord.kind == "提取")
            & (DepositRecord.posted_on == TODAY)
        )
        .count()
        == 1
    )


def test_another_key_after_the_payout_is_refused():
    depositor = retired_eligible()
    _retire(depositor)
    with pytest.raises(payouts.Refused, match="已销户"):
        _retire(depositor, OTHER_TOKEN)
    assert Payout.select().join(Account).where(Account.depositor == depositor).count() == 1


def test_a_pending_payout_blocks_a_second_one():
    depositor = retired_eligible()
    account = Account.get(Account.depositor == depositor)
    Payout.create(
        account=account,
        kind="retirement",
        amount=Decimal("1.00"),
        idempotency_key="retire:x:pending",
        status="pending",
        bank_card=depositor.bank_card,
    )
    with pytest.raises(payouts.Refused, match="正在办理中"):
        _retire(depositor)


def test_wrong_code_changes_nothing_and_counts_the_attempt():
    depositor = retired_eligible()
    challenge, code = service_code(depositor, "withdraw")
    wrong = "000000" if code != "000000" else "111111"
    with pytest.raises(payouts.CodeRejected, match="验证码不正确"):
        payouts.retire(depositor, TOKEN, challenge, wrong, TODAY)
    assert OtpChallenge.get_by_id(challenge).attempts == 1
    assert (
        not Payout.select()
        .where(Payout.idempotency_key == payouts.retirement_key(depositor, TOKEN))
        .exists()
    )
    assert Account.get(Account.depositor == depositor).status != "销户"


def test_code_for_another_purpose_is_refused():
    depositor = retired_eligible()
    challenge, code = service_code(depositor, "change")
    with pytest.raises(payouts.CodeRejected):
        payouts.retire(depositor, TOKEN, challenge, code, TODAY)


@pytest.mark.parametrize("token", ["", "abc", "../../etc", "G" * 32])
def test_malformed_token_is_refused(token):
    with pytest.raises(payouts.Refused, match="页面已过期"):
        payouts.retire(retired_eligible(), token, None, "123456", TODAY)


def test_bank_refusal_reverses_and_leaves_the_account(monkeypatch):
    depositor = retired_eligible()

    def refuse(*args, **kwargs):
        raise bank.BankError("收款账户状态异常")

    monkeypatch.setattr(bank.bank(), "pay_out", refuse)
    with pytest.raises(payouts.Refused, match="银行未能完成转账"):
        _retire(depositor)
    payout = Payout.get(Payout.idempotency_key == payouts.retirement_key(depositor, TOKEN))
    assert payout.status == "reversed"
    assert Account.get(Account.depositor == depositor).status == "正常"


def test_bank_silence_leaves_pending_then_reconcile_reverses(monkeypatch):
    depositor = retired_eligible()

    def timeout(*args, **kwargs):
        raise bank.BankUnavailable("timeout")

    monkeypatch.setattr(bank.bank(), "pay_out", timeout)
    with pytest.raises(payouts.InProgress):
        _retire(depositor)
    payout = Payout.get(Payout.idempotency_key == payouts.retirement_key(depositor, TOKEN))
    assert payout.status == "pending"
    assert payouts.reconcile().reversed == 0  # still within the grace period
    result = payouts.reconcile(older_than_seconds=0)
    assert result.reversed >= 1
    assert Payout.get_by_id(payout.id).status == "reversed"
    assert Account.get(Account.depositor == depositor).status == "正常"


def test_crash_after_the_bank_paid_is_completed_by_reconcile(runner):
    """The bank has the transfer but the process died before confirming."""
    depositor = retired_eligible()
    quote = payouts.retirement_quote(depositor, TODAY)
    account = quote.account
    key = payouts.retirement_key(depositor, TOKEN)
    payout = Payout.create(
        account=account,
        kind="retirement",
        amount=quote.amount,
        idempotency_key=key,
        status="pending",
        bank_card=depositor.bank_card,
        created_at=utcnow() - timedelta(minutes=10),
        detail={
            "on": TODAY.isoformat(),
            "balance": str(quote.balance),
            "interest": str(quote.interest),
            "interest_since": quote.interest_since.isoformat(),
        },
    )
    bank.bank().pay_out(key, depositor.bank_card, quote.amount)
    result = runner.invoke(args=["payouts", "reconcile"])
    assert result.exit_code == 0 and "confirmed 1" in result.output
    assert Payout.get_by_id(payout.id).status == "confirmed"
    account = Account.get_by_id(account.id)
    assert account.status == "销户" and account.balance == 0
    assert payouts.reconcile(older_than_seconds=0).confirmed == 0  # nothing left


def test_reconcile_on_start_runs_without_failing():
    assert payouts.reconcile_on_start() is not None


# --- pages --------------------------------------------------------------------------------


@pytest.mark.usefixtures("fixed_today")
def test_withdrawal_pages_end_to_end(client):
    depositor = retired_eligible()
    quote = payouts.retirement_quote(depositor, TODAY)
    login_depositor(client, depositor)
    page = soup(client.get("/me/retirement"))
    assert page.select_one(".balance-value").get_text() == f"{quote.amount:,.2f}"
    token = page.select_one("input[name=token]")["value"]
    assert len(token) == 32
    assert page.select_one("button[form=send-withdraw]")
    # without a code: 422, nothing paid
    r = client.post("/me/retirement", data={"token": token, "code": ""})
    assert r.status_code == 422 and "此项必填" in soup(r).select_one("#code-error").get_text()
    code = send_code(client, depositor, "withdraw")
    r = client.post("/me/retirement", data={"token": token, "code": code})
    assert r.status_code == 303 and "/me/retirement/receipt/" in r.headers["Location"]
    receipt = soup(client.get(r.headers["Location"]))
    assert receipt.select_one(".balance-value").get_text() == f"{quote.amount:,.2f}"
    assert depositor.bank_card not in receipt.get_text()
    # double submit with the same form: the same receipt, nothing paid twice
    again = client.post("/me/retirement", data={"token": token, "code": code})
    assert again.status_code == 303 and again.headers["Location"] == r.headers["Location"]
    # a second tab (another token) is refused clearly
    other = client.post("/me/retirement", data={"token": OTHER_TOKEN, "code": "123456"})
    assert other.status_code == 422
    assert "已销户" in soup(other).select_one(".alert-error").get_text()
    assert Payout.select().join(Account).where(Account.depositor == depositor).count() == 1
    # the page now says it is done
    assert "您已办理退休提取" in client.get("/me/retirement").get_data(as_text=True)


@pytest.mark.usefixtures("fixed_today")
def test_receipt_pdf_is_generated_once_and_verifiable(client):
    depositor = retired_eligible()
    payout = _retire(depositor)
    login_depositor(client, depositor)
    url = f"/me/retirement/receipt/{payout.id}.pdf"
    first = client.get(url)
    assert first.headers["Content-Type"] == "application/pdf"
    text = pdf_text(first.data)
    assert "正常退休提取" in text and f"{payout.amount:,.2f}" in text
    assert depositor.resident_id not in text
    assert client.get(url).data == first.data
    receipts = Certificate.select().where(
        (Certificate.kind == "retirement_receipt") & (Certificate.depositor == depositor)
    )
    assert receipts.count() == 1
    code = receipts.get().verify_code
    assert "真实有效" in client.get(f"/verify/{code}").get_data(as_text=True)


@pytest.mark.usefixtures("fixed_today")
def test_wrong_code_on_the_page_is_shown_next_to_the_field(client):
    depositor = retired_eligible()
    login_depositor(client, depositor)
    token = soup(client.get("/me/retirement")).select_one("input[name=token]")["value"]
    code = send_code(client, depositor, "withdraw")
    wrong = "000000" if code != "000000" else "111111"
    r = client.post("/me/retirement", data={"token": token, "code": wrong})
    assert r.status_code == 422
    assert soup(r).select_one("#code-error").get_text() == "验证码不正确"
    assert Account.get(Account.depositor == depositor).status != "销户"


@pytest.mark.usefixtures("fixed_today")
def test_refusal_page_lists_reasons_and_offers_no_form(client):
    depositor = not_retired_without_loan()
    login_depositor(client, depositor)
    page = soup(client.get("/me/retirement"))
    assert "尚未达到法定退休年龄" in page.select_one(".reasons").get_text()
    assert page.select_one("input[name=token]") is None
    token = "1" * 32
    r = client.post("/me/retirement", data={"token": token, "code": "123456"})
    assert (
        r.status_code == 422
        and "尚未达到法定退休年龄" in soup(r).select_one(".alert-error").get_text()
    )


def test_someone_elses_receipt_is_404(client, other_depositor):
    depositor = retired_eligible()
    payout = _retire(depositor)
    login_depositor(client, other_depositor)
    assert client.get(f"/me/retirement/receipt/{payout.id}").status_code == 404
    assert client.get(f"/me/retirement/receipt/{payout.id}.pdf").status_code == 404


def test_send_code_fragment_and_throttle(client):
    depositor = retired_eligible()
    login_depositor(client, depositor)
    r = client.post("/me/code/withdraw", headers={"HX-Request": "true"})
    assert r.status_code == 200 and "验证码已发送至手机" in r.get_data(as_text=True)
    assert depositor.phone not in r.get_data(as_text=True)
    again = client.post("/me/code/withdraw", headers={"HX-Request": "true"})
    assert "1 分钟后" in again.get_data(as_text=True)
    assert client.post("/me/code/other").status_code == 404
