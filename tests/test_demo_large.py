"""The center-sized demo data (portal/demo_large.py), at a small scale on top of the test data:
valid identifiers, consistent balances, the open/closed split, and the indexes back."""

from __future__ import annotations

from decimal import Decimal

from peewee import fn

from portal import demo, demo_large
from portal.db import db
from portal.models import (
    Account,
    Depositor,
    DepositRecord,
    Employer,
    EmployerOperator,
    Loan,
    LoanRepayment,
    ProxyCase,
)
from portal.rules import casestates
from portal.rules.ids import is_valid_bank_card, is_valid_resident_id, is_valid_uscc
from tests.board_helpers import make_case
from tests.conftest import TODAY


def _indexes(table: str) -> set[str]:
    return {i.name for i in db.get_indexes(table)}


def test_bulk_rows_on_top_of_the_demo():
    before = {
        m: m.select(fn.MAX(m.id)).scalar() or 0
        for m in (Depositor, Employer, Loan, ProxyCase, Account)
    }
    record_indexes = _indexes("deposit_record")
    lines: list[str] = []
    bulk = demo_large._Bulk(TODAY, demo.SEED, demo_large._Progress(lines.append), 0.01)
    bulk.run()
    summary = bulk.summary(0.0)

    assert summary.depositors == 1_000 and summary.employers == 40
    assert summary.loans == 200 and summary.cases == 500 and summary.open_cases == 50
    assert any("depositors 1,000/1,000" in line for line in lines)
    assert _indexes("deposit_record") == record_indexes  # dropped for the load, rebuilt

    new = Depositor.select().where(Depositor.id > before[Depositor]).order_by(Depositor.id)
    for person in new.limit(200):
        assert is_valid_resident_id(person.resident_id, TODAY)
        assert is_valid_bank_card(person.bank_card)
        assert Depositor.get(Depositor.resident_id == person.resident_id).id == person.id
    for employer in Employer.select().where(Employer.id > before[Employer]):
        assert is_valid_uscc(employer.credit_code)
    ids = [o.resident_id for o in EmployerOperator.select()]
    assert len(ids) == len(set(ids))

    # every new account's balance is its last line's balance, and the lines add up
    account = Account.select().join(Depositor).where(Depositor.id > before[Depositor]).first()
    lines_ = list(
        DepositRecord.select()
        .where(DepositRecord.account == account)
        .order_by(DepositRecord.posted_on, DepositRecord.id)
    )
    assert lines_ and lines_[-1].balance_after == account.balance
    assert sum((r.amount for r in lines_), Decimal("0.00")) == account.balance
    assert any(r.kind == "结息" for r in lines_) or len(lines_) < 12

    # loans: repayments for paid periods, settled loans owe nothing
    for loan in Loan.select().where(Loan.id > before[Loan]).limit(50):
        paid = LoanRepayment.select().where(LoanRepayment.loan == loan).count()
        assert loan.status in ("active", "settled")
        if loan.status == "settled":
            assert loan.outstanding == Decimal("0.00") and paid
    longest = (
        DepositRecord.select(fn.COUNT(DepositRecord.id))
        .where(DepositRecord.kind.in_(("汇缴", "补缴")) & (DepositRecord.account > before[Account]))
        .group_by(DepositRecord.account)
        .order_by(fn.COUNT(DepositRecord.id).desc())
        .scalar()
    )
    assert longest == demo_large.MAX_MONTHS  # someone has ten years of records
    # the id sequences follow the explicit ids (PostgreSQL): ordinary inserts still work
    case = make_case(casestates.OUTBOUND, "accepted")
    assert case.id > before[ProxyCase]
