"""Helpers for the employer-hall tests (issue 5): operators, codes, pages, settings."""

from __future__ import annotations

from datetime import date

import pytest
from bs4 import BeautifulSoup

from portal.models import Account, EmployerOperator, Setting
from tests.conftest import TODAY, last_code

__all__ = ["TODAY", "fixed_today", "soup", "send_code", "setting", "field_error"]


@pytest.fixture
def fixed_today(monkeypatch):
    """Views use the Shanghai date; pin it to the day the demo data was made for."""
    monkeypatch.setattr("portal.public.employer.local_today", lambda: TODAY)
    monkeypatch.setattr("portal.public.routes.local_today", lambda: TODAY)
    return TODAY


def soup(response) -> BeautifulSoup:
    return BeautifulSoup(response.get_data(as_text=True), "html.parser")


def field_error(response, field_id: str) -> str:
    node = soup(response).select_one(f"#{field_id}-error")
    assert node is not None, f"no error shown for {field_id}"
    return node.get_text()


def send_code(client, operator, purpose: str = "change") -> str:
    """Press "获取验证码" and read the code from the SMS outbox."""
    r = client.post(f"/employer/code/{purpose}", data={"next": "/employer/"})
    assert r.status_code == 303, r.get_data(as_text=True)[:500]
    return last_code(EmployerOperator.get_by_id(operator.id).phone)


def setting(key: str, value: str, effective_from: date = date(2025, 1, 1)) -> None:
    Setting.insert(key=key, value=value, effective_from=effective_from).on_conflict(
        conflict_target=[Setting.key, Setting.effective_from], update={Setting.value: value}
    ).execute()


@pytest.fixture
def secondary():
    """A non-primary operator (with a password) of an employer that has two."""
    return (
        EmployerOperator.select()
        .where(~EmployerOperator.is_primary & EmployerOperator.password_hash.is_null(False))
        .order_by(EmployerOperator.id)
        .first()
    )


@pytest.fixture
def primary_of_secondary(secondary):
    return EmployerOperator.get(
        (EmployerOperator.employer == secondary.employer_id) & EmployerOperator.is_primary
    )


@pytest.fixture
def foreign_operator(operator):
    """The primary operator of another employer."""
    return (
        EmployerOperator.select()
        .where(EmployerOperator.is_primary & (EmployerOperator.employer != operator.employer_id))
        .order_by(EmployerOperator.id)
        .first()
    )


def account_of(employer_id: int, status: str = "正常", skip: int = 0) -> Account:
    return (
        Account.select()
        .where((Account.employer == employer_id) & (Account.status == status))
        .order_by(Account.id)
        .offset(skip)
        .first()
    )
