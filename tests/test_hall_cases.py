"""Case tracking: anonymous by receipt number + ID number, and the depositor's own cases;
plus the rate limiter and the bank adapters the hall uses."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from portal.models import BankTransfer, CaseEvent, Depositor, ProxyCase
from portal.rules import casestates
from portal.rules.ids import luhn_check_digit
from portal.services import bank, ratelimit, tracking
from tests.conftest import TODAY, login_depositor
from tests.hall_helpers import fixed_today, soup  # noqa: F401


def _case(state="verifying"):
    return (
        ProxyCase.select()
        .where((ProxyCase.direction == casestates.OUTBOUND) & (ProxyCase.state == state))
        .first()
    )


@pytest.mark.usefixtures("fixed_today")
def test_anonymous_tracking_shows_state_history_and_masked_data(client):
    case = _case("verifying")
    r = client.post(
        "/track", data={"receipt_no": case.receipt_no.lower(), "resident_id": case.applicant_id_no}
    )
    assert r.status_code == 200
    page = soup(r)
    text = page.get_text()
    assert "材料核实" in page.select_one(".case-state").get_text()
    assert [li.select_one("strong").get_text() for li in page.select(".timeline li")] == [
        "窗口受理",
        "材料核实",
    ]
    assert case.applicant_id_no not in text and case.applicant_name not in text
    assert case.applicant_id_no[:4] + "**********" + case.applicant_id_no[-4:] in text
    assert str(case.deadline) in text and "个工作日" in text


@pytest.mark.usefixtures("fixed_today")
def test_tracking_refuses_a_wrong_id_and_limits_guessing(client):
    case = _case("accepted")
    other_id = Depositor.select().first().resident_id
    r = client.post("/track", data={"receipt_no": case.receipt_no, "resident_id": other_id})
    assert r.status_code == 404 and "未查询到办件" in soup(r).select_one(".alert-error").get_text()
    r = client.post("/track", data={"receipt_no": case.receipt_no, "resident_id": "123"})
    assert r.status_code == 422 and "身份证号码格式不正确" in r.get_data(as_text=True)
    for _ in range(9):
        client.post("/track", data={"receipt_no": "HZ0", "resident_id": other_id})
    r = client.post(
        "/track", data={"receipt_no": case.receipt_no, "resident_id": case.applicant_id_no}
    )
    assert r.status_code == 429 and "查询次数过多" in r.get_data(as_text=True)


def test_supplement_pauses_and_estimated_deadlines_say_so():
    case = _case("supplement")
    view = tracking.track(case.receipt_no, case.applicant_id_no, TODAY)
    assert view.paused and view.deadline is None
    case = _case("accepted")
    ProxyCase.update(clock_start=date(2027, 3, 1), deadline=date(2027, 3, 10)).where(
        ProxyCase.id == case.id
    ).execute()
    view = tracking.track(case.receipt_no, case.applicant_id_no, date(2027, 3, 2))
    assert view.deadline_estimated


@pytest.mark.usefixtures("fixed_today")
def test_depositor_sees_own_cases_and_others_are_404(client):
    inbound = ProxyCase.select().where(ProxyCase.depositor.is_null(False)).first()
    owner = inbound.depositor
    login_depositor(client, owner)
    page = soup(client.get("/me/cases"))
    assert inbound.receipt_no in page.get_text()
    detail = client.get(f"/me/cases/{inbound.id}")
    assert detail.status_code == 200
    assert (
        casestates.label(inbound.direction, inbound.state)
        in soup(detail).select_one(".case-state").get_text()
    )
    stranger = (
        ProxyCase.select()
        .where(
            (ProxyCase.depositor.is_null(True) | (ProxyCase.depositor != owner))
            & (ProxyCase.applicant_id_no != owner.resident_id)
        )
        .first()
    )
    assert client.get(f"/me/cases/{stranger.id}").status_code == 404


def test_cases_by_applicant_id_count_as_own():
    case = _case("transmitted")
    person = Depositor.select().first()
    ProxyCase.update(applicant_id_no=person.resident_id).where(ProxyCase.id == case.id).execute()
    assert case.id in [v.case.id for v in tracking.my_cases(person, TODAY)]
    CaseEvent.create(case=case, action="mail", data={"tracking_no": "SF1"})
    assert "材料已寄出" in [e.label for e in tracking.my_case(person, case.id, TODAY).events]


# --- rate limiter -------------------------------------------------------------------------


def test_fixed_window_counter():
    assert all(ratelimit.hit("t:key", 3, 60, now=1000.0) for _ in range(3))
    assert not ratelimit.hit("t:key", 3, 60, now=1001.0)
    assert ratelimit.blocked("t:key", 3, 60, now=1002.0)
    assert ratelimit.count("t:key", 60, now=1002.0) == 4
    assert not ratelimit.blocked("t:key", 3, 60, now=1020.0)  # next window (1020 // 60 = 17)
    assert ratelimit.hit("t:key", 3, 60, now=1020.0)
    assert ratelimit.hit("x" * 500, 1, 60, now=1000.0)  # long keys are hashed
    assert ratelimit.purge(older_than_seconds=0, now=10**10) >= 1
    with pytest.raises(ValueError):
        ratelimit.hit("t:key", 1, 0)


# --- bank adapters ------------------------------------------------------------------------


def _card(prefix="622202"):
    body = prefix + "0" * 12
    return body + luhn_check_digit(body)


def test_dev_bank_is_idempotent_by_key():
    first = bank.bank().pay_out("t-key-1", _card(), Decimal("10.00"))
    again = bank.bank().pay_out("t-key-1", _card(), Decimal("10.00"))
    assert first == again
    assert BankTransfer.select().where(BankTransfer.idempotency_key == "t-key-1").count() == 1
    with pytest.raises(bank.BankError):
        bank.bank().pay_out("t-key-1", _card(), Decimal("11.00"))
    assert bank.bank().find("t-key-1").reference == first.reference
    assert bank.bank().find("t-key-2") is None
    assert bank.payments().collect("t-key-3", _card(), Decimal("5.00")).direction == "in"
    with pytest.raises(bank.BankError):
        bank.bank().pay_out("t-key-4", "1234", Decimal("1.00"))


def test_dev_card_verification():
    bank.bank().verify_card(_card(), "王芳", "x")
    with pytest.raises(bank.CardRefused, match="校验"):
        bank.bank().verify_card("6222020000000000001", "王芳", "x")
    with pytest.raises(bank.CardRefused, match="本人"):
        bank.bank().verify_card(_card(bank.DEV_NOT_OWNED_PREFIX), "王芳", "x")
