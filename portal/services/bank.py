"""Bank and payment adapters.

* The **bank** pays money out of the fund to a depositor's card (``pay_out``) and verifies that
  a card belongs to the person (``verify_card``).
* The **payment** adapter collects money from a depositor (``collect``), e.g. the part of an
  early loan repayment that the HPF balance does not cover.

Both are idempotent by key: the same key never moves money twice, and ``find(key)`` tells the
reconciliation whether a transfer happened. The development adapters keep their own ledger in the
``BankTransfer`` table (direction ``out`` / ``in``), committed on its own like a real bank's.

Development card verification: a card passes when its Luhn check digit is right and it does not
start with :data:`DEV_NOT_OWNED_PREFIX` (``621799``), the documented test prefix for "this card
does not belong to the person".
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from dataclasses import dataclass
from decimal import Decimal

from portal.db import write_tx
from portal.models import BankTransfer
from portal.rules.ids import is_valid_bank_card, mask_bank_card

log = logging.getLogger(__name__)

DEV_NOT_OWNED_PREFIX = "621799"


class BankError(Exception):
    """The bank refused a transfer for good (the payout can be reversed)."""


class BankUnavailable(BankError):
    """The bank did not answer; the outcome is unknown (reconcile later)."""


class CardRefused(Exception):
    """Card verification failed; the message is for the depositor."""


@dataclass(frozen=True)
class Transfer:
    key: str
    direction: str
    amount: Decimal
    card: str
    reference: str


def _as_transfer(row: BankTransfer) -> Transfer:
    return Transfer(row.idempotency_key, row.direction, row.amount, row.card, row.reference)


CRASH_POINTS = ("before", "during", "after")


def crash_point(name: str) -> None:
    """Test-only fault injection for ``scripts/crash_test.py`` (issue 9, point 17).

    With ``PORTAL_CRASH_POINT=<name>`` in the environment of a development server, the process
    dies here, in the middle of a withdrawal. With ``PORTAL_CRASH_MARKER=<file>`` as well it
    first writes the point's name to that file and waits to be killed (``kill -9`` by the
    script), so the whole server dies at that moment; after 60 s it exits by itself. Never set
    in production; only the development bank adapter calls it.
    """
    if os.environ.get("PORTAL_CRASH_POINT") != name:
        return
    marker = os.environ.get("PORTAL_CRASH_MARKER")
    if marker:
        with open(marker, "w", encoding="utf-8") as fh:
            fh.write(f"{name} {os.getpid()}\n")
        time.sleep(60)
    os._exit(137)


class DevLedger:
    """The development bank's ledger: one row per idempotency key."""

    prefix = "DEV"

    def _reference(self, key: str) -> str:
        return self.prefix + hashlib.sha256(key.encode()).hexdigest()[:24].upper()

    def _move(self, direction: str, key: str, card: str, amount: Decimal) -> Transfer:
        if amount <= 0:
            raise BankError("转账金额必须大于零")
        crash_point("before")
        with write_tx():
            BankTransfer.insert(
                idempotency_key=key,
                direction=direction,
                amount=amount,
                card=card or "",
                reference=self._reference(key),
            ).on_conflict_ignore().execute()
            row = BankTransfer.get(BankTransfer.idempotency_key == key)
            crash_point("during")  # the bank's own transaction is not committed yet
        crash_point("after")  # the bank paid; the portal has not confirmed
        if (row.direction, row.amount, row.card) != (direction, amount, card or ""):
            raise BankError("同一幂等键的转账内容不一致")
        log.info("dev bank %s %s to %s", direction, amount, mask_bank_card(card))
        return _as_transfer(row)

    def find(self, key: str) -> Transfer | None:
        row = BankTransfer.get_or_none(BankTransfer.idempotency_key == key)
        return _as_transfer(row) if row else None


class DevBank(DevLedger):
    def pay_out(self, key: str, card: str, amount: Decimal) -> Transfer:
        if not is_valid_bank_card(card):
            raise BankError("收款银行卡号无效")
        return self._move("out", key, card, amount)

    def verify_card(self, card: str, holder_name: str, resident_id: str) -> None:
        """Raise CardRefused unless the card is valid and belongs to the person."""
        if not is_valid_bank_card(card):
            raise CardRefused("银行卡号校验未通过，请核对卡号")
        if card.startswith(DEV_NOT_OWNED_PREFIX):
            raise CardRefused("银行核验未通过：该卡不在您本人名下，请使用本人的借记卡")


class DevPayments(DevLedger):
    def collect(self, key: str, card: str, amount: Decimal) -> Transfer:
        if not is_valid_bank_card(card):
            raise BankError("付款银行卡号无效")
        return self._move("in", key, card, amount)


_bank = DevBank()
_payments = DevPayments()
_ADAPTERS = {"dev": (DevBank, DevPayments)}


def configure(name: str) -> None:
    global _bank, _payments
    try:
        bank_cls, payments_cls = _ADAPTERS[name]
    except KeyError:
        raise ValueError(f"unknown bank adapter {name!r}") from None
    _bank, _payments = bank_cls(), payments_cls()


def bank() -> DevBank:
    return _bank


def payments() -> DevPayments:
    return _payments
