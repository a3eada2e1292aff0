"""Helpers for the depositor-hall tests (issue 4): demo people by situation, codes, pages."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from bs4 import BeautifulSoup

from portal.models import Account, Depositor, Loan
from portal.services import identity, payouts
from tests.conftest import TODAY, last_code

__all__ = ["TODAY", "fixed_today", "soup", "send_code", "retired_eligible", "service_code"]


@pytest.fixture
def fixed_today(monkeypatch):
    """Views use the Shanghai date; pin it to the day the demo data was made for."""
    monkeypatch.setattr("portal.public.hall.local_today", lambda: TODAY)
    monkeypatch.setattr("portal.public.routes.local_today", lambda: TODAY)
    return TODAY


def soup(response) -> BeautifulSoup:
    return BeautifulSoup(response.get_data(as_text=True), "html.parser")


def send_code(client, depositor, purpose: str) -> str:
    """Press "获取验证码" for ``purpose`` and read the code from the SMS outbox."""
    r = client.post(f"/me/code/{purpose}", data={"next": "/me/"})
    assert r.status_code == 303, r.get_data(as_text=True)[:500]
    return last_code(Depositor.get_by_id(depositor.id).phone)


def service_code(depositor, purpose: str) -> tuple[int, str]:
    """A challenge sent straight through the identity service: (challenge id, code)."""
    challenge = identity.send_code(purpose, f"d:{depositor.id}", depositor.phone)
    return challenge.id, identity._code_for(challenge)


def with_password():
    return Depositor.password_hash.is_null(False)


def retired_eligible(today: date = TODAY, skip: int = 0) -> Depositor:
    """A demo depositor who may make the retirement withdrawal today."""
    found = 0
    for d in Depositor.select().where(with_password()).order_by(Depositor.id):
        if payouts.retirement_quote(d, today).eligible:
            if found == skip:
                return d
            found += 1
    raise AssertionError("demo data lacks an eligible retired depositor")


def not_retired_without_loan(today: date = TODAY) -> Depositor:
    for d in (
        Depositor.select()
        .join(Account)
        .where(with_password() & (Account.status == "正常"))
        .order_by(Depositor.id)
    ):
        q = payouts.retirement_quote(d, today)
        if q.reasons and all("法定退休" in r for r in q.reasons):
            return d
    raise AssertionError("no working depositor without other obstacles")


def loan_of_kind(kind: str, today: date = TODAY) -> Loan:
    """An active loan that is current ("current"), overdue ("overdue") or a settled one."""
    from portal.services import loans

    for loan in Loan.select().join(Depositor).where(with_password()).order_by(Loan.id):
        if kind == "settled":
            if loan.status == "settled":
                return loan
            continue
        if loan.status != "active":
            continue
        view = loans.loan_view(loan.depositor, loan.id, today)
        if (kind == "overdue") == bool(view.overdue):
            account = Account.get(Account.depositor == loan.depositor)
            if kind == "overdue" or account.status == "正常":
                return loan
    raise AssertionError(f"no {kind} loan in the demo data")


def money(text: str) -> Decimal:
    return Decimal(text.replace(",", "").strip())
