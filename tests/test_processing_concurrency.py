"""Exactly once under real concurrency (issue 7): threads on committed data, SQLite and (with
TEST_DATABASE_URL) PostgreSQL. Each test creates its own people and case and deletes them
afterwards — except the audit rows, which are append-only."""

from __future__ import annotations

import secrets
import threading
from datetime import date
from decimal import Decimal

import pytest

from portal.db import db
from portal.models import (
    Account,
    Attachment,
    BankTransfer,
    CaseEvent,
    CasePayout,
    Department,
    Depositor,
    DepositRecord,
    Payout,
    ProxyCase,
    StaffUser,
)
from portal.rules.ids import luhn_check_digit, resident_id_check_char
from portal.services import processing
from tests.conftest import TODAY
from tests.processing_helpers import CENTER, inbound, purchase, verify_url

pytestmark = pytest.mark.committed
THREADS = 8


def _person(tag: int, n: int) -> Depositor:
    first17 = f"15292119850101{(tag + n) % 1000:03d}"
    card = "622202" + f"{(tag * 10 + n) % 10**12:012d}"
    depositor = Depositor.create(
        resident_id=first17 + resident_id_check_char(first17),
        name=f"并发{n}",
        sex="M",
        birth_date=date(1985, 1, 1),
        retirement_category="male",
        phone=f"1990001{(tag + n) % 10000:04d}",
        bank_card=card + luhn_check_digit(card),
        bank_name="中国银行",
        department=Department.get(Department.code == "AZQ"),
    )
    Account.create(
        account_no=f"P{tag:08d}{n}",
        depositor=depositor,
        deposit_base=Decimal("5000.00"),
        opened_on=date(2015, 1, 1),
        balance=Decimal("50000.00"),
    )
    return depositor


@pytest.fixture
def world():
    """Two committed depositors of 阿拉善左旗管理部 (a couple), approvers, and cleanup."""
    db.connect(reuse_if_open=True)
    tag = secrets.randbelow(10**6)
    made: dict = {"cases": [], "staff": []}
    with db.atomic():
        made["people"] = [_person(tag, 0), _person(tag, 1)]
        dept = Department.get(Department.code == "AZQ")
        made["staff"] = [
            StaffUser.create(
                username=f"cc{tag}_{i}", name=f"复核{i}", role="handler", department=dept
            )
            for i in range(THREADS)
        ]
    db.close()
    yield made
    db.connect(reuse_if_open=True)
    with db.atomic():
        case_ids = [c.id for c in made["cases"]]
        accounts = [a.id for a in Account.select().where(Account.depositor.in_(made["people"]))]
        keys = [p.idempotency_key for p in Payout.select().where(Payout.account.in_(accounts))]
        Attachment.delete().where(Attachment.case.in_(case_ids or [0])).execute()
        CaseEvent.delete().where(CaseEvent.case.in_(case_ids or [0])).execute()
        CasePayout.delete().where(CasePayout.case.in_(case_ids or [0])).execute()
        BankTransfer.delete().where(BankTransfer.idempotency_key.in_(keys or ["-"])).execute()
        # audit rows stay: the audit log is append-only (hash chain, triggers)
        Payout.delete().where(Payout.account.in_(accounts or [0])).execute()
        DepositRecord.delete().where(DepositRecord.account.in_(accounts or [0])).execute()
        ProxyCase.delete().where(ProxyCase.id.in_(case_ids or [0])).execute()
        Account.delete().where(Account.id.in_(accounts or [0])).execute()
        Depositor.delete().where(Depositor.id.in_([p.id for p in made["people"]])).execute()
        StaffUser.delete().where(StaffUser.id.in_([s.id for s in made["staff"]])).execute()
    db.close()


def _case(world, person) -> ProxyCase:
    db.connect(reuse_if_open=True)
    with db.atomic():
        case = inbound("purchase_withdrawal", person, prefix="CC")
    db.close()
    world["cases"].append(case)
    return case


def _race(work, n=THREADS):
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
        t.join(90)
    assert not any(t.is_alive() for t in threads)
    return results, errors


def _handler() -> StaffUser:
    return StaffUser.get(StaffUser.username == "handler")


def _facts(person, case):
    db.connect(reuse_if_open=True)
    account = Account.get(Account.depositor == person)
    payouts = list(Payout.select().where(Payout.account == account))
    transfers = (
        BankTransfer.select()
        .where(BankTransfer.idempotency_key.in_([p.idempotency_key for p in payouts] or ["-"]))
        .count()
    )
    lines = (
        DepositRecord.select()
        .where((DepositRecord.account == account) & (DepositRecord.kind == "提取"))
        .count()
    )
    results = Attachment.select().where((Attachment.case == case) & (Attachment.kind == "result"))
    db.close()
    return account, payouts, transfers, lines, results.count()


def _prepare(case, data=None):
    db.connect(reuse_if_open=True)
    record = processing.prepare_purchase(_handler(), case.id, data or purchase(), TODAY)
    db.close()
    return record


def test_the_same_approver_clicking_many_times_pays_once(world):
    person = world["people"][0]
    case = _case(world, person)
    record = _prepare(case)
    approver = world["staff"][0]
    results, errors = _race(
        lambda i: processing.approve(approver, record.id, record.version, TODAY, CENTER, verify_url)
    )
    assert errors == [None] * THREADS, errors
    assert {r.payout_id for r in results} == {results[0].payout_id}
    account, payouts, transfers, lines, attached = _facts(person, case)
    assert len(payouts) == 1 and payouts[0].status == "confirmed"
    assert transfers == 1 and lines == 1 and attached == 1
    assert account.balance == Decimal("0.00")  # 50,000 withdrawn exactly once


def test_many_approvers_at_once_one_wins(world):
    person = world["people"][0]
    case = _case(world, person)
    record = _prepare(case, purchase(amount=Decimal("12345.67")))
    approvers = world["staff"]
    results, errors = _race(
        lambda i: processing.approve(
            approvers[i], record.id, record.version, TODAY, CENTER, verify_url
        )
    )
    winners = [r for r in results if r is not None]
    assert len(winners) == 1 and winners[0].status == "paid"
    losers = [e for e in errors if e is not None]
    assert len(losers) == THREADS - 1
    assert all(isinstance(e, processing.Refused) for e in losers), losers
    account, payouts, transfers, lines, _ = _facts(person, case)
    assert len(payouts) == 1 and transfers == 1 and lines == 1
    assert account.balance == Decimal("50000.00") - Decimal("12345.67")


def test_preparing_many_times_at_once_records_one(world):
    person = world["people"][0]
    case = _case(world, person)

    def work(i):
        return processing.prepare_purchase(_handler(), case.id, purchase(), TODAY)

    results, errors = _race(work)
    assert sum(r is not None for r in results) == 1
    assert all(isinstance(e, processing.Refused) for e in errors if e is not None)
    db.connect(reuse_if_open=True)
    assert CasePayout.select().where(CasePayout.case == case).count() == 1
    db.close()


def test_spouses_at_once_never_exceed_the_price(world):
    husband, wife = world["people"]
    price = Decimal("60000.00")  # each has 50,000: together they may take 60,000
    cases = [_case(world, husband), _case(world, wife)]
    data = [
        purchase(price=price, spouse_name=wife.name, spouse_id_no=wife.resident_id),
        purchase(price=price, spouse_name=husband.name, spouse_id_no=husband.resident_id),
    ]

    def work(i):
        record = processing.prepare_purchase(_handler(), cases[i].id, data[i], TODAY)
        return processing.approve(world["staff"][i], record.id, None, TODAY, CENTER, verify_url)

    results, errors = _race(work, 2)
    assert errors == [None, None], errors
    assert sum(r.amount for r in results) == price
    assert {r.status for r in results} == {"paid"}


def test_a_retry_after_a_lost_answer_is_not_a_second_payment(world):
    person = world["people"][0]
    case = _case(world, person)
    record = _prepare(case)
    approver = world["staff"][0]
    db.connect(reuse_if_open=True)
    paid = processing.approve(approver, record.id, None, TODAY, CENTER, verify_url)
    again = processing.retry_payout(approver, record.id, TODAY, CENTER, verify_url)
    db.close()
    assert paid.payout_id == again.payout_id
    _, payouts, transfers, lines, _ = _facts(person, case)
    assert len(payouts) == 1 and transfers == 1 and lines == 1
