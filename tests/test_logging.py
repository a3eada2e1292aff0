"""Logs never contain ID numbers, card numbers, phone numbers or query strings."""

from __future__ import annotations

import logging

from portal.logfilter import PersonalDataFilter, scrub
from tests.conftest import login_depositor


def test_scrub_masks_ids_cards_phones_and_queries():
    line = (
        '127.0.0.1 - - "GET /dev/sms?phone=13812345678 HTTP/1.1" 200 - '
        "id 11010519491231002X card 6222020200112233445 phone 13812345678"
    )
    out = scrub(line)
    assert "11010519491231002X" not in out and "1101**********002X" in out
    assert "6222020200112233445" not in out and "13812345678" not in out
    assert "?phone" not in out


def test_filter_rewrites_records():
    record = logging.LogRecord(
        "x", logging.INFO, __file__, 1, "user %s", ("11010519491231002X",), None
    )
    PersonalDataFilter().filter(record)
    assert "11010519491231002X" not in record.getMessage()


def test_a_login_journey_logs_nothing_personal(client, depositor, caplog):
    caplog.set_level(logging.DEBUG)
    for handler in [caplog.handler]:
        handler.addFilter(PersonalDataFilter())
    login_depositor(client, depositor)
    client.get("/me/")
    client.get(f"/dev/sms?phone={depositor.phone}")
    text = "\n".join(r.getMessage() for r in caplog.records)
    for secret in (depositor.resident_id, depositor.phone, depositor.bank_card, "Demo1234"):
        assert secret not in text
