"""Exactly one payout under real concurrency: threads on committed data (SQLite and, with
TEST_DATABASE_URL, PostgreSQL). Each test creates its own depositor and deletes it afterwards."""

from __future__ import annotations

import secrets
import threading
from datetime import date, timedelta
from decimal import Decimal

import pytest

from portal.db import db
from portal.models import (
    Account,
    BankTransfer,
    Depositor,
    DepositRecord,
    Loan,
    LoanRepayment,
    OtpChallenge,
    Payout,
    SmsMessage,
)
from portal.rules.ids import luhn_check_digit, resident_id_check_char
from portal.services import identity, loans, payouts
from tests.conftest import TODAY

pytestmark = pytest.mark.committed
THREADS = 8


@pytest.fixture
def person():
    """A retired depositor with an account and a little history, committed; removed after."""
    db.connect(reuse_if_open=True)
    tag = secrets.randbelow(10**6)
    first17 = f"15292119580101{tag % 1000:03d}"
    card = "622202" + f"{tag:012d}"
    with db.atomic():
        depositor = Depositor.create(
            resident_id=first17 + resident_id_check_char(first17),
            name="并发测试",
            sex="M",
            birth_date=date(1958, 1, 1),
            retirement_category="male",
            retired_on=date(2018, 1, 1),
            phone=f"1990000{tag % 10000:04d}",
            bank_card=card + luhn_check_digit(card),
            bank_name="中国银行",
        )
        account = Account.create(
            account_no=f"T{tag:010d}",
            depositor=depositor,
            deposit_base=Decimal("5000.00"),
            opened_on=date(2010, 1, 1),
            balance=Decimal("50000.00"),
            last_interest_on=date(TODAY.year, 6, 30),
        )
        DepositRecord.create(
            account=account,
            kind="结息",
            posted_on=date(TODAY.year, 6, 30),
            amount=Decimal("500.00"),
            balance_after=Decimal("50000.00"),
        )
    db.close()
    yield depositor
    db.connect(reuse_if_open=True)
    with db.atomic():
        keys = [p.idempotency_key for p in Payout.select().where(Payout.account == account)]
        loan_ids = [loan.id for loan in Loan.select().where(Loan.depositor == depositor)]
        LoanRepayment.delete().where(LoanRepayment.loan.in_(loan_ids or [0])).execute()
        Loan.delete().where(Loan.depositor == depositor).execute()
        BankTransfer.delete().where(BankTransfer.idempotency_key.in_(keys or ["-"])).execute()
        # audit rows stay: the audit log is append-only (hash chain, triggers)
        Payout.delete().where(Payout.account == account).execute()
        DepositRecord.delete().where(DepositRecord.account == account).execute()
        Account.delete().where(Account.id == account.id).execute()
        OtpChallenge.delete().where(OtpChallenge.subject == f"d:{depositor.id}").execute()
        SmsMessage.delete().where(SmsMessage.phone == depositor.phone).execute()
        Depositor.delete().where(Depositor.id == depositor.id).execute()
    db.close()


def _challenges(depositor, purpose, n):
    db.connect(reuse_if_open=True)
    with db.atomic():
        made = [identity.send_code(purpose, f"d:{depositor.id}", depositor.phone) for _ in range(n)]
    db.close()
    return [(c.id, identity._code_for(c)) for c in made]


def _race(work, n=THREADS):
    """Run work(i) in n threads released together; (results, errors) by thread."""
    barrier = threading.Barrier(n)
    results: list = [None] * n
    errors: list = [None] * n

    def run(i):
        db.connect(reuse_if_open=True)
        try:
            barrier.wait()
            results[i] = work(i)
        except Exception as exc:  # collected and asserted on by the test
            errors[i] = exc
        finally:
            db.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    return results, errors


def _facts(depositor):
    db.connect(reuse_if_open=True)
    account = Account.get(Account.depositor == depositor)
    payouts_ = list(Payout.select().where(Payout.account == account))
    transfers = (
        BankTransfer.select()
        .where(BankTransfer.idempotency_key.in_([p.idempotency_key for p in payouts_] or ["-"]))
        .count()
    )
    withdrawals = (
        DepositRecord.select()
        .where((DepositRecord.account == account) & (DepositRecord.kind == "提取"))
        .count()
    )
    db.close()
    return account, payouts_, transfers, withdrawals


def test_double_click_same_key_pays_once(person):
    token = secrets.token_hex(16)
    [(challenge, code)] = _challenges(person, "withdraw", 1)
    results, errors = _race(lambda i: payouts.retire(person, token, challenge, code, TODAY))
    assert errors == [None] * THREADS, errors
    assert len({p.id for p in results}) == 1
    assert all(p.status == "confirmed" for p in results)
    account, rows, transfers, withdrawals = _facts(person)
    assert len(rows) == 1 and transfers == 1 and withdrawals == 1
    assert account.status == "销户" and account.balance == 0


def test_two_tabs_different_keys_pay_once_and_the_others_are_told(person):
    codes = _challenges(person, "withdraw", THREADS)
    tokens = [secrets.token_hex(16) for _ in range(THREADS)]

    def work(i):
        challenge, code = codes[i]
        return payouts.retire(person, tokens[i], challenge, code, TODAY)

    results, errors = _race(work)
    winners = [r for r in results if r is not None]
    assert len(winners) == 1 and winners[0].status == "confirmed"
    losers = [e for e in errors if e is not None]
    assert len(losers) == THREADS - 1
    assert all(isinstance(e, payouts.Refused) for e in losers), losers
    assert all(("已销户" in str(e)) or ("正在办理中" in str(e)) for e in losers)
    account, rows, transfers, withdrawals = _facts(person)
    assert len(rows) == 1 and transfers == 1 and withdrawals == 1
    assert account.status == "销户"


def _give_loan(depositor) -> Loan:
    db.connect(reuse_if_open=True)
    with db.atomic():
        loan = Loan.create(
            contract_no=f"TC{depositor.id:08d}",
            loan_account_no=f"TCA{depositor.id:08d}",
            depositor=depositor,
            amount=Decimal("120000.00"),
            term_months=120,
            annual_rate=Decimal("0.026"),
            method="annuity",
            disbursed_on=TODAY - timedelta(days=10),
            first_due_on=TODAY + timedelta(days=20),
            outstanding=Decimal("120000.00"),
        )
    db.close()
    return loan


@pytest.mark.parametrize("same_key", [True, False], ids=["same-key", "two-tabs"])
def test_early_repayment_settles_once(person, same_key):
    loan = _give_loan(person)
    codes = _challenges(person, "payoff", 1 if same_key else THREADS)
    tokens = (
        [secrets.token_hex(16)] * THREADS
        if same_key
        else [secrets.token_hex(16) for _ in range(THREADS)]
    )

    def work(i):
        challenge, code = codes[0 if same_key else i]
        return loans.early_repay(person, loan.id, tokens[i], True, challenge, code, TODAY)

    results, errors = _race(work)
    done = {r.id for r in results if r is not None}
    assert len(done) == 1
    if same_key:
        assert errors == [None] * THREADS, errors
    else:
        assert all(isinstance(e, payouts.Refused) for e in errors if e is not None)
        assert sum(e is not None for e in errors) == THREADS - 1
    db.connect(reuse_if_open=True)
    loan = Loan.get_by_id(loan.id)
    assert loan.status == "settled" and loan.outstanding == 0 and loan.settled_on == TODAY
    repayments = list(LoanRepayment.select().where(LoanRepayment.loan == loan))
    assert [r.kind for r in repayments] == ["offset", "early"]
    account = Account.get(Account.depositor == person)
    assert account.balance == 0  # 50,000 of HPF balance went first
    total = sum(r.amount for r in repayments)
    assert repayments[0].amount == Decimal("50000.00")
    assert total == Decimal("120000.00") + sum(r.interest for r in repayments)
    db.close()
