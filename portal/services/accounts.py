"""Read models for the depositor and employer halls (templates never query)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from peewee import JOIN, fn

from portal.db import Prepared
from portal.models import Account, Depositor, DepositRecord, Employer, EmployerOperator, Loan


@dataclass
class DepositorSummary:
    depositor: Depositor
    account: Account | None
    employer_name: str
    monthly_amount: Decimal
    recent: list[DepositRecord]
    active_loans: list[Loan]


# The summary's three reads, built once (issue 10: the hall's front page; building their SQL
# took longer than running it).
_ACCOUNT = Prepared(
    lambda me: (
        Account.select(Account, Employer)
        .join(Employer, on=(Account.employer == Employer.id), join_type=JOIN.LEFT_OUTER)
        .where(Account.depositor == me)
        .limit(1)
    ),
    1,
)
_RECENT = Prepared(
    lambda account, n: (
        DepositRecord.select()
        .where(DepositRecord.account == account)
        .order_by(DepositRecord.posted_on.desc(), DepositRecord.id.desc())
        .limit(n)
    ),
    2,
)
_ACTIVE_LOANS = Prepared(
    lambda me, status: (
        Loan.select()
        .where((Loan.depositor == me) & (Loan.status == status))
        .order_by(Loan.disbursed_on)
    ),
    2,
)


def depositor_summary(depositor: Depositor, recent: int = 5) -> DepositorSummary:
    account = _ACCOUNT.first(depositor.id)
    records: list[DepositRecord] = []
    if account is not None:
        records = _RECENT.all(account.id, recent)
    loans = _ACTIVE_LOANS.all(depositor.id, "active")
    return DepositorSummary(
        depositor=depositor,
        account=account,
        employer_name=account.employer.name if account and account.employer_id else "—",
        monthly_amount=account.monthly_amount if account else Decimal("0.00"),
        recent=records,
        active_loans=loans,
    )


@dataclass
class EmployerOverview:
    employer: Employer
    operator: EmployerOperator
    counts: dict[str, int]
    monthly_total: Decimal


def employer_overview(operator: EmployerOperator) -> EmployerOverview:
    employer = operator.employer
    counts = {
        status: n
        for status, n in Account.select(Account.status, fn.COUNT(Account.id))
        .where(Account.employer == employer)
        .group_by(Account.status)
        .tuples()
    }
    monthly = sum(
        (
            a.monthly_amount
            for a in Account.select(
                Account.deposit_base, Account.employer_ratio, Account.employee_ratio
            ).where((Account.employer == employer) & (Account.status == "正常"))
        ),
        Decimal("0.00"),
    )
    return EmployerOverview(
        employer=employer, operator=operator, counts=counts, monthly_total=monthly
    )
