"""Individual deposit-information changes (个人缴存信息变更) and the hall's one-time codes.

Each change needs a fresh one-time code (a new mobile number: a code to the old AND the new
number), keeps history in ``ChangeRecord`` (card and phone masked), writes the audit log and
tells the depositor by SMS. A new bank card is checked (Luhn), verified through the bank adapter
and stamped ``bank_card_changed_at``: payouts to it wait 7 days (``payouts.CARD_WAIT_DAYS``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from portal.db import write_tx
from portal.models import ChangeRecord, Depositor, OtpChallenge, utcnow
from portal.rules.ids import is_valid_bank_card, mask_bank_card, mask_phone
from portal.services import audit, bank, identity, ratelimit, sms

# Purposes of the hall's one-time codes; a code for one action is never valid for another.
ACTION_PURPOSES = {
    "withdraw": "退休提取",
    "payoff": "提前还清贷款",
    "change": "信息变更",
    "change_new": "新手机号验证",
}

SMS_LIMIT = 6  # codes per depositor per window
SMS_WINDOW = 600
PHONE_RE = re.compile(r"^1[3-9]\d{9}$")
FIELD_LABELS = {"phone": "手机号码", "bank_card": "提取银行卡", "address": "联系地址"}
CHANNEL_LABELS = {"online": "网上业务大厅", "counter": "服务大厅柜台", "case": "跨省通办代办"}
BANKS = (
    "中国工商银行",
    "中国建设银行",
    "中国农业银行",
    "中国银行",
    "交通银行",
    "中国邮政储蓄银行",
    "内蒙古农村商业银行",
)


class Refused(Exception):
    """The change was not made; ``field`` names the form field the message belongs to."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


def subject(depositor: Depositor) -> str:
    return f"d:{depositor.id}"


def send_action_code(depositor: Depositor, purpose: str, phone: str | None = None) -> OtpChallenge:
    """Text a one-time code for ``purpose`` (at most SMS_LIMIT per 10 minutes)."""
    if purpose not in ACTION_PURPOSES:
        raise ValueError(f"unknown purpose {purpose!r}")
    if not ratelimit.hit(f"sms:d:{depositor.id}", SMS_LIMIT, SMS_WINDOW):
        raise Refused("验证码发送过于频繁，请 10 分钟后再试。")
    return identity.send_code(purpose, subject(depositor), phone or depositor.phone)


def _verify(depositor: Depositor, purpose: str, challenge_id, code: str) -> str | None:
    try:
        identity.verify_code(challenge_id, purpose, subject(depositor), code)
    except identity.CodeFailed as exc:
        return str(exc)
    return None


def _record(depositor: Depositor, field: str, old, new, actor: str, channel: str = "online"):
    return ChangeRecord.create(
        subject_type="depositor",
        subject_id=depositor.id,
        field=field,
        old_value=old,
        new_value=new,
        channel=channel,
        actor=actor,
        changed_at=utcnow(),
    )


# --- mobile number ------------------------------------------------------------------------


def normalize_phone(text: str | None) -> str:
    return "".join((text or "").split())


def start_phone_change(depositor: Depositor, new_phone: str) -> tuple[OtpChallenge, OtpChallenge]:
    """Send one code to the number on file and one to the new number."""
    new_phone = normalize_phone(new_phone)
    if not PHONE_RE.match(new_phone):
        raise Refused("请输入 11 位手机号码", "phone")
    if new_phone == depositor.phone:
        raise Refused("新手机号码与当前号码相同", "phone")
    old = send_action_code(depositor, "change")
    new = send_action_code(depositor, "change_new", new_phone)
    return old, new


def change_phone(
    depositor: Depositor,
    new_phone: str,
    old_challenge_id,
    old_code: str,
    new_challenge_id,
    new_code: str,
    actor: str | None = None,
) -> ChangeRecord:
    actor = actor or f"depositor:{depositor.id}"
    new_phone = normalize_phone(new_phone)
    if not PHONE_RE.match(new_phone) or new_phone == depositor.phone:
        raise Refused("手机号码无效，请重新开始", "phone")
    errors: dict[str, str] = {}
    with write_tx():
        challenge = OtpChallenge.get_or_none(OtpChallenge.id == new_challenge_id)
        if challenge is None or challenge.phone != new_phone:
            errors["new_code"] = "验证码无效或已过期，请重新获取"
        else:
            error = _verify(depositor, "change", old_challenge_id, old_code)
            if error:
                errors["old_code"] = error
            else:
                error = _verify(depositor, "change_new", new_challenge_id, new_code)
                if error:
                    errors["new_code"] = error
        if not errors:
            old_phone = Depositor.get_by_id(depositor.id).phone
            Depositor.update(phone=new_phone).where(Depositor.id == depositor.id).execute()
            record = _record(
                depositor, "phone", mask_phone(old_phone), mask_phone(new_phone), actor
            )
            audit.record(actor, "depositor.phone_changed", "depositor", depositor.id)
    if errors:
        field, message = next(iter(errors.items()))
        raise Refused(message, field)
    text = (
        f"【信息变更】您的住房公积金预留手机号已由 {mask_phone(old_phone)} 变更为 "
        f"{mask_phone(new_phone)}。如非本人操作，请立即拨打 12329。"
    )
    sms.send(old_phone, text)
    sms.send(new_phone, text)
    depositor.phone = new_phone
    return record


# --- bank card ----------------------------------------------------------------------------


def normalize_card(text: str | None) -> str:
    return "".join((text or "").split())


def check_card(depositor: Depositor, card: str, bank_name: str) -> str:
    """Validate a new card (Luhn, bank, not the same, bank verification); the clean number."""
    card = normalize_card(card)
    if not is_valid_bank_card(card):
        raise Refused("银行卡号无效（应为 16–19 位数字，且校验位正确）", "card")
    if bank_name not in BANKS:
        raise Refused("请选择开户银行", "bank_name")
    if card == depositor.bank_card:
        raise Refused("新卡号与当前登记的银行卡相同", "card")
    try:
        bank.bank().verify_card(card, depositor.name, depositor.resident_id)
    except bank.CardRefused as exc:
        raise Refused(str(exc), "card") from None
    return card


def change_card(
    depositor: Depositor,
    card: str,
    bank_name: str,
    challenge_id,
    code: str,
    actor: str | None = None,
) -> ChangeRecord:
    actor = actor or f"depositor:{depositor.id}"
    card = check_card(depositor, card, bank_name)
    error = None
    with write_tx():
        error = _verify(depositor, "change", challenge_id, code)
        if error is None:
            old = Depositor.get_by_id(depositor.id)
            Depositor.update(
                bank_card=card, bank_name=bank_name, bank_card_changed_at=utcnow()
            ).where(Depositor.id == depositor.id).execute()
            record = _record(
                depositor,
                "bank_card",
                f"{old.bank_name} {mask_bank_card(old.bank_card)}".strip()
                if old.bank_card
                else None,
                f"{bank_name} {mask_bank_card(card)}",
                actor,
            )
            audit.record(
                actor,
                "depositor.card_changed",
                "depositor",
                depositor.id,
                card=mask_bank_card(card),
            )
    if error:
        raise Refused(error, "code")
    sms.send(
        depositor.phone,
        f"【信息变更】您的住房公积金提取银行卡已变更为 {bank_name} {mask_bank_card(card)}，"
        "为保障资金安全，变更 7 日后方可用于提取。如非本人操作，请立即拨打 12329。",
    )
    return record


# --- address ------------------------------------------------------------------------------


def change_address(
    depositor: Depositor, address: str, challenge_id, code: str, actor: str | None = None
) -> ChangeRecord:
    actor = actor or f"depositor:{depositor.id}"
    address = " ".join((address or "").split())
    if not 4 <= len(address) <= 200:
        raise Refused("请填写 4–200 个字的联系地址", "address")
    if address == depositor.address:
        raise Refused("新地址与当前地址相同", "address")
    with write_tx():
        error = _verify(depositor, "change", challenge_id, code)
        if error is None:
            old = Depositor.get_by_id(depositor.id).address
            Depositor.update(address=address).where(Depositor.id == depositor.id).execute()
            record = _record(depositor, "address", old or None, address, actor)
            audit.record(actor, "depositor.address_changed", "depositor", depositor.id)
    if error:
        raise Refused(error, "code")
    sms.send(
        depositor.phone,
        "【信息变更】您在住房公积金中心登记的联系地址已变更。如非本人操作，请立即拨打 12329。",
    )
    return record


# --- history ------------------------------------------------------------------------------


@dataclass
class HistoryRow:
    record: ChangeRecord
    field_label: str
    channel_label: str


def history(depositor: Depositor) -> list[HistoryRow]:
    rows = (
        ChangeRecord.select()
        .where(
            (ChangeRecord.subject_type == "depositor") & (ChangeRecord.subject_id == depositor.id)
        )
        .order_by(ChangeRecord.changed_at.desc(), ChangeRecord.id.desc())
    )
    return [
        HistoryRow(r, FIELD_LABELS.get(r.field, r.field), CHANNEL_LABELS.get(r.channel, r.channel))
        for r in rows
    ]
