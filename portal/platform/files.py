"""The file adapter of the national platform exchange (DESIGN.md section 6).

A package is a zip holding:

* ``message.json``: the message in canonical JSON (``portal.platform.messages``), which lists
  every material with its SHA-256;
* ``signature.json``: ``{"algorithm": "Ed25519", "signer": <center code>, "signature": <b64>}``,
  the sender's signature over the canonical bytes of the message (so over the material
  hashes, and through them over the material files);
* ``materials/<sha256>.<pdf|jpg|png>``: the scans.

``export_case`` builds and stores the package of an outbound case; ``import_package`` checks a
package (known peer, signature, schema, recipient, material hashes) and opens the inbound case
in 平台接收, once per message id.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import secrets
import zipfile
import zlib
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import current_app

from portal import items
from portal.db import write_tx
from portal.documents import Document
from portal.models import (
    Attachment,
    Center,
    Depositor,
    Loan,
    PlatformMessage,
    ProxyCase,
    StaffUser,
)
from portal.platform import messages, signing
from portal.platform.messages import MessageInvalid
from portal.rules.casestates import OUTBOUND
from portal.services import audit
from portal.services import materials as materials_service
from portal.storage import StorageError, get_storage

MESSAGE_FILE = "message.json"
SIGNATURE_FILE = "signature.json"
_MATERIAL_FILE = re.compile(r"^materials/([0-9a-f]{64})\.(pdf|jpg|png)$")
MAX_PACKAGE_BYTES = 64 * 1024 * 1024
MAX_UNPACKED_BYTES = 320 * 1024 * 1024
MAX_ENTRIES = 40
PLATFORM_LABEL = "全国住房公积金监管服务平台"


class ImportRefused(Exception):
    """The package is not accepted; the message says why, in Chinese."""


class ExportRefused(Exception):
    """The case cannot be exported; the message says why, in Chinese."""


def material_path(sha256: str, content_type: str) -> str:
    return f"materials/{sha256}{materials_service.TYPES[content_type][0]}"


def self_center() -> Center:
    center = Center.get_or_none(Center.is_self)
    if center is None:
        code = current_app.config["CENTER_CODE"]
        center = Center.get_or_none(Center.code == code)
    if center is None:
        raise RuntimeError("our own center is not configured (Center.is_self)")
    return center


# --- packing ------------------------------------------------------------------------------


def _zip_entry(zf: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    zf.writestr(info, data)


def pack(message: dict, files: dict[str, bytes], key: Ed25519PrivateKey) -> bytes:
    """Sign ``message`` with ``key`` and zip it with its material files (sha256 -> bytes)."""
    messages.validate(message)
    body = messages.canonical(message)
    signature = {
        "algorithm": signing.ALGORITHM,
        "signer": message["sender"],
        "signed_file": MESSAGE_FILE,
        "signature": signing.sign(body, key),
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        _zip_entry(zf, MESSAGE_FILE, body)
        _zip_entry(zf, SIGNATURE_FILE, json.dumps(signature, indent=2).encode())
        written = set()
        payload = message["payload"]
        for entry in payload.get("materials", []) + payload.get("documents", []):
            path = material_path(entry["sha256"], entry["content_type"])
            if path not in written:
                _zip_entry(zf, path, files[entry["sha256"]])
                written.add(path)
    return buffer.getvalue()


def _employer_of(case: ProxyCase) -> dict | None:
    data = case.application or {}
    if data.get("employer_name") and data.get("credit_code"):
        return {"name": str(data["employer_name"]), "credit_code": str(data["credit_code"])}
    return None


def case_send_message(case: ProxyCase) -> tuple[dict, dict[str, bytes]]:
    """The ``case.send`` message of an outbound case and its material files."""
    storage = get_storage()
    entries, files = [], {}
    rows = (
        Attachment.select()
        .where((Attachment.case == case) & (Attachment.kind == "material"))
        .order_by(Attachment.id)
    )
    for a in rows:
        try:
            files[a.sha256] = storage.get(a.storage_key, a.sha256)
        except StorageError:
            raise ExportRefused(f"材料“{a.filename}”的文件缺失或校验失败，无法导出") from None
        entries.append(
            messages.file_entry(
                a.material,
                materials_service.material_name(case, a.material),
                a.filename,
                a.content_type,
                a.size,
                a.sha256,
            )
        )
    department = case.department.name if case.department_id else ""
    payload = messages.case_send_payload(
        item=case.item,
        applicant_name=case.applicant_name,
        applicant_id_no=case.applicant_id_no,
        applicant_phone=case.applicant_phone,
        application={k: v for k, v in (case.application or {}).items() if v not in (None, "")},
        checklist=case.checklist or {},
        materials=entries,
        accepted_on=case.clock_start,
        department=department,
        employer=_employer_of(case),
    )
    try:
        message = messages.build(
            "case.send",
            self_center().code,
            case.center.code,
            {"case_no": case.case_no},
            payload,
        )
    except MessageInvalid as exc:
        raise ExportRefused(f"办件数据不符合平台报文规范，无法导出：{exc}") from None
    return message, files


def export_case(case: ProxyCase, actor: str = "system") -> str:
    """Build, sign and store the package of an outbound case; returns its storage key.

    Called when an outbound case moves to 已传递 (inside the mover's transaction, if any).
    """
    if case.direction != OUTBOUND:
        raise ExportRefused("只有外地业务（本中心受理）的办件可以导出传递包")
    message, files = case_send_message(case)
    data = pack(message, files, signing.private_key())
    with write_tx():
        key, digest = get_storage().put(data, "packages", ".zip")
        PlatformMessage.create(
            message_id=message["message_id"],
            direction="out",
            kind=message["type"],
            sender=message["sender"],
            recipient=message["recipient"],
            case=case,
            storage_key=key,
            sha256=digest,
            actor=actor[:40],
        )
        audit.record(
            actor,
            "platform.export",
            "proxy_case",
            case.id,
            case_no=case.case_no,
            message_id=message["message_id"],
            recipient=message["recipient"],
            materials=len(message["payload"]["materials"]),
            sha256=digest,
        )
    return key


# --- unpacking ----------------------------------------------------------------------------


@dataclass
class Package:
    message: dict
    signature: dict
    files: dict[str, bytes]  # zip path -> bytes


def _short(name: str) -> str:
    return name if len(name) <= 60 else name[:57] + "…"


def read_package(data: bytes) -> Package:
    """Unzip and parse, within size limits; nothing is trusted yet."""
    if not data:
        raise ImportRefused("文件为空，请选择业务包（.zip）")
    if len(data) > MAX_PACKAGE_BYTES:
        raise ImportRefused("业务包过大")
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError):
        raise ImportRefused("文件不是有效的业务包（应为平台导出的 .zip 文件）") from None
    with zf:
        infos = [i for i in zf.infolist() if not i.is_dir()]
        if len(infos) > MAX_ENTRIES:
            raise ImportRefused("业务包中的文件过多")
        if sum(i.file_size for i in infos) > MAX_UNPACKED_BYTES:
            raise ImportRefused("业务包解压后过大")
        contents: dict[str, bytes] = {}
        for info in infos:
            name = info.filename
            if name not in (MESSAGE_FILE, SIGNATURE_FILE) and not _MATERIAL_FILE.match(name):
                raise ImportRefused(f"业务包含有无法识别的文件：{_short(name)}")
            if name in contents:
                raise ImportRefused(f"业务包中的文件重复：{_short(name)}")
            try:
                contents[name] = zf.read(info)
            except (zipfile.BadZipFile, zlib.error, RuntimeError, NotImplementedError, OSError):
                raise ImportRefused("业务包已损坏，无法读取") from None
    for required in (MESSAGE_FILE, SIGNATURE_FILE):
        if required not in contents:
            raise ImportRefused(f"业务包缺少 {required}")
    try:
        message = json.loads(contents.pop(MESSAGE_FILE).decode("utf-8"))
        signature = json.loads(contents.pop(SIGNATURE_FILE).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ImportRefused("业务包中的报文或签名无法解析") from None
    if not isinstance(message, dict) or not isinstance(signature, dict):
        raise ImportRefused("业务包中的报文或签名无法解析")
    return Package(message, signature, contents)


def _sender(package: Package) -> Center:
    sender = package.message.get("sender")
    if not isinstance(sender, str) or not sender:
        raise ImportRefused("报文未注明发送中心")
    if package.signature.get("signer") != sender:
        raise ImportRefused("签名方与报文的发送中心不一致")
    center = Center.get_or_none(Center.code == sender)
    if center is None or center.is_self or not center.active:
        raise ImportRefused(f"未知的发送中心（{_short(sender)}），不能导入")
    if not center.public_key:
        raise ImportRefused(f"{center.name}尚未登记公钥，请联系管理员登记后再导入")
    return center


def verify_package(package: Package) -> Center:
    """Known peer, good signature, valid schema, addressed to us; returns the sender."""
    peer = _sender(package)
    if package.signature.get("algorithm") != signing.ALGORITHM:
        raise ImportRefused("签名算法不受支持（应为 Ed25519）")
    body = messages.canonical(package.message)
    if not signing.verify(peer.public_key, body, str(package.signature.get("signature", ""))):
        raise ImportRefused(f"签名校验失败：业务包不是{peer.name}签发的，或已被改动")
    try:
        messages.validate(package.message)
    except MessageInvalid as exc:
        raise ImportRefused(str(exc)) from None
    ours = self_center().code
    if package.message["recipient"] != ours:
        raise ImportRefused(f"该业务包的接收方不是本中心（{package.message['recipient']}）")
    return peer


def _checked_materials(package: Package) -> list[tuple[dict, bytes]]:
    found = []
    for entry in package.message["payload"].get("materials", []):
        path = material_path(entry["sha256"], entry["content_type"])
        data = package.files.get(path)
        if data is None:
            raise ImportRefused(f"业务包缺少材料“{entry['name']}”的文件")
        if hashlib.sha256(data).hexdigest() != entry["sha256"] or len(data) != entry["size"]:
            raise ImportRefused(
                f"材料“{entry['name']}”与报文记录的校验值不一致，业务包可能已被篡改"
            )
        if materials_service.sniff(data) != entry["content_type"]:
            raise ImportRefused(f"材料“{entry['name']}”的文件类型与报文不符")
        found.append((entry, data))
    return found


def _existing(sender: str, message_id: str) -> PlatformMessage | None:
    return PlatformMessage.get_or_none(
        (PlatformMessage.sender == sender) & (PlatformMessage.message_id == message_id)
    )


@dataclass
class Imported:
    case: ProxyCase
    duplicate: bool  # the message id was processed before: nothing changed
    kind: str = "case.send"  # the message type (every type can be imported)


def import_package(
    data: bytes,
    actor: str = "system",
    user: StaffUser | None = None,
    today: date | None = None,
    overrides=None,
) -> ProxyCase:
    """Check a package and open the inbound case in 平台接收; a message id already processed
    returns the case it created, changing nothing (idempotent)."""
    return receive(data, actor, user, today, overrides).case


def receive(
    data: bytes,
    actor: str = "system",
    user: StaffUser | None = None,
    today: date | None = None,
    overrides=None,
) -> Imported:
    """:func:`import_package`, also saying whether the package was a duplicate.

    Every message type is accepted (the file adapter carries them all): the checks and the
    processing live in ``portal.platform.exchange.receive``, shared with the HTTP inbox."""
    from portal.platform import exchange

    got = exchange.receive(data, "file", actor=actor, user=user, today=today, overrides=overrides)
    return Imported(got.case, got.duplicate, got.kind)


# --- demo ---------------------------------------------------------------------------------


def _demo_png(text: str) -> bytes:
    import segno

    buffer = io.BytesIO()
    segno.make(text, error="m").save(buffer, kind="png", scale=6, border=4)
    return buffer.getvalue()


@lru_cache(maxsize=64)
def _demo_pdf(title: str, lines: tuple[tuple[str, str], ...], center_name: str) -> bytes:
    """A sample 'scan' (rendered once per process: a CJK PDF takes about half a second)."""
    doc = Document(center_name, title, footer_note="演示扫描件，非真实材料")
    doc.fields(list(lines))
    return doc.output()


def demo_package(
    peer_code: str, depositor: Depositor, today: date, item: str = "purchase_withdrawal"
) -> bytes:
    """A signed ``case.send`` package from a demo peer for one of our depositors (development
    and tests; the peer's key is the deterministic demo key)."""
    peer = Center.get_or_none(Center.code == peer_code)
    if peer is None or peer.is_self:
        raise ImportRefused(f"未知的演示中心：{peer_code}")
    the_item = items.get(item)
    peer_case_no = f"BJ{today:%Y%m%d}{secrets.randbelow(10**4):04d}"
    application: dict[str, str] = {}
    if item == "purchase_withdrawal":
        application = {
            "contract_no": f"京房售{today:%Y}{secrets.randbelow(10**6):06d}",
            "purchase_date": today.replace(day=1).isoformat(),
            "price": "1860000.00",
            "property_address": "北京市朝阳区示例路 8 号院 3-1201",
            "bank_name": depositor.bank_name or "中国工商银行",
            "bank_card": depositor.bank_card or "",
        }
    elif item in ("settlement_certificate", "early_repayment"):
        loan = Loan.select().where(Loan.depositor == depositor).order_by(Loan.id).first()
        application = {"loan_contract_no": loan.contract_no if loan else "ALS2020JK00001"}
    files: dict[str, bytes] = {}
    entries = []
    for material in the_item.materials:
        if material.code == "id_card":
            data = _demo_png(f"演示扫描件：{depositor.name} 身份证")
            name, ctype = "身份证.png", "image/png"
        else:
            data = _demo_pdf(
                material.name.strip("《》"),
                (("申请人", depositor.name), ("材料", material.name), ("来源", peer.name)),
                peer.name,
            )
            name, ctype = f"{material.code}.pdf", "application/pdf"
        digest = hashlib.sha256(data).hexdigest()
        files[digest] = data
        entries.append(
            messages.file_entry(material.code, material.name, name, ctype, len(data), digest)
        )
    payload = messages.case_send_payload(
        item=the_item.code,
        applicant_name=depositor.name,
        applicant_id_no=depositor.resident_id,
        applicant_phone=depositor.phone,
        application={k: v for k, v in application.items() if v},
        checklist={m.code: True for m in the_item.materials},
        materials=entries,
        accepted_on=today,
        department=f"{peer.name}服务大厅",
    )
    message = messages.build(
        "case.send", peer.code, self_center().code, {"case_no": peer_case_no}, payload
    )
    return pack(message, files, signing.demo_peer_key(peer.code))


# --- the liaison's page -------------------------------------------------------------------

EXPORTABLE_STATES = ("verifying", "transmitted", "feedback")


@dataclass
class MessageRow:
    id: int
    direction: str
    kind_label: str
    sender: str
    recipient: str
    case_no: str
    case_direction: str
    created_at: object
    has_package: bool
    actor: str


def recent_messages(limit: int = 30) -> list[MessageRow]:
    names = {c.code: c.name for c in Center.select(Center.code, Center.name)}
    rows = (
        PlatformMessage.select(PlatformMessage, ProxyCase)
        .join(ProxyCase, on=(PlatformMessage.case == ProxyCase.id))
        .order_by(PlatformMessage.created_at.desc(), PlatformMessage.id.desc())
        .limit(limit)
    )
    return [
        MessageRow(
            id=m.id,
            direction=m.direction,
            kind_label=messages.TYPE_LABELS.get(m.kind, m.kind),
            sender=names.get(m.sender, m.sender),
            recipient=names.get(m.recipient, m.recipient),
            case_no=m.case.case_no,
            case_direction=m.case.direction,
            created_at=m.created_at,
            has_package=bool(m.storage_key),
            actor=m.actor,
        )
        for m in rows
    ]


def export_by_case_no(actor: str, case_no: str) -> tuple[ProxyCase, PlatformMessage]:
    """The liaison (re-)exports the package of an outbound case that has passed verification."""
    case = ProxyCase.get_or_none(ProxyCase.case_no == (case_no or "").strip())
    if case is None:
        raise ExportRefused("没有此办件编号")
    if case.direction != OUTBOUND:
        raise ExportRefused("只有外地业务（本中心受理）的办件可以导出传递包")
    if case.state not in EXPORTABLE_STATES:
        raise ExportRefused("办件完成材料核实后才能导出传递包")
    export_case(case, actor=actor)
    message = (
        PlatformMessage.select()
        .where((PlatformMessage.case == case) & (PlatformMessage.direction == "out"))
        .order_by(PlatformMessage.id.desc())
        .first()
    )
    return case, message


def package_bytes(message_pk: int) -> tuple[PlatformMessage, bytes] | None:
    message = PlatformMessage.get_or_none(PlatformMessage.id == message_pk)
    if message is None or not message.storage_key:
        return None
    return message, get_storage().get(message.storage_key, message.sha256)
