"""The durable outbox of the peer HTTP exchange.

Every message to a peer reached over HTTP is written to ``outbox_message`` by
:func:`enqueue`, inside the same transaction as the state change that causes it (the signed
package itself is already in storage and in ``platform_message``). Nothing is sent from a web
request: the worker (``flask --app portal platform worker``, started by ``make run``) calls
:func:`run_once` in a loop.

* One peer's messages leave in the order they were written: while the oldest pending message
  to a peer waits for its retry, the later ones wait too.
* A failed attempt (peer unreachable, 5xx, 408/429) is retried after a backoff that doubles
  from ``BASE_DELAY`` and never exceeds ``MAX_DELAY``; after ``MAX_ATTEMPTS`` the message is
  marked failed. Any other 4xx (bad signature, unknown peer, schema, unknown case) is a refusal
  that a retry would only repeat: failed at once.
* A worker leases a message (``locked_until``) while it sends, so two workers never send the
  same message at once; should the lease run out after a crash, the message is sent again and
  the receiver, which processes a sender's message id once, answers "duplicate".
* Everything lives in the database: a restart of either portal loses nothing.
* The liaison sees pending and failed messages (``portal/intranet/outbox.py``) and can retry
  by hand (:func:`retry`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from peewee import fn

from portal.db import locked, write_tx
from portal.models import Center, OutboxMessage, PlatformMessage, ProxyCase, utcnow
from portal.platform import http as transport_http
from portal.platform.messages import TYPE_LABELS
from portal.services import audit
from portal.storage import StorageError, get_storage

log = logging.getLogger(__name__)

BASE_DELAY = 5.0  # seconds before the first retry
MAX_DELAY = 600.0  # the backoff never waits longer than this
MAX_ATTEMPTS = 40  # with the cap, about six hours of trying before "failed"
LEASE = timedelta(seconds=120)
ACTOR = "system:outbox"

Transport = Callable[..., transport_http.Response]


class NotFound(Exception):
    """No such outbox message."""


class Refused(Exception):
    """The action does not apply to this message; the text says why, in Chinese."""


def backoff(attempts: int, base: float = BASE_DELAY, cap: float = MAX_DELAY) -> float:
    """Seconds to wait after the ``attempts``-th failed attempt: base, 2·base, 4·base … ≤ cap."""
    if attempts <= 0:
        return 0.0
    return min(cap, base * 2 ** min(attempts - 1, 30))


def enqueue(
    center: Center, stored: PlatformMessage, case: ProxyCase | None, actor: str
) -> OutboxMessage:
    """Queue a stored, signed message for delivery (call inside the causing transaction)."""
    now = utcnow()
    return OutboxMessage.create(
        message_id=stored.message_id,
        platform_message=stored,
        center=center,
        case=case,
        kind=stored.kind,
        status="pending",
        next_attempt_at=now,
        created_by=actor[:40],
        created_at=now,
        updated_at=now,
    )


# --- the worker ---------------------------------------------------------------------------


@dataclass
class RunReport:
    sent: list[str] = field(default_factory=list)
    retried: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    @property
    def busy(self) -> bool:
        return bool(self.sent or self.retried or self.failed)


def _claim(row: OutboxMessage, now: datetime) -> bool:
    with write_tx():
        won = (
            OutboxMessage.update(locked_until=now + LEASE)
            .where(
                (OutboxMessage.id == row.id)
                & (OutboxMessage.status == "pending")
                & (OutboxMessage.locked_until.is_null() | (OutboxMessage.locked_until < now))
            )
            .execute()
        )
    return won == 1


def _case_no(row: OutboxMessage) -> str:
    if not row.case_id:
        return ""
    found = ProxyCase.select(ProxyCase.case_no).where(ProxyCase.id == row.case_id).first()
    return found.case_no if found else ""


def _mark_delivery(row: OutboxMessage, value: str, only_from: tuple[str, ...]) -> None:
    """The card's 待送达 / 发送失败 follows the case.send message."""
    if row.kind != "case.send" or not row.case_id:
        return
    ProxyCase.update(delivery=value, updated_at=utcnow()).where(
        (ProxyCase.id == row.case_id) & ProxyCase.delivery.in_(only_from)
    ).execute()


def _sent(row: OutboxMessage, now: datetime, response: transport_http.Response) -> None:
    duplicate = response.json().get("status") == "duplicate"
    with write_tx():
        OutboxMessage.update(
            status="sent",
            attempts=OutboxMessage.attempts + 1,
            sent_at=now,
            locked_until=None,
            last_status=response.status,
            last_error="",
            updated_at=now,
        ).where(OutboxMessage.id == row.id).execute()
        audit.record(
            ACTOR,
            "platform.send",
            "proxy_case" if row.case_id else "center",
            row.case_id or row.center.code,
            message_id=row.message_id,
            kind=row.kind,
            recipient=row.center.code,
            case_no=_case_no(row),
            attempts=row.attempts + 1,
            http_status=response.status,
            duplicate=duplicate,
        )
    log.info("platform message %s (%s) delivered to %s", row.message_id, row.kind, row.center.code)


def _fail(row: OutboxMessage, now: datetime, error: str, status: int | None) -> None:
    with write_tx():
        OutboxMessage.update(
            status="failed",
            attempts=OutboxMessage.attempts + 1,
            locked_until=None,
            last_status=status,
            last_error=error[:300],
            updated_at=now,
        ).where(OutboxMessage.id == row.id).execute()
        _mark_delivery(row, "failed", ("pending",))
        audit.record(
            ACTOR,
            "platform.send_failed",
            "proxy_case" if row.case_id else "center",
            row.case_id or row.center.code,
            message_id=row.message_id,
            kind=row.kind,
            recipient=row.center.code,
            case_no=_case_no(row),
            attempts=row.attempts + 1,
            http_status=status,
            error=error[:200],
        )
    log.warning("platform message %s to %s failed: %s", row.message_id, row.center.code, error)


def _retry_later(
    row: OutboxMessage, now: datetime, error: str, status: int | None, base: float, cap: float
) -> str:
    attempts = row.attempts + 1
    if attempts >= MAX_ATTEMPTS:
        _fail(row, now, f"重试 {attempts} 次仍未送达：{error}", status)
        return "failed"
    with write_tx():
        OutboxMessage.update(
            attempts=attempts,
            next_attempt_at=now + timedelta(seconds=backoff(attempts, base, cap)),
            locked_until=None,
            last_status=status,
            last_error=error[:300],
            updated_at=now,
        ).where(OutboxMessage.id == row.id).execute()
    log.info(
        "platform message %s to %s: attempt %s failed (%s), retry in %.0fs",
        row.message_id,
        row.center.code,
        attempts,
        error,
        backoff(attempts, base, cap),
    )
    return "retried"


def deliver(
    row: OutboxMessage,
    now: datetime,
    transport: Transport | None = None,
    base: float = BASE_DELAY,
    cap: float = MAX_DELAY,
) -> str:
    """One attempt at a claimed message: "sent", "retried" or "failed"."""
    transport = transport or transport_http.post
    center = Center.get_by_id(row.center_id)
    if not center.exchange_url:
        _fail(row, now, "对方中心未配置交换地址（请管理员在对方中心设置中填写）", None)
        return "failed"
    stored = PlatformMessage.get_by_id(row.platform_message_id)
    try:
        data = get_storage().get(stored.storage_key, stored.sha256)
    except StorageError:
        _fail(row, now, "业务包文件缺失或校验失败，无法发送", None)
        return "failed"
    try:
        response = transport(center.exchange_url, data, message_id=row.message_id)
    except transport_http.TransportError as exc:
        return _retry_later(row, now, str(exc), None, base, cap)
    if response.ok:
        _sent(row, now, response)
        return "sent"
    if transport_http.retryable(response.status):
        return _retry_later(row, now, response.error, response.status, base, cap)
    _fail(row, now, f"对方拒收（HTTP {response.status}）：{response.error}", response.status)
    return "failed"


def run_once(
    now: datetime | None = None,
    transport: Transport | None = None,
    limit: int = 100,
    base: float = BASE_DELAY,
    cap: float = MAX_DELAY,
) -> RunReport:
    """Deliver what is due, oldest first per peer; a peer's later messages wait while its
    oldest pending one waits for a retry."""
    now = now or utcnow()
    report = RunReport()
    center_ids = [
        c
        for (c,) in OutboxMessage.select(fn.DISTINCT(OutboxMessage.center))
        .where(OutboxMessage.status == "pending")
        .tuples()
    ]
    budget = limit
    for center_id in sorted(center_ids):
        while budget > 0:
            head = (
                OutboxMessage.select()
                .where((OutboxMessage.center == center_id) & (OutboxMessage.status == "pending"))
                .order_by(OutboxMessage.id)
                .first()
            )
            if head is None or head.next_attempt_at > now:
                break
            if head.locked_until and head.locked_until > now:
                break  # another worker is sending it
            if not _claim(head, now):
                break
            budget -= 1
            outcome = deliver(head, now, transport, base, cap)
            getattr(report, outcome).append(head.message_id)
            if outcome == "retried":
                break  # keep the order: the rest wait for this one
    return report


def work(
    interval: float = 1.0,
    once: bool = False,
    should_stop: Callable[[], bool] = lambda: False,
    transport: Transport | None = None,
    base: float = BASE_DELAY,
    cap: float = MAX_DELAY,
    echo: Callable[[str], None] = lambda _text: None,
) -> int:
    """The worker loop (the CLI's): one round, or rounds every ``interval`` seconds until
    ``should_stop()``; a database hiccup is logged and the loop goes on. Returns the rounds."""
    from portal.db import db

    rounds = 0
    while True:
        rounds += 1
        try:
            with db.connection_context():
                report = run_once(transport=transport, base=base, cap=cap)
            for message_id in report.sent:
                echo(f"sent {message_id}")
            for message_id in report.retried:
                echo(f"retry later {message_id}")
            for message_id in report.failed:
                echo(f"failed {message_id}")
        except Exception:  # the loop must survive a database restart
            log.exception("outbox round failed")
            if once:
                raise
        if once or should_stop():
            return rounds
        deadline = time.monotonic() + interval
        while time.monotonic() < deadline and not should_stop():
            time.sleep(min(0.2, interval))
        if should_stop():
            return rounds


# --- the liaison's view and manual retry --------------------------------------------------


def retry(actor: str, outbox_id: int, now: datetime | None = None) -> OutboxMessage:
    """Send a failed or waiting message again as soon as the worker runs (attempts restart)."""
    now = now or utcnow()
    with write_tx():
        row = locked(OutboxMessage.select().where(OutboxMessage.id == outbox_id)).first()
        if row is None:
            raise NotFound
        if row.status == "sent":
            raise Refused("该报文已送达，无需重试")
        OutboxMessage.update(
            status="pending",
            attempts=0,
            next_attempt_at=now,
            locked_until=None,
            updated_at=now,
        ).where(OutboxMessage.id == row.id).execute()
        _mark_delivery(row, "pending", ("failed",))
        audit.record(
            actor,
            "platform.retry",
            "proxy_case" if row.case_id else "center",
            row.case_id or row.center.code,
            message_id=row.message_id,
            kind=row.kind,
            recipient=row.center.code,
            previous_status=row.status,
            attempts=row.attempts,
        )
    return OutboxMessage.get_by_id(outbox_id)


@dataclass
class Row:
    id: int
    message_id: str
    kind: str
    kind_label: str
    center_name: str
    center_code: str
    case_id: int | None
    case_no: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str
    last_status: int | None
    created_at: datetime
    sent_at: datetime | None
    created_by: str


@dataclass
class Overview:
    pending: list[Row]
    failed: list[Row]
    sent: list[Row]
    counts: dict[str, int]
    peers: list[tuple[str, str, str]]  # code, name, channel label


def _rows(query) -> list[Row]:
    rows = query.join(Center, on=(OutboxMessage.center == Center.id)).switch(OutboxMessage)
    cases = {}
    out = []
    for r in rows:
        if r.case_id and r.case_id not in cases:
            found = ProxyCase.select(ProxyCase.case_no).where(ProxyCase.id == r.case_id).first()
            cases[r.case_id] = found.case_no if found else ""
        out.append(
            Row(
                id=r.id,
                message_id=r.message_id,
                kind=r.kind,
                kind_label=TYPE_LABELS.get(r.kind, r.kind),
                center_name=r.center.name,
                center_code=r.center.code,
                case_id=r.case_id,
                case_no=cases.get(r.case_id, ""),
                status=r.status,
                attempts=r.attempts,
                next_attempt_at=r.next_attempt_at,
                last_error=r.last_error,
                last_status=r.last_status,
                created_at=r.created_at,
                sent_at=r.sent_at,
                created_by=r.created_by,
            )
        )
    return out


def overview(sent_limit: int = 20, limit: int = 200) -> Overview:
    base = OutboxMessage.select(OutboxMessage, Center)
    pending = _rows(
        base.where(OutboxMessage.status == "pending").order_by(OutboxMessage.id).limit(limit)
    )
    failed = _rows(
        base.where(OutboxMessage.status == "failed")
        .order_by(OutboxMessage.updated_at.desc(), OutboxMessage.id.desc())
        .limit(limit)
    )
    sent = _rows(
        base.where(OutboxMessage.status == "sent")
        .order_by(OutboxMessage.sent_at.desc(), OutboxMessage.id.desc())
        .limit(sent_limit)
    )
    counts = dict(
        OutboxMessage.select(OutboxMessage.status, fn.COUNT(OutboxMessage.id))
        .group_by(OutboxMessage.status)
        .tuples()
    )
    peers = [
        (c.code, c.name, "在线交换" if c.exchange_url else "文件交换")
        for c in Center.select().where(~Center.is_self & Center.active).order_by(Center.code)
    ]
    return Overview(pending, failed, sent, counts, peers)
