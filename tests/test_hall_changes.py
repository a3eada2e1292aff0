"""Individual deposit-information changes: phone (codes to old and new), bank card (Luhn, bank
verification, 7-day wait), address; each with history and an SMS notice."""

from __future__ import annotations

from datetime import timedelta

import pytest

from portal.models import ChangeRecord, Depositor, SmsMessage
from portal.rules.ids import luhn_check_digit
from portal.services import bank, changes, payouts
from tests.conftest import last_code, login_depositor
from tests.hall_helpers import fixed_today, retired_eligible, send_code, soup  # noqa: F401

pytestmark = pytest.mark.usefixtures("fixed_today")


def card(prefix="622848", length=19):
    body = prefix + "1" * (length - len(prefix) - 1)
    return body + luhn_check_digit(body)


def _history(depositor):
    return list(
        ChangeRecord.select().where(
            (ChangeRecord.subject_type == "depositor") & (ChangeRecord.subject_id == depositor.id)
        )
    )


def test_address_change_with_code_history_and_sms(client, depositor):
    login_depositor(client, depositor)
    code = send_code(client, depositor, "change")
    old = depositor.address
    r = client.post(
        "/me/changes/address",
        data={"addr-address": "阿拉善左旗巴彦浩特镇新华街 8 号", "addr-code": code},
    )
    assert r.status_code == 303
    assert Depositor.get_by_id(depositor.id).address == "阿拉善左旗巴彦浩特镇新华街 8 号"
    [record] = _history(depositor)
    assert (record.field, record.old_value, record.channel) == ("address", old, "online")
    assert (
        "联系地址已变更"
        in SmsMessage.select()
        .where(SmsMessage.phone == depositor.phone)
        .order_by(SmsMessage.id.desc())
        .get()
        .body
    )
    page = soup(client.get("/me/changes"))
    assert (
        "阿拉善左旗巴彦浩特镇新华街 8 号"
        in page.select_one("#hist-h").find_parent("section").get_text()
    )


def test_wrong_or_missing_code_changes_nothing(client, depositor):
    login_depositor(client, depositor)
    code = send_code(client, depositor, "change")
    wrong = "000000" if code != "000000" else "111111"
    r = client.post(
        "/me/changes/address", data={"addr-address": "新的地址 1 号", "addr-code": wrong}
    )
    assert r.status_code == 422
    assert soup(r).select_one("#addr-code-error").get_text() == "验证码不正确"
    r = client.post("/me/changes/address", data={"addr-address": "新的地址 1 号", "addr-code": ""})
    assert r.status_code == 422 and "此项必填" in soup(r).select_one("#addr-code-error").get_text()
    assert Depositor.get_by_id(depositor.id).address == depositor.address and not _history(
        depositor
    )


def test_card_change_luhn_bank_verification_and_wait(client):
    depositor = retired_eligible()
    login_depositor(client, depositor)
    bad = card()[:-1] + str((int(card()[-1]) + 1) % 10)
    r = client.post(
        "/me/changes/card",
        data={"card-card": bad, "card-bank_name": "中国银行", "card-code": "123456"},
    )
    assert r.status_code == 422 and "校验位" in soup(r).select_one("#card-card-error").get_text()
    code = send_code(client, depositor, "change")
    refused = card(bank.DEV_NOT_OWNED_PREFIX)
    r = client.post(
        "/me/changes/card",
        data={"card-card": refused, "card-bank_name": "中国银行", "card-code": code},
    )
    assert r.status_code == 422
    assert "不在您本人名下" in soup(r).select_one("#card-card-error").get_text()
    r = client.post(
        "/me/changes/card", data={"card-card": card(), "card-bank_name": "", "card-code": code}
    )
    assert r.status_code == 422 and soup(r).select_one("#card-bank_name-error")
    new = card()
    r = client.post(
        "/me/changes/card",
        data={
            "card-card": " ".join([new[:6], new[6:]]),
            "card-bank_name": "中国银行",
            "card-code": code,
        },
    )
    assert r.status_code == 303
    fresh = Depositor.get_by_id(depositor.id)
    assert fresh.bank_card == new and fresh.bank_name == "中国银行"
    assert fresh.bank_card_changed_at is not None
    [record] = _history(depositor)
    assert new not in record.new_value and "*" in record.new_value
    assert depositor.bank_card not in (record.old_value or "")
    page = client.get("/me/changes").get_data(as_text=True)
    assert new not in page and depositor.bank_card not in page
    sms = (
        SmsMessage.select()
        .where(SmsMessage.phone == depositor.phone)
        .order_by(SmsMessage.id.desc())
        .get()
        .body
    )
    assert "7 日后方可用于提取" in sms and new not in sms
    quote = payouts.retirement_quote(fresh, payouts.local_date(fresh.bank_card_changed_at))
    assert any("变更 7 日后方可提取" in r for r in quote.reasons)
    later = payouts.local_date(fresh.bank_card_changed_at) + timedelta(days=7)
    assert payouts.retirement_quote(fresh, later).eligible


def test_phone_change_needs_both_codes(client, depositor):
    login_depositor(client, depositor)
    r = client.post("/me/changes/phone", data={"phone-phone": "12345"})
    assert r.status_code == 422 and "11 位" in soup(r).select_one("#phone-phone-error").get_text()
    r = client.post("/me/changes/phone", data={"phone-phone": depositor.phone})
    assert r.status_code == 422 and "相同" in soup(r).select_one("#phone-phone-error").get_text()
    new_phone = "13900001234"
    r = client.post("/me/changes/phone", data={"phone-phone": new_phone})
    assert r.status_code == 303 and r.headers["Location"].endswith("/me/changes/phone/confirm")
    old_code, new_code = last_code(depositor.phone), last_code(new_phone)
    page = client.get("/me/changes/phone/confirm").get_data(as_text=True)
    assert new_phone not in page and "139****1234" in page
    wrong = "000000" if new_code != "000000" else "111111"
    r = client.post("/me/changes/phone/confirm", data={"old_code": old_code, "new_code": wrong})
    assert r.status_code == 422 and Depositor.get_by_id(depositor.id).phone == depositor.phone
    # the old code was used by that attempt: start again
    client.post("/me/changes/phone", data={"phone-phone": new_phone})
    r = client.post(
        "/me/changes/phone/confirm",
        data={"old_code": last_code(depositor.phone), "new_code": last_code(new_phone)},
    )
    assert r.status_code == 303
    assert Depositor.get_by_id(depositor.id).phone == new_phone
    [record] = _history(depositor)
    assert record.new_value == "139****1234" and depositor.phone not in record.old_value
    notices = [
        m.phone for m in SmsMessage.select().where(SmsMessage.body.contains("预留手机号已由"))
    ]
    assert depositor.phone in notices and new_phone in notices


def test_phone_confirm_without_a_pending_change_redirects(client, depositor):
    login_depositor(client, depositor)
    r = client.get("/me/changes/phone/confirm")
    assert r.status_code == 303 and r.headers["Location"].endswith("/me/changes")


def test_change_service_checks_the_new_numbers_challenge(depositor):
    old, new = changes.start_phone_change(depositor, "13900005678")
    from portal.services import identity

    with pytest.raises(changes.Refused, match="验证码无效"):
        changes.change_phone(
            depositor,
            "13900009999",
            old.id,
            identity._code_for(old),
            new.id,
            identity._code_for(new),
        )


def test_sms_codes_are_limited(depositor):
    for _ in range(changes.SMS_LIMIT):
        changes.send_action_code(depositor, "change")
    with pytest.raises(changes.Refused, match="过于频繁"):
        changes.send_action_code(depositor, "change")


def test_changes_page_shows_masked_current_values(client, depositor):
    login_depositor(client, depositor)
    text = client.get("/me/changes").get_data(as_text=True)
    assert depositor.phone not in text and depositor.bank_card not in text
    assert depositor.phone[:3] + "****" + depositor.phone[-4:] in text
