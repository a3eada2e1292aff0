"""Early full repayment (提前还清) and the loan-settlement certificate request."""

from __future__ import annotations

from decimal import Decimal

import pytest

from portal.models import (
    Account,
    BankTransfer,
    Certificate,
    CertificateRequest,
    DepositRecord,
    Loan,
    LoanRepayment,
    Payout,
)
from portal.services import loans, payouts
from portal.storage import get_storage
from tests.conftest import TODAY, login_depositor
from tests.hall_helpers import fixed_today, loan_of_kind, send_code, service_code, soup  # noqa: F401

TOKEN = "a" * 32


def _repay(loan, use_balance=True, token=TOKEN):
    challenge, code = service_code(loan.depositor, "payoff")
    return loans.early_repay(loan.depositor, loan.id, token, use_balance, challenge, code, TODAY)


def test_payoff_with_balance_first_then_card():
    loan = loan_of_kind("current")
    account = Account.get(Account.depositor == loan.depositor)
    Account.update(balance=Decimal("1000.00")).where(Account.id == account.id).execute()
    view = loans.loan_view(loan.depositor, loan.id, TODAY)
    quote = loans.payoff_quote(view, TODAY, TODAY)
    payout = _repay(loan)
    assert payout.status == "confirmed" and payout.amount == Decimal("1000.00")
    loan = Loan.get_by_id(loan.id)
    assert (loan.status, loan.outstanding, loan.settled_on, loan.settled_kind) == (
        "settled",
        Decimal("0.00"),
        TODAY,
        "early",
    )
    rows = list(
        LoanRepayment.select()
        .where((LoanRepayment.loan == loan) & (LoanRepayment.paid_on == TODAY))
        .order_by(LoanRepayment.id)
    )
    assert [r.kind for r in rows] == ["offset", "early"]
    assert sum(r.amount for r in rows) == quote.total
    assert sum(r.principal for r in rows) == quote.principal
    assert rows[0].interest == min(Decimal("1000.00"), quote.interest)
    account = Account.get_by_id(account.id)
    assert account.balance == 0
    line = (
        DepositRecord.select()
        .where(DepositRecord.account == account)
        .order_by(DepositRecord.id.desc())
        .get()
    )
    assert line.kind == "提取" and line.amount == Decimal("-1000.00") and "冲还贷" in line.memo
    collected = BankTransfer.get(BankTransfer.idempotency_key == payout.idempotency_key)
    assert collected.direction == "in" and collected.amount == quote.total - Decimal("1000.00")


def test_payoff_wholly_from_the_balance_needs_no_bank():
    loan = loan_of_kind("current")
    Account.update(balance=Decimal("9999999.00")).where(
        Account.depositor == loan.depositor
    ).execute()
    payout = _repay(loan)
    assert payout.status == "confirmed" and payout.bank_ref is None
    assert (
        not BankTransfer.select()
        .where(BankTransfer.idempotency_key == payout.idempotency_key)
        .exists()
    )
    kinds = [
        r.kind
        for r in LoanRepayment.select().where(
            (LoanRepayment.loan == loan) & (LoanRepayment.paid_on == TODAY)
        )
    ]
    assert kinds == ["offset"]


def test_payoff_by_card_only_keeps_the_balance():
    loan = loan_of_kind("current")
    before = Account.get(Account.depositor == loan.depositor).balance
    payout = _repay(loan, use_balance=False)
    assert payout.amount == 0 and Decimal(payout.detail["rest"]) == Decimal(payout.detail["total"])
    assert Account.get(Account.depositor == loan.depositor).balance == before


def test_overdue_loan_is_refused():
    loan = loan_of_kind("overdue")
    with pytest.raises(payouts.Refused, match="期逾期未还"):
        _repay(loan)
    assert Loan.get_by_id(loan.id).status == "active"


def test_settled_loan_is_refused_and_same_key_is_idempotent():
    loan = loan_of_kind("current")
    first = _repay(loan)
    assert loans.early_repay(loan.depositor, loan.id, TOKEN, True, None, "", TODAY).id == first.id
    with pytest.raises(payouts.Refused, match="已结清"):
        _repay(loan, token="b" * 32)


def test_someone_elses_loan_cannot_be_repaid(other_depositor):
    loan = Loan.select().where(Loan.depositor != other_depositor, Loan.status == "active").first()
    challenge, code = service_code(other_depositor, "payoff")
    with pytest.raises(loans.NotFound):
        loans.early_repay(other_depositor, loan.id, TOKEN, True, challenge, code, TODAY)


@pytest.mark.usefixtures("fixed_today")
def test_payoff_pages_end_to_end_then_settlement_certificate(client):
    loan = loan_of_kind("current")
    depositor = loan.depositor
    login_depositor(client, depositor)
    page = soup(client.get(f"/me/loans/{loan.id}/payoff"))
    total = page.select_one(".balance-value").get_text()
    token = page.select_one("input[name=token]")["value"]
    assert page.select("input[name=funding]")
    r = client.post(
        f"/me/loans/{loan.id}/payoff", data={"token": token, "funding": "balance", "code": ""}
    )
    assert r.status_code == 422
    code = send_code(client, depositor, "payoff")
    r = client.post(
        f"/me/loans/{loan.id}/payoff", data={"token": token, "funding": "balance", "code": code}
    )
    assert r.status_code == 303 and f"/me/loans/{loan.id}/payoff/" in r.headers["Location"]
    receipt = soup(client.get(r.headers["Location"]))
    assert receipt.select_one(".balance-value").get_text() == total
    assert "已还清" in receipt.select_one(".status").get_text()
    # resubmitting the same form lands on the same receipt
    again = client.post(
        f"/me/loans/{loan.id}/payoff", data={"token": token, "funding": "balance", "code": code}
    )
    assert again.headers["Location"] == r.headers["Location"]
    # the loan page offers the settlement certificate
    detail = soup(client.get(f"/me/loans/{loan.id}"))
    assert "已结清" in detail.select_one(".status").get_text()
    history = detail.select_one("#paid-h").find_parent("section").get_text()
    assert "公积金冲还贷" in history or "提前还清" in history
    r = client.post(f"/me/loans/{loan.id}/settlement-certificate")
    assert r.status_code == 303
    request = CertificateRequest.get(CertificateRequest.loan == loan)
    assert (request.source, request.status) == ("online", "pending")
    section = soup(client.get(f"/me/loans/{loan.id}")).select_one("#settlement").get_text()
    assert "待签发" in section
    client.post(f"/me/loans/{loan.id}/settlement-certificate")
    assert CertificateRequest.select().where(CertificateRequest.loan == loan).count() == 1
    # an official issues it (another issue builds that side): the depositor downloads it
    key, digest = get_storage().put(b"%PDF-1.4 settlement", "certificates", ".pdf")
    cert = Certificate.create(
        kind="settlement",
        number="JQ-TEST-1",
        verify_code="JQTESTCODE234567",
        depositor=depositor,
        loan=loan,
        storage_key=key,
        sha256=digest,
    )
    CertificateRequest.update(status="issued", certificate=cert).where(
        CertificateRequest.id == request.id
    ).execute()
    section = soup(client.get(f"/me/loans/{loan.id}")).select_one("#settlement")
    link = section.select_one("a.btn-primary")["href"]
    assert client.get(link).data == b"%PDF-1.4 settlement"


@pytest.mark.usefixtures("fixed_today")
def test_overdue_payoff_page_explains_and_has_no_form(client):
    loan = loan_of_kind("overdue")
    login_depositor(client, loan.depositor)
    page = soup(client.get(f"/me/loans/{loan.id}/payoff"))
    assert "期逾期未还" in page.select_one(".reasons").get_text()
    assert page.select_one("input[name=code]") is None
    r = client.post(
        f"/me/loans/{loan.id}/payoff", data={"token": TOKEN, "funding": "balance", "code": "123456"}
    )
    assert (
        r.status_code == 422
        and not Payout.select()
        .where(Payout.idempotency_key == loans.payoff_key(loan.id, TOKEN))
        .exists()
    )


def test_settlement_request_only_for_settled_loans(client):
    loan = loan_of_kind("current")
    with pytest.raises(payouts.Refused, match="结清后方可申请"):
        loans.request_settlement_certificate(loan.depositor, loan.id)
    settled = loan_of_kind("settled")
    CertificateRequest.delete().where(CertificateRequest.loan == settled).execute()
    assert loans.request_settlement_certificate(settled.depositor, settled.id).status == "pending"


def test_someone_elses_payoff_receipt_is_404(client, other_depositor):
    loan = loan_of_kind("current")
    payout = _repay(loan)
    login_depositor(client, other_depositor)
    assert client.get(f"/me/loans/{loan.id}/payoff/{payout.id}").status_code == 404


def test_a_loan_is_seen_by_its_borrower_and_co_borrower_only(other_depositor):
    from portal.models import Depositor

    loan = Loan.select().where(Loan.depositor != other_depositor).first()
    Loan.update(co_borrower=other_depositor).where(Loan.id == loan.id).execute()
    mine = loans.loan_view(loan.depositor, loan.id, TODAY)
    theirs = loans.loan_view(other_depositor, loan.id, TODAY)
    assert (mine.role, theirs.role) == ("borrower", "co_borrower")
    assert [r.id for r in mine.repayments] == [
        r.id
        for r in LoanRepayment.select()
        .where(LoanRepayment.loan == loan)
        .order_by(LoanRepayment.paid_on, LoanRepayment.id)
    ]
    assert mine.rate == loans.current_rate(loan, TODAY)
    stranger = Depositor.get(Depositor.id.not_in([loan.depositor_id, other_depositor.id]))
    with pytest.raises(loans.NotFound):
        loans.loan_view(stranger, loan.id, TODAY)
    with pytest.raises(loans.NotFound):
        loans.loan_view(loan.depositor, 10**9, TODAY)
