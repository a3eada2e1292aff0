"""Issue 9, points 15 and 16: money under real concurrency, and idempotency keys.

**Point 15.** A real multi-worker server — gunicorn, 2 worker processes × 4 threads, on
127.0.0.1, started by the module — serves its own database (a new SQLite file, or with
TEST_DATABASE_URL a PostgreSQL database named after it plus ``_srv``) with the small demo data.
Eight browser sessions of one person each prepare the full-balance form with their own key and
their own one-time code, then all eight submit at the same moment:

* retirement withdrawal (the whole balance plus interest, account closed);
* early loan repayment from the HPF balance (冲还贷);
* home-purchase withdrawal: eight cases of one depositor, each prepared for the whole balance,
  approved (复核) by a second handler all at once.

Exactly one pays; the balance plus what was paid equals the starting balance (plus the interest
credited); the bank adapter's ledger agrees; the seven others get a clear refusal — never a 500
or "database is locked"; nothing stays pending; ``portal.backup.check_database`` passes.

**Point 16.** Every money form carries an idempotency key (a token rendered with the form; the
case payouts use the prepared record): a replay returns the stored result, and the same key
with a different body is refused (the payout stores a hash of what was asked,
``payouts.request_fingerprint``).
"""

from __future__ import annotations

import os
import tempfile
import threading
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pyotp
import pytest

from portal.backup import check_database, using
from portal.filters import local_today
from portal.models import (
    Account,
    CasePayout,
    Department,
    Depositor,
    Loan,
    Payout,
    StaffUser,
)
from scripts.crash_test import (
    Browser,
    Server,
    login_depositor,
    login_staff,
    money_of,
    prepare_payoff,
    prepare_withdrawal,
    reset_rate_limits,
    retired_people,
)
from tests.conftest import last_code
from tests.conftest import login_depositor as login_in_process
from tests.security_helpers import side_database

SESSIONS = 8
APPROVER = ("sec_approver", "复核测试", "SECAPPROVERSECRETSECAPPROVERSEC")


@pytest.fixture(scope="module")
def served(app):
    """(server, database URL): the demo data in a database of its own, served by gunicorn."""
    from portal import demo, migrate

    with tempfile.TemporaryDirectory(prefix="hpf-money-") as tmp:
        workdir = Path(tmp)
        if os.environ.get("TEST_DATABASE_URL"):
            url = side_database(os.environ["TEST_DATABASE_URL"], "srv", fresh=True)
        else:
            url = f"sqlite:///{workdir / 'served.db'}"
        with using(url) as database:
            migrate.upgrade(database, log=lambda *_: None)
            demo.load(local_today(), size=60, log=lambda *_: None)
        server = Server(url, str(workdir / "storage"), workdir)
        server.start()
        try:
            yield server, url
        finally:
            server.stop()


def _simultaneously(calls) -> list:
    """Run the calls in threads released together; their answers (or exceptions)."""
    barrier = threading.Barrier(len(calls))
    answers: list = [None] * len(calls)

    def run(i, call):
        barrier.wait()
        try:
            answers[i] = call()
        except Exception as exc:  # reported by the assertions
            answers[i] = exc

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return answers


def _assert_clear(answers, winner_path: str) -> None:
    """One success (a 303 to ``winner_path``), seven clear refusals."""
    problems = []
    wins = 0
    for answer in answers:
        if isinstance(answer, Exception):
            problems.append(f"request failed: {answer!r}")
            continue
        if answer.status >= 500 or "database is locked" in answer.text:
            problems.append(f"HTTP {answer.status}: {answer.text[-300:]}")
        elif answer.status == 303 and winner_path in answer.location:
            wins += 1
        elif answer.status not in (409, 422) or 'role="alert"' not in answer.text:
            problems.append(f"no clear refusal: HTTP {answer.status} {answer.location}")
    assert not problems, "\n".join(problems)
    seen = [(a.status, a.location) for a in answers]
    assert wins == 1, f"{wins} requests succeeded: {seen}"


def _sessions(server, person, prepare):
    browsers, forms = [], []
    for _ in range(SESSIONS):
        reset_rate_limits()
        browser = Browser(server.base)
        login_depositor(browser, person)
        forms.append(prepare(browser))
        browsers.append(browser)
    return browsers, forms


@pytest.mark.committed
def test_eight_simultaneous_retirement_withdrawals_pay_once(served):
    server, url = served
    with using(url):
        person = retired_people(local_today(), 1)[0]
        before = money_of(person)
        browsers, forms = _sessions(server, person, lambda b: prepare_withdrawal(b, person))
        pairs = zip(browsers, forms, strict=True)
        answers = _simultaneously([lambda b=b, f=f: b.post("/me/retirement", f) for b, f in pairs])
        _assert_clear(answers, "/me/retirement/receipt/")
        after = money_of(person)
        assert after["statuses"] == ["confirmed"]
        assert after["status"] == "销户" and after["balance"] == 0
        credited = after["interest"] - before["interest"]
        assert before["balance"] + credited == after["balance"] + after["paid"]
        assert after["bank_out"] == after["paid"]
        report = check_database()
        assert report.ok, report.problems


def _payoff_person(today):
    from portal.services import loans

    for loan in Loan.select().where(Loan.status == "active").order_by(Loan.id):
        person = Depositor.get_by_id(loan.depositor_id)
        if person.password_hash is None:
            continue
        account = Account.get_or_none(Account.depositor == person)
        if account is None or account.balance <= 0:
            continue
        if Payout.select().where(Payout.account == account).exists():
            continue
        if not loans.payoff_plan(person, loan.id, today, True).reasons:
            return person, loan
    pytest.skip("no demo loan can be paid off today")


@pytest.mark.committed
def test_eight_simultaneous_payoffs_settle_once(served):
    server, url = served
    with using(url):
        person, loan = _payoff_person(local_today())
        account = Account.get(Account.depositor == person)
        start = account.balance
        browsers, forms = _sessions(server, person, lambda b: prepare_payoff(b, person, loan.id))
        path = f"/me/loans/{loan.id}/payoff"
        answers = _simultaneously(
            [lambda b=b, f=f: b.post(path, f) for b, f in zip(browsers, forms, strict=True)]
        )
        _assert_clear(answers, f"/me/loans/{loan.id}/payoff/")
        payouts = list(Payout.select().where(Payout.account == account))
        assert [p.status for p in payouts] == ["confirmed"]
        assert Loan.get_by_id(loan.id).status == "settled"
        assert Account.get_by_id(account.id).balance + payouts[0].amount == start
        report = check_database()
        assert report.ok, report.problems


def _approver() -> StaffUser:
    from portal.services.identity import hash_password

    username, name, secret = APPROVER
    user = StaffUser.get_or_none(StaffUser.username == username)
    if user is None:
        user = StaffUser.create(
            username=username,
            name=name,
            role="handler",
            department=Department.get(Department.code == "AZQ"),
            password_hash=hash_password("Staff2026"),
            totp_secret=secret,
            totp_confirmed=True,
        )
    return user


@pytest.mark.committed
def test_eight_simultaneous_purchase_withdrawals_pay_once(served):
    from portal import items
    from portal.models import Center, ProxyCase
    from portal.rules.casestates import INBOUND
    from portal.rules.workdays import add_workdays
    from portal.services import processing

    server, url = served
    today = local_today()
    with using(url):
        approver = _approver()
        preparer = StaffUser.get(StaffUser.username == "handler")
        azq = Department.get(Department.code == "AZQ")
        person = next(
            p
            for p in Depositor.select()
            .join(Account)
            .where(
                (Depositor.department == azq.id)
                & (Account.status == "正常")
                & (Account.balance > Decimal("1000.00"))
                & (Depositor.bank_card_changed_at < datetime(2021, 1, 1))
            )
            .order_by(Depositor.id.desc())
            if not Payout.select().join(Account).where(Account.depositor == p).exists()
            and not Loan.select().where((Loan.depositor == p) | (Loan.co_borrower == p)).exists()
        )
        account = Account.get(Account.depositor == person)
        start = account.balance
        peer = Center.select().where(~Center.is_self).order_by(Center.id).first()
        records = []
        for n in range(SESSIONS):
            case = ProxyCase.create(
                case_no=f"SECP{person.id:05d}{n:02d}",
                receipt_no=f"SECPR{person.id:05d}{n:02d}",
                item="purchase_withdrawal",
                direction=INBOUND,
                state="processing",
                center=peer,
                depositor=person,
                applicant_name=person.name,
                applicant_id_no=person.resident_id,
                applicant_phone=person.phone,
                application={"item": "purchase_withdrawal"},
                checklist={m.code: True for m in items.get("purchase_withdrawal").materials},
                department=azq,
                assignee=preparer,
                clock_start=today,
                deadline=add_workdays(today, 3),
            )
            records.append(
                processing.prepare_purchase(
                    preparer,
                    case.id,
                    processing.PurchaseInput(
                        property_no=f"蒙(2026)阿拉善左旗不动产权第{person.id:05d}{n:02d}号",
                        property_address=f"阿拉善左旗巴彦浩特镇王府街 {n + 1} 号",
                        purchase_date=today - timedelta(days=30),
                        price=Decimal("2000000.00"),
                        card_source="file",
                    ),
                    today,
                )
            )
        assert all(r.amount == start for r in records)  # each asks for the whole balance
        browser = Browser(server.base)
        login_staff(browser, approver.username, approver.totp_secret, "Staff2026")
        browser.get(f"/staff/processing/approvals/{records[0].id}")
        csrf = browser.csrf
        answers = _simultaneously(
            [
                lambda r=r: browser.open(
                    "POST",
                    f"/staff/processing/approvals/{r.id}/approve",
                    {"csrf_token": csrf, "version": r.version},
                )
                for r in records
            ]
        )
        _assert_clear(answers, "/staff/processing/approvals/")
        paid = [r for r in CasePayout.select().where(CasePayout.id.in_([x.id for x in records]))]
        assert [r.status for r in paid].count("paid") == 1
        payouts = list(Payout.select().where(Payout.account == account))
        assert [p.status for p in payouts] == ["confirmed"]
        assert Account.get_by_id(account.id).balance + payouts[0].amount == start
        report = check_database()
        assert report.ok, report.problems
    assert pyotp  # the approver logs in with a real TOTP code


@pytest.mark.committed
def test_eight_tabs_replaying_one_key_get_the_one_stored_result(served):
    """A double (octuple) click: the same key and code from one session, all at once."""
    server, url = served
    with using(url):
        person = retired_people(local_today(), 1)[0]
        before = money_of(person)
        reset_rate_limits()
        browser = Browser(server.base)
        login_depositor(browser, person)
        form = prepare_withdrawal(browser, person)
        answers = _simultaneously(
            [lambda: browser.post("/me/retirement", form) for _ in range(SESSIONS)]
        )
        receipts = {a.location for a in answers if not isinstance(a, Exception)}
        assert all(not isinstance(a, Exception) and a.status == 303 for a in answers), answers
        assert len(receipts) == 1 and "/receipt/" in receipts.pop()
        after = money_of(person)
        assert after["statuses"] == ["confirmed"]
        credited = after["interest"] - before["interest"]
        assert before["balance"] + credited == after["balance"] + after["paid"]


# --- point 16: idempotency keys (in-process, rolled back) --------------------------------


def _retired(app):
    from portal.services import payouts

    for person in (
        Depositor.select()
        .join(Account)
        .where(Depositor.password_hash.is_null(False) & (Account.status == "正常"))
        .order_by(Depositor.id)
    ):
        if payouts.retirement_quote(person, local_today()).eligible:
            return person
    pytest.skip("no retired demo depositor")


def _token(html: str) -> str:
    import re

    return re.search(r'name="token"[^>]*value="([0-9a-f]{32})"', html).group(1)


def test_a_replayed_withdrawal_returns_the_stored_receipt(app, client):
    person = _retired(app)
    login_in_process(client, person)
    token = _token(client.get("/me/retirement").get_data(as_text=True))
    client.post("/me/code/withdraw", data={"next": "/me/retirement"})
    form = {"token": token, "code": last_code(person.phone)}
    first = client.post("/me/retirement", data=form)
    assert first.status_code == 303 and "/receipt/" in first.headers["Location"]
    again = client.post("/me/retirement", data=form)
    assert again.status_code == 303
    assert again.headers["Location"] == first.headers["Location"]
    account = Account.get(Account.depositor == person)
    assert Payout.select().where(Payout.account == account).count() == 1


def _fresh_loan() -> tuple[Depositor, Loan]:
    """A loan disbursed ten days ago (nothing due yet, so nothing overdue) of a depositor with
    money and no other loan."""
    today = local_today()
    person = next(
        p
        for p in Depositor.select()
        .join(Account)
        .where(
            Depositor.password_hash.is_null(False)
            & (Account.status == "正常")
            & (Account.balance > Decimal("1000.00"))
        )
        .order_by(Depositor.id)
        if not Loan.select().where((Loan.depositor == p) | (Loan.co_borrower == p)).exists()
    )
    loan = Loan.create(
        contract_no=f"SECLN{person.id:06d}",
        loan_account_no=f"SECLA{person.id:06d}",
        depositor=person,
        amount=Decimal("100000.00"),
        term_months=120,
        annual_rate=Decimal("0.031"),
        method="annuity",
        disbursed_on=today - timedelta(days=10),
        first_due_on=today + timedelta(days=20),
        outstanding=Decimal("100000.00"),
    )
    return person, loan


def test_the_same_payoff_key_with_a_different_body_is_refused(app, client):
    from portal.services import loans

    person, loan = _fresh_loan()
    login_in_process(client, person)
    path = f"/me/loans/{loan.id}/payoff"
    token = _token(client.get(path).get_data(as_text=True))
    client.post("/me/code/payoff", data={"next": path})
    code = last_code(person.phone)
    first = client.post(path, data={"token": token, "funding": "balance", "code": code})
    assert first.status_code == 303, first.get_data(as_text=True)[-500:]
    # the same key, the same body: the stored result
    again = client.post(path, data={"token": token, "funding": "balance", "code": code})
    assert again.status_code == 303 and again.headers["Location"] == first.headers["Location"]
    # the same key, another body: refused, nothing paid again
    other = client.post(path, data={"token": token, "funding": "card", "code": code})
    assert other.status_code == 422
    assert "内容不同" in other.get_data(as_text=True)
    account = Account.get(Account.depositor == person)
    assert Payout.select().where(Payout.account == account).count() == 1
    with pytest.raises(loans.Refused, match="内容不同"):
        loans.early_repay(person, loan.id, token, False, None, "", local_today())


def test_the_fingerprint_covers_what_was_asked():
    from portal.services import loans, payouts

    assert loans.payoff_fingerprint(1, True) == loans.payoff_fingerprint(1, True)
    assert loans.payoff_fingerprint(1, True) != loans.payoff_fingerprint(1, False)
    assert loans.payoff_fingerprint(1, True) != loans.payoff_fingerprint(2, True)
    stored = Payout(detail={"request": loans.payoff_fingerprint(1, True)})
    assert payouts.same_request(stored, loans.payoff_fingerprint(1, True))
    assert not payouts.same_request(stored, loans.payoff_fingerprint(1, False))
    assert payouts.same_request(Payout(detail={}), "anything")  # rows from before the rule


def test_a_reversed_request_replayed_is_refused_not_reported_paid(app, client):
    """After reconciliation reversed a payout, its key does not pretend it was paid."""
    from portal.services import payouts

    person = _retired(app)
    login_in_process(client, person)
    token = _token(client.get("/me/retirement").get_data(as_text=True))
    client.post("/me/code/withdraw", data={"next": "/me/retirement"})
    code = last_code(person.phone)
    account = Account.get(Account.depositor == person)
    Payout.create(
        account=account,
        kind="retirement",
        amount=account.balance,
        idempotency_key=payouts.retirement_key(person, token),
        status="reversed",
        requested_by=f"depositor:{person.id}",
        detail={
            "on": local_today().isoformat(),
            "request": payouts.request_fingerprint(kind="retirement", depositor=person.id),
        },
    )
    r = client.post("/me/retirement", data={"token": token, "code": code})
    assert r.status_code == 422
    assert "已撤销" in r.get_data(as_text=True)
    assert Account.get_by_id(account.id).status == "正常"
    assert date.today()  # nothing else changed
