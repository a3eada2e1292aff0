"""亮码可办: a depositor's one-day business e-code, instead of a paper certificate.

The depositor shows the code (digits and a QR code) at another center's counter; that center's
clerk enters it, and the clerk's portal asks ours for the depositor's information table
through the exchange (``exchange.query_ecode`` → our inbox → :func:`answer_query`).

Rules:

* the code is the issuing center's six-digit code and ten random digits (16 digits);
* valid until 24:00 Asia/Shanghai of the day it was issued (``expires_at``, stored in UTC);
* single use: the first center that queries it uses it up (a conditional UPDATE, so two
  queries at once cannot both win); later queries are told it was used, and when;
* one code at a time: asking again while one is valid shows that one; the depositor may void
  (作废) an unused code;
* the depositor sees which center used it, who, and when (and gets an SMS).

The code is a bearer secret for a day: it is never written to the log or the audit trail in
full (:func:`mask`).
"""

from __future__ import annotations

import base64
import io
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from peewee import JOIN, IntegrityError

from portal.db import write_tx
from portal.models import (
    Account,
    Center,
    Depositor,
    DepositRecord,
    ECode,
    ECodeLookup,
    Employer,
    Loan,
    PlatformMessage,
    StaffUser,
    utcnow,
)
from portal.services import audit, ratelimit, sms

SHANGHAI = ZoneInfo("Asia/Shanghai")
RANDOM_DIGITS = 10
CODE_LENGTH = 6 + RANDOM_DIGITS
DAILY_LIMIT = 10  # codes one depositor may issue a day
PEER_FAILURES = 30  # refused look-ups one peer center may make an hour
LOOKUP_LIMIT = 60  # look-ups one clerk may make an hour
DEPOSIT_LINES = 12
STATUS_LABELS = {
    "active": "有效",
    "used": "已使用",
    "expired": "已过期",
    "revoked": "已作废",
}


class Refused(Exception):
    """The depositor or the clerk cannot do this; the text says why, in Chinese."""


class NotFound(Exception):
    """No such code for this depositor (someone else's id → 404)."""


# --- the code -----------------------------------------------------------------------------


def expires_at_for(day: date) -> datetime:
    """24:00 Asia/Shanghai at the end of ``day``, as naive UTC (how times are stored)."""
    midnight = datetime.combine(day + timedelta(days=1), time(0, 0), tzinfo=SHANGHAI)
    return midnight.astimezone(UTC).replace(tzinfo=None)


def normalize(text: str | None) -> str:
    """The digits of a code as typed or read out: spaces and hyphens dropped."""
    return "".join(ch for ch in (text or "") if ch not in " -\u3000\t")


def is_well_formed(code: str) -> bool:
    return len(code) == CODE_LENGTH and code.isascii() and code.isdigit()


def format_code(code: str) -> str:
    """``1529 0048 2177 3019``: four groups of four, easy to read out."""
    return " ".join(code[i : i + 4] for i in range(0, len(code), 4))


def mask(code: str) -> str:
    """The issuing center and the last four digits only."""
    if len(code) < 10:
        return "*" * len(code)
    return code[:6] + "*" * (len(code) - 10) + code[-4:]


def status(row: ECode, now: datetime) -> str:
    if row.used_at is not None:
        return "used"
    if row.revoked_at is not None:
        return "revoked"
    if row.expires_at <= now:
        return "expired"
    return "active"


def _new_code(center_code: str) -> str:
    return center_code + "".join(str(secrets.randbelow(10)) for _ in range(RANDOM_DIGITS))


def qr_data_uri(code: str) -> str:
    """The code as an SVG QR code (a data: URI; the CSP allows data: images)."""
    import segno

    buffer = io.BytesIO()
    segno.make(code, error="m").save(buffer, kind="svg", scale=6, border=2, xmldecl=False)
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode()


# --- the depositor's side -----------------------------------------------------------------


@dataclass
class CodeView:
    id: int
    code: str
    display: str
    issued_on: date
    expires_at: datetime
    status: str
    status_label: str
    used_at: datetime | None
    used_by_center_name: str
    used_by: str
    revoked_at: datetime | None


def _view(row: ECode, now: datetime) -> CodeView:
    state = status(row, now)
    return CodeView(
        id=row.id,
        code=row.code if state == "active" else mask(row.code),
        display=format_code(row.code) if state == "active" else format_code(mask(row.code)),
        issued_on=row.issued_on,
        expires_at=row.expires_at,
        status=state,
        status_label=STATUS_LABELS[state],
        used_at=row.used_at,
        used_by_center_name=row.used_by_center_name,
        used_by=row.used_by,
        revoked_at=row.revoked_at,
    )


def _active(depositor: Depositor, now: datetime) -> ECode | None:
    return (
        ECode.select()
        .where(
            (ECode.depositor == depositor)
            & ECode.used_at.is_null()
            & ECode.revoked_at.is_null()
            & (ECode.expires_at > now)
        )
        .order_by(ECode.id.desc())
        .first()
    )


def current(depositor: Depositor, now: datetime | None = None) -> ECode | None:
    """The depositor's valid code, if any."""
    return _active(depositor, now or utcnow())


@dataclass
class Overview:
    active: CodeView | None
    qr: str
    history: list[CodeView]
    has_account: bool


def overview(depositor: Depositor, now: datetime | None = None, limit: int = 10) -> Overview:
    now = now or utcnow()
    current = _active(depositor, now)
    rows = (
        ECode.select()
        .where(ECode.depositor == depositor)
        .order_by(ECode.id.desc())
        .limit(limit + (1 if current else 0))
    )
    history = [_view(r, now) for r in rows if current is None or r.id != current.id][:limit]
    has_account = Account.select().where(Account.depositor == depositor).exists()
    return Overview(
        active=_view(current, now) if current else None,
        qr=qr_data_uri(current.code) if current else "",
        history=history,
        has_account=has_account,
    )


def issue(depositor: Depositor, actor: str, today: date, now: datetime | None = None) -> ECode:
    """Today's code: the valid one if there is one, else a new one valid until 24:00."""
    from portal.platform.files import self_center

    now = now or utcnow()
    account = Account.get_or_none(Account.depositor == depositor)
    if account is None:
        raise Refused("未查询到您的住房公积金账户，无法生成业务码")
    if account.status == "销户":
        raise Refused("您的住房公积金账户已销户，无法生成业务码")
    current = _active(depositor, now)
    if current is not None:
        return current
    if not ratelimit.hit(f"ecode:issue:d:{depositor.id}", DAILY_LIMIT, 86400):
        raise Refused(f"每天最多生成 {DAILY_LIMIT} 个业务码，请明天再试")
    center = self_center().code
    for attempt in range(5):
        code = _new_code(center)
        try:
            with write_tx():
                if _active(depositor, now) is not None:  # a second click that raced this one
                    return _active(depositor, now)
                row = ECode.create(
                    depositor=depositor,
                    code=code,
                    issued_on=today,
                    expires_at=expires_at_for(today),
                    created_at=now,
                )
                audit.record(
                    actor,
                    "ecode.issue",
                    "depositor",
                    depositor.id,
                    ecode=row.id,
                    code=mask(code),
                    valid_until=row.expires_at.isoformat(),
                )
            return row
        except IntegrityError:
            if attempt == 4:
                raise
    raise AssertionError("unreachable")


def revoke(depositor: Depositor, actor: str, ecode_id: int, now: datetime | None = None) -> ECode:
    """The depositor voids their own unused code."""
    now = now or utcnow()
    with write_tx():
        row = ECode.get_or_none((ECode.id == ecode_id) & (ECode.depositor == depositor))
        if row is None:
            raise NotFound
        state = status(row, now)
        if state != "active":
            raise Refused(f"该业务码{STATUS_LABELS[state]}，无需作废")
        won = (
            ECode.update(revoked_at=now)
            .where((ECode.id == row.id) & ECode.used_at.is_null() & ECode.revoked_at.is_null())
            .execute()
        )
        if won != 1:
            raise Refused("该业务码刚刚已被使用，不能作废")
        audit.record(actor, "ecode.revoke", "depositor", depositor.id, ecode=row.id)
    return ECode.get_by_id(row.id)


# --- the issuing center answers a query (our inbox) ---------------------------------------


def _money(value) -> str:
    return f"{value:.2f}"


def information_table(depositor: Depositor, today: date) -> dict:
    """个人住房公积金缴存使用信息表: the account, loans and the latest deposit lines."""
    account = (
        Account.select(Account, Employer)
        .join(Employer, JOIN.LEFT_OUTER, on=(Account.employer == Employer.id))
        .where(Account.depositor == depositor)
        .first()
    )
    account_info = None
    deposits = []
    if account is not None:
        account_info = {
            "account_no": account.account_no,
            "status": account.status,
            "employer": account.employer.name if account.employer_id else "",
            "opened_on": account.opened_on.isoformat(),
            "deposit_base": _money(account.deposit_base),
            "employer_ratio": account.employer_ratio,
            "employee_ratio": account.employee_ratio,
            "monthly_amount": _money(account.monthly_amount),
            "paid_up_to": account.paid_up_to or "",
            "balance": _money(account.balance),
        }
        for r in (
            DepositRecord.select()
            .where(DepositRecord.account == account)
            .order_by(DepositRecord.posted_on.desc(), DepositRecord.id.desc())
            .limit(DEPOSIT_LINES)
        ):
            line = {
                "posted_on": r.posted_on.isoformat(),
                "kind": r.kind,
                "amount": _money(r.amount),
            }
            if r.period:
                line["period"] = r.period
            deposits.append(line)
    loans = []
    for loan in Loan.select().where(Loan.depositor == depositor).order_by(Loan.disbursed_on):
        entry = {
            "contract_no": loan.contract_no,
            "amount": _money(loan.amount),
            "outstanding": _money(loan.outstanding),
            "status": loan.status,
            "disbursed_on": loan.disbursed_on.isoformat(),
            "term_months": loan.term_months,
        }
        if loan.settled_on:
            entry["settled_on"] = loan.settled_on.isoformat()
        loans.append(entry)
    return {
        "name": depositor.name,
        "id_no": depositor.resident_id,
        "as_of": today.isoformat(),
        "account": account_info,
        "loans": loans[:20],
        "deposits": deposits,
    }


def _why_not(code: str, now: datetime) -> str:
    from portal.filters import local_dt

    row = ECode.get_or_none(ECode.code == code)
    if row is None:
        return "业务码不存在，请核对后重新输入"
    state = status(row, now)
    if state == "used":
        return f"业务码已于 {local_dt(row.used_at)} 被使用，每个业务码只能查询一次"
    if state == "revoked":
        return "业务码已被缴存人作废"
    return "业务码已过期（当日 24:00 失效），请缴存人重新生成"


def answer_query(peer: Center, message: dict, data: bytes, actor: str, today: date) -> bytes:
    """Use up the code for ``peer`` and answer with the signed information table, or refuse
    (signed as well). Returns the reply package; everything is recorded in one transaction."""
    from portal.platform import files, messages, signing
    from portal.storage import get_storage

    payload = message["payload"]
    code = payload["code"]
    clerk = payload["clerk"]
    used_by = clerk["name"] + (f"（{clerk['department']}）" if clerk.get("department") else "")
    now = utcnow()
    query_key, query_sha = get_storage().put(data, "packages", ".zip")
    limit_key = f"ecode:peer:{peer.code}"
    with write_tx():
        won = 0
        if not ratelimit.blocked(limit_key, PEER_FAILURES, 3600):
            won = (
                ECode.update(
                    used_at=now,
                    used_by_center=peer.code,
                    used_by_center_name=peer.name[:100],
                    used_by=used_by[:100],
                    query_message_id=message["message_id"],
                )
                .where(
                    (ECode.code == code)
                    & ECode.used_at.is_null()
                    & ECode.revoked_at.is_null()
                    & (ECode.expires_at > now)
                )
                .execute()
            )
            reason = "" if won else _why_not(code, now)
        else:
            reason = "查询过于频繁，请稍后再试"
        row = ECode.get_or_none(ECode.code == code) if won else None
        if won:
            table = information_table(row.depositor, today)
            reply_payload = messages.ecode_reply_payload(
                message["message_id"], table=table, used_at=now
            )
        else:
            ratelimit.hit(limit_key, PEER_FAILURES, 3600)
            reply_payload = messages.ecode_reply_payload(message["message_id"], reason=reason)
        reply = messages.build(
            "ecode.reply", files.self_center().code, peer.code, None, reply_payload
        )
        reply_bytes = files.pack(reply, {}, signing.private_key())
        reply_key, reply_sha = get_storage().put(reply_bytes, "packages", ".zip")
        for m, direction, key, digest in (
            (message, "in", query_key, query_sha),
            (reply, "out", reply_key, reply_sha),
        ):
            PlatformMessage.create(
                message_id=m["message_id"],
                direction=direction,
                kind=m["type"],
                sender=m["sender"],
                recipient=m["recipient"],
                storage_key=key,
                sha256=digest,
                actor=actor[:40],
            )
        audit.record(
            actor,
            "platform.receive",
            "center",
            peer.code,
            message_id=message["message_id"],
            kind="ecode.query",
            sender=peer.code,
        )
        audit.record(
            actor,
            "platform.send",
            "center",
            peer.code,
            message_id=reply["message_id"],
            kind="ecode.reply",
            recipient=peer.code,
            channel="http",
        )
        if won:
            ECode.update(reply_key=reply_key, reply_sha256=reply_sha).where(
                ECode.id == row.id
            ).execute()
            audit.record(
                actor,
                "ecode.used",
                "depositor",
                row.depositor_id,
                ecode=row.id,
                code=mask(code),
                center=peer.code,
                message_id=message["message_id"],
            )
            depositor = row.depositor
            sms.send(
                depositor.phone,
                f"【亮码可办】您的业务码（尾号 {code[-4:]}）已于 {_local_hm(now)} "
                f"被{peer.name}查询使用，如非本人授权请致电 12329。",
            )
        else:
            audit.record(
                actor,
                "ecode.refused",
                "center",
                peer.code,
                code=mask(code),
                reason=reason,
                message_id=message["message_id"],
            )
    return reply_bytes


def _local_hm(at: datetime) -> str:
    from portal.filters import local_dt

    return local_dt(at, "%H:%M")


def stored_reply(sender: str, query_message_id: str) -> bytes:
    """The answer to a query message delivered again: the very reply it got, when it used a
    code; otherwise a signed refusal saying so (nothing is used up twice)."""
    from portal.platform import files, messages, signing
    from portal.storage import StorageError, get_storage

    row = ECode.get_or_none(
        (ECode.query_message_id == query_message_id) & (ECode.used_by_center == sender)
    )
    if row is not None and row.reply_key:
        try:
            return get_storage().get(row.reply_key, row.reply_sha256)
        except StorageError:
            pass
    payload = messages.ecode_reply_payload(
        query_message_id, reason="该查询报文已处理过，请重新输入业务码查询"
    )
    reply = messages.build("ecode.reply", files.self_center().code, sender, None, payload)
    return files.pack(reply, {}, signing.private_key())


# --- the querying center (the other center's clerk) ---------------------------------------

LOOKUP_ROLES = ("clerk", "handler")


def peer_for(code: str) -> Center:
    from portal.platform.files import self_center

    if not is_well_formed(code):
        raise Refused("业务码为 16 位数字，请核对后重新输入")
    prefix = code[:6]
    if prefix == self_center().code:
        raise Refused("这是本中心签发的业务码：本中心缴存人的信息请直接在本中心系统查询")
    center = Center.get_or_none((Center.code == prefix) & ~Center.is_self & Center.active)
    if center is None:
        raise Refused(f"业务码的签发中心（{prefix}）不在本中心的协作中心名单中")
    return center


def lookup(user: StaffUser, actor: str, text: str) -> ECodeLookup:
    """Fetch the information table of the depositor who showed this code."""
    from portal.platform import exchange

    if user.role not in LOOKUP_ROLES:
        raise Refused("只有窗口经办和管理部经办可以亮码查询")
    code = normalize(text)
    center = peer_for(code)
    if not ratelimit.hit(f"ecode:lookup:s:{user.id}", LOOKUP_LIMIT, 3600):
        raise Refused("查询过于频繁，请稍后再试")
    try:
        answer = exchange.query_ecode(center, code, user, actor)
    except exchange.ExchangeRefused as exc:
        raise Refused(str(exc)) from None
    payload = answer.payload
    ok = payload["outcome"] == "ok"
    with write_tx():
        row = ECodeLookup.create(
            staff=user,
            center=center,
            code_hint=mask(code),
            message_id=answer.query_id,
            reply_message_id=answer.reply_id,
            outcome="ok" if ok else "refused",
            reason=str(payload.get("reason", ""))[:200],
            data=payload.get("table") or {},
        )
        audit.record(
            actor,
            "ecode.lookup",
            "center",
            center.code,
            lookup=row.id,
            code=mask(code),
            outcome=row.outcome,
            message_id=answer.query_id,
            reply_id=answer.reply_id,
        )
    return row


def own_lookup(user: StaffUser, lookup_id: int) -> ECodeLookup:
    """A look-up this clerk made (anyone else's → NotFound)."""
    row = ECodeLookup.get_or_none((ECodeLookup.id == lookup_id) & (ECodeLookup.staff == user))
    if row is None:
        raise NotFound
    return row


def recent_lookups(user: StaffUser, limit: int = 10) -> list[ECodeLookup]:
    return list(
        ECodeLookup.select(ECodeLookup, Center)
        .join(Center)
        .where(ECodeLookup.staff == user)
        .order_by(ECodeLookup.id.desc())
        .limit(limit)
    )
