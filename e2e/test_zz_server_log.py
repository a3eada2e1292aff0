"""Runs last (file name): the SQLite portal's log, after every journey before it, holds no
resident ID, bank card, phone number, password or one-time code of the demo people."""

from __future__ import annotations

import re

import pytest

from portal.db import db, init_db
from portal.models import Depositor, EmployerOperator, SmsMessage

pytestmark = pytest.mark.e2e


def test_server_log_holds_no_personal_data(portal_server):
    text = portal_server.log_path.read_text(errors="replace")
    assert "GET /" in text or "POST /" in text  # the log really is the access log
    init_db(portal_server.database_url)
    try:
        people = list(Depositor.select()) + list(EmployerOperator.select())
        codes = {
            m.group(1)
            for sms in SmsMessage.select()
            if (m := re.search(r"验证码 (\d{6})", sms.body))
        }
    finally:
        db.close()
    leaks = []
    for person in people:
        for value in (person.resident_id, person.phone, getattr(person, "bank_card", None)):
            if value and value in text:
                leaks.append(f"{type(person).__name__} {person.id}")
    leaks += [f"code {c}" for c in codes if re.search(rf"(?<!\d){c}(?!\d)", text)]
    for secret in ("Demo1234", "Staff2026"):
        if secret in text:
            leaks.append("a demo password")
    assert leaks == [], f"personal data in the server log: {leaks[:10]}"
