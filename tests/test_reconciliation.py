"""Daily reconciliation (issue 7): portal payouts against the bank adapter's ledger."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest

from portal.filters import local_today
from portal.models import Account, AuditLog, BankTransfer, Payout
from portal.services import reconciliation
from tests.processing_helpers import (
    account_of,
    depositors,
    inbound,
    prepare_and_approve,
    second_handler,  # noqa: F401 - fixture
    staff,
)

pytestmark = pytest.mark.usefixtures("second_handler")

DAY = date(2026, 11, 20)  # no demo payouts: a clean day to build on


def at(day: date, hour: int) -> datetime:
    """A naive UTC instant at ``hour`` o'clock Beijing time on ``day``."""
    return datetime(day.year, day.month, day.day) + timedelta(hours=hour - 8)


def payout(
    account,
    key,
    amount,
    *,
    kind="purchase",
    status="confirmed",
    card="6222020000000000001",
    when=None,
    detail=None,
):
    return Payout.create(
        account=account,
        kind=kind,
        amount=Decimal(amount),
        idempotency_key=key,
        status=status,
        bank_card=card,
        requested_by="test",
        detail=detail or {"on": DAY.isoformat()},
        created_at=when or at(DAY, 10),
    )


def transfer(key, amount, *, direction="out", card="6222020000000000001", when=None):
    return BankTransfer.create(
        idempotency_key=key,
        direction=direction,
        amount=Decimal(amount),
        card=card,
        reference=f"REF{key}",
        created_at=when or at(DAY, 10),
    )


@pytest.fixture
def accounts():
    a, b = depositors()[:1] + depositors("AYQ")[:1]
    return account_of(a), account_of(b)


def test_day_bounds_are_beijing_days():
    start, end = reconciliation.day_bounds(DAY)
    assert start == datetime(2026, 11, 19, 16, 0) and end == datetime(2026, 11, 20, 16, 0)


def test_a_matching_day_is_balanced(accounts):
    azq, _ = accounts
    payout(azq, "r-ok-1", "1000.00")
    transfer("r-ok-1", "1000.00")
    payout(azq, "r-ok-2", "300.00", kind="loan_offset", detail={"rest": "200.00"})
    transfer("r-ok-2", "200.00", direction="in")
    payout(azq, "r-ok-3", "500.00", kind="loan_offset", card=None, detail={"rest": "0"})
    report = reconciliation.reconcile_day(DAY)
    assert report.balanced and report.matched == 3
    assert report.portal_out == report.bank_out == Decimal("1000.00")
    assert report.portal_in == report.bank_in == Decimal("200.00")


def test_a_transfer_just_after_midnight_still_matches(accounts):
    azq, _ = accounts
    payout(azq, "r-mid", "88.00", when=at(DAY, 23))
    transfer("r-mid", "88.00", when=at(DAY + timedelta(days=1), 0) + timedelta(minutes=5))
    assert reconciliation.reconcile_day(DAY).balanced


def test_every_kind_of_difference_is_listed(accounts):
    azq, ayq = accounts
    payout(azq, "d-nobank", "100.00")
    transfer("d-noportal", "50.00")
    payout(azq, "d-amount", "70.00")
    transfer("d-amount", "7.00")
    payout(ayq, "d-reversed", "20.00", status="reversed")
    transfer("d-reversed", "20.00")
    payout(ayq, "d-card", "30.00")
    transfer("d-card", "30.00", card="6222020000000000019")
    report = reconciliation.reconcile_day(DAY)
    problems = {line.key: line.problem for line in report.differences}
    assert problems == {
        "d-nobank": "门户已确认支付，但银行无对应转账",
        "d-noportal": "银行有转账，门户无对应支付记录",
        "d-amount": "金额不符：门户 70.00 元，银行 7.00 元",
        "d-reversed": "门户已撤销该笔支付，但银行已转账",
        "d-card": "银行卡号不符",
    }
    line = next(x for x in report.differences if x.key == "d-nobank")
    assert line.department == "阿拉善左旗管理部" and line.card.count("*") > 0


def test_a_handler_sees_their_department_and_unattributed_lines(accounts):
    azq, ayq = accounts
    payout(azq, "h-azq", "100.00")
    payout(ayq, "h-ayq", "100.00")
    transfer("h-orphan", "9.00")
    keys = {x.key for x in reconciliation.for_user(staff("handler"), DAY).lines}
    assert keys == {"h-azq", "h-orphan"}
    keys = {x.key for x in reconciliation.for_user(staff("liaison"), DAY).lines}
    assert keys == {"h-azq", "h-ayq", "h-orphan"}
    with pytest.raises(reconciliation.Forbidden):
        reconciliation.for_user(staff("clerk"), DAY)


def test_a_real_processed_withdrawal_reconciles():
    person = depositors()[0]
    record = prepare_and_approve(inbound("purchase_withdrawal", person))
    report = reconciliation.reconcile_day(local_today())  # when the payout really happened
    line = next(x for x in report.lines if x.key == f"case:{record.id}")
    assert line.matched and line.case_no and line.kind_label == "购房提取"


def test_the_cli_reports_and_fails_on_differences(runner, accounts):
    azq, _ = accounts
    payout(azq, "cli-ok", "10.00")
    transfer("cli-ok", "10.00")
    result = runner.invoke(args=["payouts", "reconcile-daily", "--date", DAY.isoformat()])
    assert result.exit_code == 0, result.output
    assert "1 matched, 0 differences" in result.output
    transfer("cli-orphan", "5.00")
    result = runner.invoke(args=["payouts", "reconcile-daily", "--date", DAY.isoformat()])
    assert result.exit_code == 1
    assert "DIFF cli-orphan [未归属管理部]" in result.output
    assert AuditLog.select().where(AuditLog.action == "payouts.reconcile_daily").count() >= 2
    bad = runner.invoke(args=["payouts", "reconcile-daily", "--date", "2026-02-30"])
    assert bad.exit_code == 2


def test_account_is_unchanged_by_reconciliation(accounts):
    azq, _ = accounts
    before = Account.get_by_id(azq.id).balance
    payout(azq, "n-1", "100.00")
    reconciliation.reconcile_day(DAY)
    assert Account.get_by_id(azq.id).balance == before
