"""The demo data: valid identifiers, consistent balances, every board column filled."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from peewee import fn

from portal.demo import loan_day
from portal.models import (
    Account,
    Center,
    Depositor,
    DepositRecord,
    Employer,
    EmployerOperator,
    Loan,
    ProxyCase,
    StaffUser,
)
from portal.rules import casestates
from portal.rules.ids import is_valid_bank_card, is_valid_resident_id, is_valid_uscc
from portal.rules.retirement import statutory_retirement_date
from portal.services import loans
from tests.conftest import TODAY


def test_identifiers_are_valid():
    assert all(is_valid_resident_id(d.resident_id) for d in Depositor.select())
    assert all(is_valid_bank_card(d.bank_card) for d in Depositor.select())
    assert all(is_valid_uscc(e.credit_code) for e in Employer.select())
    assert all(is_valid_resident_id(o.resident_id) for o in EmployerOperator.select())


def test_each_employer_has_one_primary_operator():
    for employer in Employer.select():
        primaries = [o for o in employer.operators if o.is_primary]
        assert len(primaries) == 1


def test_balances_equal_the_sum_of_the_detail():
    sums = dict(
        DepositRecord.select(DepositRecord.account, fn.SUM(DepositRecord.amount))
        .group_by(DepositRecord.account)
        .tuples()
    )
    for account in Account.select():
        assert Decimal(sums.get(account.id, 0)) / 100 == account.balance


def test_records_run_to_last_month_for_active_accounts():
    last_month = f"{TODAY.year}-{TODAY.month - 1:02d}"
    for account in Account.select().where(Account.status == "正常"):
        assert account.paid_up_to == last_month
    assert DepositRecord.select().where(DepositRecord.kind == "结息").exists()


def test_there_are_retired_sealed_frozen_and_loan_cases():
    statuses = {a.status for a in Account.select()}
    assert {"正常", "封存", "冻结"} <= statuses
    past = [
        d
        for d in Depositor.select()
        if statutory_retirement_date(d.birth_date, d.retirement_category) <= TODAY
    ]
    assert past
    loan_statuses = {(loan.status, loan.settled_kind) for loan in Loan.select()}
    assert ("active", None) in loan_statuses and ("settled", "early") in loan_statuses


def test_cases_fill_every_column_of_both_boards():
    for direction, columns in casestates.COLUMNS.items():
        present = {c.state for c in ProxyCase.select().where(ProxyCase.direction == direction)}
        assert set(columns) == present, direction


def test_one_staff_user_per_role_and_two_peers():
    roles = [u.role for u in StaffUser.select()]
    for role in ("clerk", "liaison", "official", "admin", "auditor"):
        assert roles.count(role) == 1
    handlers = StaffUser.select().where(StaffUser.role == "handler")
    assert len({h.department_id for h in handlers}) == 2
    assert Center.select().where(~Center.is_self).count() == 2


def test_seed_command_refuses_a_database_with_data(runner):
    result = runner.invoke(args=["seed-demo"])
    assert result.exit_code != 0 and "already has data" in result.output
    result = runner.invoke(args=["seed-demo", "--if-empty"])
    assert result.exit_code == 0 and "nothing to do" in result.output


def test_loan_days_cover_the_month():
    days = {loan_day(date(2026, 5, 30), n).day for n in range(28)}
    assert days == set(range(1, 29))
    assert loan_day(date(2026, 2, 1), 27) == date(2026, 2, 1 + 27 * 11 % 28)


def test_the_demo_loans_do_not_all_turn_overdue_at_the_next_midnight():
    """Seeded on TODAY, the demo still has current loans on TODAY + 1 (a run across midnight)."""
    active = [
        loan
        for loan in Loan.select().where(Loan.status == "active")
        if not loans.loan_view(loan.depositor, loan.id, TODAY).overdue
    ]
    assert len({loan.first_due_on.day for loan in active}) > 1
    tomorrow = TODAY + timedelta(days=1)
    still = [
        loan for loan in active if not loans.loan_view(loan.depositor, loan.id, tomorrow).overdue
    ]
    assert still and len(active) - len(still) <= len(active) // 4
    assert all(loan.first_due_on.day == TODAY.day for loan in active if loan not in still)
