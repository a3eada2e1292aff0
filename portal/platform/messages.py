"""Platform messages: build them, validate them against the versioned JSON Schema, and give
the canonical bytes that are signed (``schema/case-message-v1.json`` and ``-v1.1.json``).

Versions: 1.0 carries the five case messages; 1.1 adds the 亮码可办 look-up (``ecode.query`` and
its ``ecode.reply``), which concern a depositor rather than a case. A message is validated
against the schema of its own ``schema_version``, so 1.0 messages stay readable; a sender
writes the lowest version that can carry the message (:func:`version_for`).

Canonical form: UTF-8 JSON with sorted keys, no insignificant whitespace and non-ASCII kept
as is. A signature covers these bytes, and through the ``sha256`` of every listed material,
the material files too.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator

SCHEMA_VERSION = "1.0"  # the base version: every case message
LATEST_VERSION = "1.1"
SCHEMA_DIR = Path(__file__).resolve().parent / "schema"
SCHEMA_PATH = SCHEMA_DIR / "case-message-v1.json"
SCHEMA_PATHS = {"1.0": SCHEMA_PATH, "1.1": SCHEMA_DIR / "case-message-v1.1.json"}
CASE_TYPES = ("case.send", "case.ack", "materials.request", "case.result", "mailing.report")
ECODE_TYPES = ("ecode.query", "ecode.reply")
MESSAGE_TYPES = CASE_TYPES + ECODE_TYPES
TYPE_LABELS = {
    "case.send": "业务传递",
    "case.ack": "接收确认",
    "materials.request": "补正材料请求",
    "case.result": "办理结果",
    "mailing.report": "邮寄信息",
    "ecode.query": "亮码查询",
    "ecode.reply": "亮码查询结果",
}


class MessageInvalid(ValueError):
    """The message does not follow the schema; the text says where, in Chinese."""


@cache
def schema(version: str = SCHEMA_VERSION) -> dict:
    return json.loads(SCHEMA_PATHS[version].read_text(encoding="utf-8"))


@cache
def _validator(version: str = SCHEMA_VERSION) -> Draft202012Validator:
    from jsonschema import Draft202012Validator  # loaded with the first message (issue 10)

    Draft202012Validator.check_schema(schema(version))
    return Draft202012Validator(schema(version))


def version_for(kind: str) -> str:
    """The lowest schema version that carries messages of this type."""
    return SCHEMA_VERSION if kind in CASE_TYPES else LATEST_VERSION


_PROBLEMS = {
    "required": "缺少必填字段",
    "additionalProperties": "含有规范未定义的字段",
    "type": "数据类型不正确",
    "pattern": "格式不正确",
    "enum": "取值不在允许范围内",
    "const": "取值不正确",
    "minLength": "内容过短",
    "maxLength": "内容过长",
    "minimum": "数值过小",
    "maximum": "数值过大",
    "minItems": "条目过少",
    "maxItems": "条目过多",
    "maxProperties": "字段过多",
}


def _describe(error) -> str:
    path = "/".join(str(p) for p in error.absolute_path) or "（报文根）"
    problem = _PROBLEMS.get(error.validator, "不符合规范")
    if error.validator == "required":
        missing = [f for f in error.validator_value if f not in (error.instance or {})]
        return f"{path} {problem}：{'、'.join(missing)}"
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = set((error.schema.get("properties") or {}).keys())
        extra = sorted(k for k in error.instance if k not in known)
        return f"{path} {problem}：{'、'.join(extra[:5])}"
    return f"{path} {problem}"


def validate(message: dict) -> None:
    """Raise :class:`MessageInvalid` naming the first (deepest) problem, else return."""
    if not isinstance(message, dict):
        raise MessageInvalid("报文不是 JSON 对象")
    version = message.get("schema_version")
    if version not in SCHEMA_PATHS:  # unknown: the latest schema names the problem
        version = LATEST_VERSION
    errors = sorted(
        _validator(version).iter_errors(message), key=lambda e: (-len(e.absolute_path), e.message)
    )
    if errors:
        first = errors[0]
        more = f"（另有 {len(errors) - 1} 处）" if len(errors) > 1 else ""
        raise MessageInvalid(f"报文不符合规范 v{version}：{_describe(first)}{more}")


def canonical(message: dict) -> bytes:
    """The bytes that are signed and stored as ``message.json``."""
    return json.dumps(message, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def utc_stamp(at: datetime | None = None) -> str:
    at = at or datetime.now(UTC)
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build(
    kind: str,
    sender: str,
    recipient: str,
    case_ref: dict | None,
    payload: dict,
    *,
    message_id: str | None = None,
    created_at: datetime | None = None,
) -> dict:
    """An envelope around ``payload``, validated before it is returned (``case_ref`` is None
    for the e-code messages, which are not about a case)."""
    message = {
        "schema_version": version_for(kind),
        "message_id": message_id or str(uuid.uuid4()),
        "type": kind,
        "sender": sender,
        "recipient": recipient,
        "created_at": utc_stamp(created_at),
        "payload": payload,
    }
    if case_ref is not None:
        message["case_ref"] = case_ref
    validate(message)
    return message


def file_entry(code: str, name: str, filename: str, content_type: str, size: int, sha256: str):
    return {
        "code": code,
        "name": name,
        "filename": filename,
        "content_type": content_type,
        "size": size,
        "sha256": sha256,
    }


def case_send_payload(
    *,
    item: str,
    applicant_name: str,
    applicant_id_no: str,
    applicant_phone: str,
    application: dict,
    checklist: dict,
    materials: list[dict],
    accepted_on: date,
    department: str = "",
    employer: dict | None = None,
) -> dict:
    payload = {
        "item": item,
        "applicant": {
            "name": applicant_name,
            "id_type": "resident_id",
            "id_no": applicant_id_no,
            "phone": applicant_phone or "",
        },
        "application": {str(k): "" if v is None else str(v) for k, v in application.items()},
        "checklist": {str(k): bool(v) for k, v in checklist.items()},
        "materials": materials,
        "accepted_on": accepted_on.isoformat(),
    }
    if department:
        payload["accepting_department"] = department
    if employer:
        payload["employer"] = employer
    return payload


# --- the other payloads (issue 8) ---------------------------------------------------------


def ack_payload(received_on: date, deadline: date) -> dict:
    return {"received_on": received_on.isoformat(), "deadline": deadline.isoformat()}


def materials_request_payload(missing: list[str], note: str = "") -> dict:
    payload: dict = {"missing": [str(m)[:100] for m in missing][:30]}
    if note:
        payload["note"] = note[:500]
    return payload


def result_payload(outcome: str, done_on: date, note: str = "", documents=None) -> dict:
    payload: dict = {"outcome": outcome, "done_on": done_on.isoformat()}
    if note:
        payload["note"] = note[:500]
    if documents:
        payload["documents"] = list(documents)
    return payload


def mailing_payload(carrier: str, tracking_no: str, mailed_on: date, contents: str = "") -> dict:
    payload = {"carrier": carrier, "tracking_no": tracking_no, "mailed_on": mailed_on.isoformat()}
    if contents:
        payload["contents"] = contents[:500]
    return payload


def ecode_query_payload(code: str, clerk_name: str, department: str = "", purpose: str = ""):
    clerk = {"name": clerk_name[:40]}
    if department:
        clerk["department"] = department[:60]
    payload: dict = {"code": code, "clerk": clerk}
    if purpose:
        payload["purpose"] = purpose[:500]
    return payload


def ecode_reply_payload(
    query_message_id: str,
    *,
    table: dict | None = None,
    used_at: datetime | None = None,
    reason: str = "",
) -> dict:
    if table is not None:
        return {
            "query_message_id": query_message_id,
            "outcome": "ok",
            "used_at": utc_stamp(used_at),
            "table": table,
        }
    return {"query_message_id": query_message_id, "outcome": "refused", "reason": reason[:500]}
