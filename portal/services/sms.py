"""The SMS adapter. ``outbox`` (development) stores messages for the dev-only page."""

from __future__ import annotations

import logging

from portal.db import PreparedInsert
from portal.models import SmsMessage
from portal.rules.ids import mask_phone

log = logging.getLogger(__name__)

_ADD = PreparedInsert(SmsMessage)  # issue 10: every code and notice writes one


class OutboxSms:
    def send(self, phone: str, body: str) -> None:
        _ADD.create(phone=phone, body=body)
        log.info("sms queued to %s", mask_phone(phone))


_ADAPTERS = {"outbox": OutboxSms}
_current = OutboxSms()


def configure(name: str) -> None:
    global _current
    try:
        _current = _ADAPTERS[name]()
    except KeyError:
        raise ValueError(f"unknown SMS adapter {name!r}") from None


def send(phone: str, body: str) -> None:
    _current.send(phone, body)
