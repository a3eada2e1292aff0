"""The audit log: append-only and hash-chained.

Each row's hash covers its content and the previous row's hash; the single ``audit_head`` row
holds the latest hash and is locked by every writer, so concurrent writers extend one linear
chain. ``verify()`` recomputes the chain and names the first broken row. Details never hold a
full resident ID, bank card or phone number (callers mask them).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from portal.db import Prepared, PreparedInsert, PreparedUpdate, locked, write_tx
from portal.models import AuditHead, AuditLog, utcnow

RETENTION_DAYS = 180


def row_hash(
    prev: str,
    at: datetime,
    actor: str,
    action: str,
    target_type: str,
    target_id: str,
    detail: dict,
    ip: str,
) -> str:
    payload = json.dumps(
        [
            prev,
            at.strftime("%Y-%m-%d %H:%M:%S.%f"),
            actor,
            action,
            target_type,
            target_id,
            detail,
            ip,
        ],
        ensure_ascii=False,
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode()).hexdigest()


# The chain's head, locked (issue 10: every audited change reads it; built once).
_HEAD = Prepared(lambda pk: locked(AuditHead.select().where(AuditHead.id == pk)).limit(1), 1)
_ADD = PreparedInsert(AuditLog)
_MOVE_HEAD = PreparedUpdate(AuditHead, "id")


def record(
    actor: str, action: str, target_type: str = "", target_id="", ip: str = "", **detail
) -> AuditLog:
    at = utcnow()
    target_id = str(target_id)
    ip = ip or ""
    detail = json.loads(json.dumps(detail, ensure_ascii=False, default=str))
    with write_tx():
        head = _HEAD.first(1)
        prev = head.last_hash if head else ""
        digest = row_hash(prev, at, actor, action, target_type, target_id, detail, ip)
        row = _ADD.create(
            at=at,
            actor=actor,
            action=action,
            target_type=target_type,
            target_id=target_id,
            detail=detail,
            ip=ip,
            prev_hash=prev,
            row_hash=digest,
        )
        if head:
            _MOVE_HEAD.execute({"last_hash": digest, "updated_at": at}, id=1)
        else:
            AuditHead.insert(id=1, last_hash=digest, anchor_hash="", updated_at=at).execute()
    return row


@dataclass
class ChainReport:
    rows: int
    broken_at: int | None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.broken_at is None


def verify(batch: int = 5000) -> ChainReport:
    """Walk the chain from the oldest kept row; report the first row that does not fit."""
    head = AuditHead.get_or_none(AuditHead.id == 1)
    prev = head.anchor_hash if head else ""
    count, last_id = 0, 0
    while True:
        rows = list(
            AuditLog.select().where(AuditLog.id > last_id).order_by(AuditLog.id).limit(batch)
        )
        if not rows:
            break
        for row in rows:
            if row.prev_hash != prev:
                return ChainReport(count, row.id, "与前一条记录的哈希不衔接（记录被删除或插入）")
            expected = row_hash(
                row.prev_hash,
                row.at,
                row.actor,
                row.action,
                row.target_type,
                row.target_id,
                row.detail or {},
                row.ip,
            )
            if expected != row.row_hash:
                return ChainReport(count, row.id, "记录内容与哈希不符（记录被篡改）")
            prev = row.row_hash
            count += 1
            last_id = row.id
    if head and count and head.last_hash != prev:
        return ChainReport(count, last_id, "链头与最后一条记录不符")
    return ChainReport(count, None)


class PurgeRefused(ValueError):
    pass


def purge(before: datetime, now: datetime | None = None) -> int:
    """Delete rows older than ``before`` (at least RETENTION_DAYS old); the oldest kept row's
    prev_hash becomes the chain's anchor."""
    now = now or utcnow()
    if before > now - timedelta(days=RETENTION_DAYS):
        raise PurgeRefused(f"只能清理 {RETENTION_DAYS} 天以前的审计记录")
    with write_tx():
        locked(AuditHead.select().where(AuditHead.id == 1)).first()
        first_kept = AuditLog.select().where(AuditLog.at >= before).order_by(AuditLog.id).first()
        deleted = AuditLog.delete().where(AuditLog.at < before).execute()
        anchor = first_kept.prev_hash if first_kept else ""
        if first_kept is None:
            head = AuditHead.get_or_none(AuditHead.id == 1)
            anchor = head.last_hash if head else ""
        AuditHead.update(anchor_hash=anchor).where(AuditHead.id == 1).execute()
        record("system", "audit.purge", "audit", "", before=before.isoformat(), rows=deleted)
    return deleted
