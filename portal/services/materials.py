"""Scans and photos of a case's materials: checked by content, stored with their SHA-256.

A file is accepted when its first bytes say PDF, JPEG or PNG; empty files and files over 5 MB
are refused. A file uploaded by staff must also carry the extension of its detected type
(``.pdf``, ``.jpg``/``.jpeg``, ``.png``): a PDF named ``.png`` or a JPEG named ``.exe`` is
refused (issue 9). The stored name always carries the extension of the detected type. Only staff
read them (the views' guard).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from peewee import JOIN

from portal import items
from portal.db import write_tx
from portal.models import Attachment, ProxyCase, StaffUser
from portal.services import audit
from portal.storage import get_storage

MAX_BYTES = 5 * 1024 * 1024  # per file; the app's MAX_CONTENT_LENGTH adds room for the form
TYPES = {  # content type -> (extension, label)
    "application/pdf": (".pdf", "PDF"),
    "image/jpeg": (".jpg", "JPEG"),
    "image/png": (".png", "PNG"),
}
EXTENSIONS = {ext: ctype for ctype, (ext, _label) in TYPES.items()} | {".jpeg": "image/jpeg"}
OTHER = ""  # material code of a file that is not on the checklist


class UploadRefused(Exception):
    """The file cannot be accepted; the message says why, in Chinese."""


class TooLarge(UploadRefused):
    """Over :data:`MAX_BYTES` (the view answers 413)."""


def sniff(data: bytes) -> str | None:
    """The content type the bytes themselves announce, or None."""
    if data.startswith(b"%PDF-"):
        return "application/pdf"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    return None


def check(data: bytes, max_bytes: int = MAX_BYTES) -> str:
    """The detected content type, or UploadRefused."""
    if not data:
        raise UploadRefused("文件为空，请重新选择")
    if len(data) > max_bytes:
        raise TooLarge(f"文件超过 {max_bytes // (1024 * 1024)} MB 上限，请压缩后再上传")
    content_type = sniff(data)
    if content_type is None:
        raise UploadRefused("只能上传 PDF、JPEG 或 PNG 文件（按文件内容识别，与文件名无关）")
    return content_type


def check_extension(filename: str | None, content_type: str) -> None:
    """The name's extension must be one we accept and agree with the content."""
    base = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    ext = ("." + base.rsplit(".", 1)[1].lower()) if "." in base else ""
    if ext not in EXTENSIONS:
        raise UploadRefused("文件扩展名须为 .pdf、.jpg、.jpeg 或 .png")
    if EXTENSIONS[ext] != content_type:
        raise UploadRefused(
            f"文件内容是 {TYPES[content_type][1]}，与扩展名 {ext} 不符，请确认后重新上传"
        )


_UNSAFE = re.compile(r'[\\/:*?"<>|\x00-\x1f\x7f]+')


def clean_filename(name: str | None, content_type: str) -> str:
    """A display name without path parts or control characters, with the right extension."""
    base = unicodedata.normalize("NFC", (name or "").replace("\\", "/").rsplit("/", 1)[-1])
    base = _UNSAFE.sub("_", base).strip(" ._") or "材料"
    stem = base.rsplit(".", 1)[0] if "." in base else base
    stem = stem[:80] or "材料"
    return stem + TYPES[content_type][0]


def material_choices(case: ProxyCase) -> list[tuple[str, str]]:
    """(code, name) of the case's checklist materials, then 'other'."""
    return [(m.code, m.name) for m in items.get(case.item).materials] + [(OTHER, "其他材料")]


def material_name(case: ProxyCase, code: str) -> str:
    return dict(material_choices(case)).get(code, "其他材料")


def store(
    case: ProxyCase,
    data: bytes,
    filename: str | None,
    material: str = OTHER,
    uploaded_by: StaffUser | None = None,
    kind: str = "material",
    content_type: str | None = None,
) -> Attachment:
    """Check and store a file for ``case`` (the caller owns the transaction and audit)."""
    detected = check(data)
    if content_type is not None and content_type != detected:
        raise UploadRefused("文件内容与声明的类型不符")
    key, digest = get_storage().put(data, "materials", TYPES[detected][0])
    return Attachment.create(
        case=case,
        kind=kind,
        material=material,
        filename=clean_filename(filename, detected),
        content_type=detected,
        size=len(data),
        sha256=digest,
        storage_key=key,
        uploaded_by=uploaded_by,
    )


def upload(
    user: StaffUser, actor: str, case: ProxyCase, material: str, filename: str, data: bytes
) -> Attachment:
    """A staff member adds a scan or photo to the case."""
    if material not in dict(material_choices(case)):
        raise UploadRefused("请选择材料名称")
    check_extension(filename, check(data))
    with write_tx():
        attachment = store(case, data, filename, material, uploaded_by=user)
        audit.record(
            actor,
            "case.material_upload",
            "proxy_case",
            case.id,
            case_no=case.case_no,
            attachment=attachment.id,
            material=material,
            content_type=attachment.content_type,
            size=attachment.size,
            sha256=attachment.sha256,
        )
    return attachment


@dataclass
class MaterialView:
    id: int
    material: str
    material_name: str
    filename: str
    content_type: str
    type_label: str
    size: int
    sha256: str
    uploaded_by: str
    created_at: object


def list_for(case: ProxyCase) -> list[MaterialView]:
    names = dict(material_choices(case))
    rows = (
        Attachment.select(Attachment, StaffUser)
        .join(StaffUser, join_type=JOIN.LEFT_OUTER, on=(Attachment.uploaded_by == StaffUser.id))
        .where((Attachment.case == case) & (Attachment.kind == "material"))
        .order_by(Attachment.id)
    )
    return [
        MaterialView(
            id=a.id,
            material=a.material,
            material_name=names.get(a.material, "其他材料"),
            filename=a.filename,
            content_type=a.content_type,
            type_label=TYPES.get(a.content_type, ("", a.content_type))[1],
            size=a.size,
            sha256=a.sha256,
            uploaded_by=a.uploaded_by.name if a.uploaded_by_id else "平台导入",
            created_at=a.created_at,
        )
        for a in rows
    ]


def read(case: ProxyCase, attachment_id: int) -> tuple[Attachment, bytes] | None:
    """The attachment of ``case`` with that id and its verified bytes; None if not this case's."""
    attachment = Attachment.get_or_none(
        (Attachment.id == attachment_id) & (Attachment.case == case)
    )
    if attachment is None:
        return None
    return attachment, get_storage().get(attachment.storage_key, attachment.sha256)
