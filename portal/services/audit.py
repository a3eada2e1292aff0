"""The audit log. Details never hold a full resident ID, bank card or phone number."""

from __future__ import annotations

from portal.models import AuditLog


def record(
    actor: str, action: str, target_type: str = "", target_id="", ip: str = "", **detail
) -> AuditLog:
    return AuditLog.create(
        actor=actor,
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        detail=detail,
        ip=ip or "",
    )
