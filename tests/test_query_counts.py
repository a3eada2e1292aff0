"""Queries per page must not depend on the amount of data (issue 10: no N+1 queries).

Each main page is rendered once with N more rows of the data it lists and once with 3N; the
number of SQL statements must be the same. Timings are never asserted here: the benchmark
(``make bench``, docs/performance.md) measures speed.
"""

from __future__ import annotations

import itertools
from datetime import date, timedelta
from decimal import Decimal

import pytest

from portal.models import (
    Account,
    CaseComment,
    CaseEvent,
    Certificate,
    Depositor,
    DepositRecord,
    Loan,
    LoanRepayment,
    ProxyCase,
)
from portal.rules import casestates as cs
from portal.services.certificates import new_verify_code
from tests.board_helpers import make_case, staff
from tests.conftest import TODAY, login_depositor, login_staff
from tests.query_helpers import QueryCounter

N = 4
_seq = itertools.count(1)


@pytest.fixture
def counter(monkeypatch):
    return QueryCounter(monkeypatch)


def _subject() -> tuple[Depositor, Account, Loan]:
    """A depositor with a password, a normal account and an active loan."""
    loan = (
        Loan.select()
        .join(Depositor, on=(Loan.depositor == Depositor.id))
        .join(Account, on=(Account.depositor == Depositor.id))
        .where(
            Depositor.password_hash.is_null(False)
            & (Account.status == "正常")
            & (Loan.status == "active")
        )
        .order_by(Depositor.id)
        .first()
    )
    depositor = Depositor.get_by_id(loan.depositor_id)
    return depositor, Account.get(Account.depositor == depositor), loan


# --- more of each kind of data -------------------------------------------------------------


def more_deposit_records(account: Account, n: int) -> None:
    first = (
        DepositRecord.select()
        .where(DepositRecord.account == account)
        .order_by(DepositRecord.posted_on)
        .first()
    )
    start = first.posted_on if first else TODAY
    DepositRecord.insert_many(
        [
            dict(
                account=account.id,
                employer=account.employer_id,
                kind="汇缴",
                period=None,
                posted_on=start - timedelta(days=31 * (k + 1) + next(_seq) % 7),
                amount=Decimal("100.00"),
                balance_after=Decimal("100.00"),
                memo="",
            )
            for k in range(n)
        ]
    ).execute()


def more_loans(depositor: Depositor, n: int) -> None:
    for _ in range(n):
        k = next(_seq)
        Loan.create(
            contract_no=f"QC{k:08d}",
            loan_account_no=f"QCA{k:08d}",
            depositor=depositor,
            amount=Decimal("100000.00"),
            term_months=120,
            annual_rate=Decimal("0.026"),
            method="annuity",
            disbursed_on=date(2025, 1, 10),
            first_due_on=date(2025, 2, 10),
            outstanding=Decimal("100000.00"),
        )


def more_repayments(loan: Loan, n: int) -> None:
    last = (
        LoanRepayment.select().where(LoanRepayment.loan == loan).order_by(LoanRepayment.paid_on)
    ).first()
    start = last.paid_on if last else TODAY
    LoanRepayment.insert_many(
        [
            dict(
                loan=loan.id,
                period=None,
                due_on=None,
                paid_on=start - timedelta(days=3 * (k + 1)),
                principal=Decimal("10.00"),
                interest=Decimal("1.00"),
                amount=Decimal("11.00"),
                kind="offset",
            )
            for k in range(n)
        ]
    ).execute()


def more_certificates(depositor: Depositor, n: int) -> None:
    for _ in range(n):
        k = next(_seq)
        Certificate.create(
            kind="usage",
            number=f"QC{k:010d}",
            verify_code=new_verify_code(),
            depositor=depositor,
            addressee="北京住房公积金管理中心",
            valid_until=TODAY + timedelta(days=60),
            summary={"facts": [["持有人", "王*"]]},
            storage_key=f"certificates/qc{k}.pdf",
            sha256="0" * 64,
        )


BOARD_STATES = {
    cs.OUTBOUND: ("accepted", "verifying", "transmitted", "feedback", "archived", "supplement"),
    cs.INBOUND: ("received", "distributed", "processing", "done", "fed_back", "supplement"),
}


def more_cases(n: int, direction: str = cs.OUTBOUND, **fields) -> list[ProxyCase]:
    made = []
    for k in range(n):
        for state in BOARD_STATES[direction]:
            made.append(
                make_case(
                    direction,
                    state,
                    prefix="QC",
                    start=TODAY - timedelta(days=k % 9),
                    assignee="handler" if direction == cs.INBOUND else None,
                    **fields,
                )
            )
    return made


def more_finished_cases(depositor: Depositor, n: int) -> None:
    """Cases of the depositor's that can be rated (fewer than a page of 好差评 waiting)."""
    for state in itertools.islice(itertools.cycle(("done", "fed_back", "rejected")), n):
        make_case(cs.INBOUND, state, prefix="QC", assignee="handler", depositor=depositor)


def more_history(case: ProxyCase, n: int) -> None:
    clerk = staff("clerk")
    for k in range(n):
        CaseEvent.create(
            case=case, actor=clerk, actor_label=clerk.name, action="comment", data={"k": k}
        )
        CaseComment.create(case=case, author=clerk, body=f"第 {k} 条意见")


# --- the pages -------------------------------------------------------------------------------


def _same(counter, client, path, grow, headers=None):
    """Queries for ``path`` after growing the data by N, and by 3N (a warm-up first)."""
    client.get(path, headers=headers or {})
    grow(N)
    with_n = counter.count(client, path, headers)
    grow(2 * N)
    with_3n = counter.count(client, path, headers)
    assert with_n == with_3n, f"{path}: {with_n} queries with N rows, {with_3n} with 3N"
    return with_n


@pytest.mark.parametrize(
    "path, grow",
    [
        ("/me/", lambda d, a, loan, n: (more_deposit_records(a, n), more_loans(d, n))),
        ("/me/deposits", lambda d, a, loan, n: more_deposit_records(a, n)),
        ("/me/deposits?page=2", lambda d, a, loan, n: more_deposit_records(a, n)),
        ("/me/loans", lambda d, a, loan, n: (more_loans(d, n), more_repayments(loan, n))),
        ("/me/loans/{loan}", lambda d, a, loan, n: more_repayments(loan, n)),
        ("/me/certificates", lambda d, a, loan, n: more_certificates(d, n)),
        ("/me/cases", lambda d, a, loan, n: more_cases(n, cs.INBOUND, depositor=d)),
        ("/me/ratings/", lambda d, a, loan, n: more_finished_cases(d, n)),
    ],
)
def test_depositor_pages(client, counter, path, grow):
    depositor, account, loan = _subject()
    login_depositor(client, depositor)
    _same(counter, client, path.format(loan=loan.id), lambda n: grow(depositor, account, loan, n))


def test_deposit_detail_fragment(client, counter):
    depositor, account, _loan = _subject()
    login_depositor(client, depositor)
    _same(
        counter,
        client,
        "/me/deposits?page=1",
        lambda n: more_deposit_records(account, n),
        headers={"HX-Request": "true"},
    )


@pytest.mark.parametrize(
    "username, path, direction",
    [
        ("liaison", "/staff/board/outbound", cs.OUTBOUND),
        ("liaison", "/staff/board/inbound", cs.INBOUND),
        ("clerk", "/staff/board/outbound", cs.OUTBOUND),
        ("handler", "/staff/board/inbound", cs.INBOUND),
        ("auditor", "/staff/board/outbound?item=purchase_withdrawal", cs.OUTBOUND),
    ],
)
def test_boards(client, counter, username, path, direction):
    login_staff(client, username)
    _same(counter, client, path, lambda n: more_cases(n, direction))


def test_board_column_more(client, counter):
    login_staff(client, "liaison")
    more_cases(3 * N)  # the column has more than a page
    _same(
        counter,
        client,
        "/staff/board/outbound/column/accepted?offset=2",
        lambda n: more_cases(n),
        headers={"HX-Request": "true"},
    )


def test_ledger_for_a_month(client, counter):
    login_staff(client, "liaison")
    month = "date_from=2026-11-01&date_to=2026-11-30"
    _same(counter, client, f"/staff/ledger/?{month}", lambda n: more_cases(n))
    _same(
        counter,
        client,
        f"/staff/ledger/?{month}",
        lambda n: more_cases(n, cs.INBOUND),
        headers={"HX-Request": "true"},
    )


def test_case_detail_with_a_long_history(client, counter):
    login_staff(client, "liaison")
    case = make_case(cs.OUTBOUND, "verifying", prefix="QC")
    _same(counter, client, f"/staff/board/case/{case.id}", lambda n: more_history(case, n))


def test_staff_home(client, counter):
    login_staff(client, "handler")
    _same(counter, client, "/staff/", lambda n: more_cases(n, cs.INBOUND))


def test_verification_page(client, counter):
    depositor, _account, _loan = _subject()
    more_certificates(depositor, 1)
    code = Certificate.select().order_by(Certificate.id.desc()).first().verify_code
    _same(counter, client, f"/verify/{code}", lambda n: more_certificates(depositor, n))


def test_the_certificate_list_is_paged(client):
    """A depositor who issued many certificates still gets a small page (ten at a time)."""
    from bs4 import BeautifulSoup

    depositor, _account, _loan = _subject()
    login_depositor(client, depositor)
    before = Certificate.select().where(Certificate.depositor == depositor).count()
    more_certificates(depositor, 25)
    total = before + 25
    page = BeautifulSoup(client.get("/me/certificates").get_data(as_text=True), "html.parser")
    assert len(page.select("li.cert")) == 10
    assert page.select_one(".pager a[rel=next]")
    last = -(-total // 10)
    r = client.get(f"/me/certificates?page={last + 5}")  # beyond the end: the last page
    page = BeautifulSoup(r.get_data(as_text=True), "html.parser")
    assert len(page.select("li.cert")) == total - 10 * (last - 1)
    assert page.select_one(".pager a[rel=prev]") and not page.select_one(".pager a[rel=next]")
