"""Platform messages: build them, validate them against the versioned JSON Schema, and give
the canonical bytes that are signed (``schema/case-message-v1.json``).

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

from jsonschema import Draft202012Validator

SCHEMA_VERSION = "1.0"
SCHEMA_PATH = Path(__file__).resolve().parent / "schema" / "case-message-v1.json"
MESSAGE_TYPES = ("case.send", "case.ack", "materials.request", "case.result", "mailing.report")
TYPE_LABELS = {
    "case.send": "业务传递",
    "case.ack": "接收确认",
    "materials.request": "补正材料请求",
    "case.result": "办理结果",
    "mailing.report": "邮寄信息",
}


class MessageInvalid(ValueError):
    """The message does not follow the schema; the text says where, in Chinese."""


@cache
def schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


@cache
def _validator() -> Draft202012Validator:
    Draft202012Validator.check_schema(schema())
    return Draft202012Validator(schema())


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
    errors = sorted(
        _validator().iter_errors(message), key=lambda e: (-len(e.absolute_path), e.message)
    )
    if errors:
        first = errors[0]
        more = f"（另有 {len(errors) - 1} 处）" if len(errors) > 1 else ""
        raise MessageInvalid(f"报文不符合规范 v{SCHEMA_VERSION}：{_describe(first)}{more}")


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
    case_ref: dict,
    payload: dict,
    *,
    message_id: str | None = None,
    created_at: datetime | None = None,
) -> dict:
    """An envelope around ``payload``, validated before it is returned."""
    message = {
        "schema_version": SCHEMA_VERSION,
        "message_id": message_id or str(uuid.uuid4()),
        "type": kind,
        "sender": sender,
        "recipient": recipient,
        "created_at": utc_stamp(created_at),
        "case_ref": case_ref,
        "payload": payload,
    }
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
