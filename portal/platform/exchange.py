"""The exchange adapter (DESIGN.md section 6): one narrow interface to the national platform.

Sending, one function per message (each builds the message, signs and stores the package,
records it in ``platform_message`` and the audit log, inside the caller's transaction):

* :func:`send_case` — the accepting center transmits an outbound case (已传递);
* :func:`acknowledge` — the deposit-place center confirms receipt (its 3 working days start);
* :func:`request_materials` — the deposit-place center asks for more materials (待补正);
* :func:`send_result` — the deposit-place center feeds back the result with its documents;
* :func:`report_mailing` — either side reports paper materials mailed;
* :func:`query_ecode` — 亮码可办: a clerk fetches another center's depositor's information table
  by the e-code the depositor shows (synchronous: the answer comes back at once).

Receiving: :func:`receive` checks a package (readable, known peer, signature, schema, addressed
to us, material hashes), processes a sender's message id once (a repeat is a no-op) and
dispatches on the type. The HTTP inbox (``portal/platform/inbox.py``) and the liaison's file
import (``files.receive``) both come here.

Two implementations behind it, chosen per peer (:func:`adapter_for`): a peer with an
``exchange_url`` is reached over HTTP through the durable outbox; any other peer by signed
files that the liaison hands over (downloaded from 平台文件).

Every case message's ``case_ref.case_no`` is the accepting center's case number and
``peer_case_no`` the deposit-place center's, whichever side writes it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date

from flask import current_app
from peewee import IntegrityError

from portal import items
from portal.db import write_tx
from portal.documents import Document
from portal.models import (
    Attachment,
    CaseEvent,
    Center,
    Depositor,
    Employer,
    PlatformMessage,
    ProxyCase,
    StaffUser,
    utcnow,
)
from portal.platform import files, messages, signing
from portal.platform import http as transport_http
from portal.platform.messages import MessageInvalid
from portal.rules import casestates as cs
from portal.rules.casestates import INBOUND, INITIAL, OUTBOUND, PAUSED
from portal.rules.ids import is_valid_resident_id, mask_resident_id
from portal.rules.workdays import add_workdays
from portal.services import audit
from portal.services import materials as materials_service
from portal.storage import StorageError, get_storage

PLATFORM_LABEL = files.PLATFORM_LABEL
OUTCOME_LABELS = {"done": "办结", "rejected": "不予办理"}
OUTCOME_CODES = {label: code for code, label in OUTCOME_LABELS.items()}
RESULT_NOTICE = "result_notice"
CARRIER = "邮政 EMS"


class Rejected(files.ImportRefused):
    """A package or message we do not accept; ``status`` is the HTTP answer for the inbox and
    ``code`` a stable machine-readable reason. The text is for people, in Chinese."""

    def __init__(self, message: str, status: int = 422, code: str = "invalid", **context):
        super().__init__(message)
        self.status = status
        self.code = code
        self.context = context  # message_id / sender when known (for the audit row)


class ExchangeRefused(Exception):
    """We cannot send this (no peer channel, peer unreachable, bad answer); Chinese text."""


# --- the two adapters ---------------------------------------------------------------------


class FileAdapter:
    """Signed packages the liaison downloads from 平台文件 and hands over by other means."""

    channel = "file"
    label = "文件交换"

    def queue(self, center: Center, stored: PlatformMessage, case, actor: str):
        return None  # the stored package waits for the liaison


class HttpAdapter:
    """POST to the peer's inbox, through the durable outbox (``portal.platform.outbox``)."""

    channel = "http"
    label = "在线交换"

    def queue(self, center: Center, stored: PlatformMessage, case, actor: str):
        from portal.platform import outbox

        return outbox.enqueue(center, stored, case, actor)


def adapter_for(center: Center) -> FileAdapter | HttpAdapter:
    return HttpAdapter() if center.exchange_url else FileAdapter()


def self_center() -> Center:
    return files.self_center()


# --- sending ------------------------------------------------------------------------------


def _peer_case_no(case: ProxyCase) -> str | None:
    """The other center's case number, from ``platform_ref`` ("<center>:<case_no>")."""
    ref = case.platform_ref or ""
    code, _, number = ref.partition(":")
    return number or None


def case_ref(case: ProxyCase) -> dict | None:
    """``case_ref`` as this center writes it; None for an inbound case that did not come
    through the platform (nothing to refer to)."""
    if case.direction == OUTBOUND:
        ref = {"case_no": case.case_no}
        peer_no = _peer_case_no(case)
        if peer_no:
            ref["peer_case_no"] = peer_no
        return ref
    peer_no = _peer_case_no(case)
    if not peer_no:
        return None
    return {"case_no": peer_no, "peer_case_no": case.case_no}


def _target(case: ProxyCase | None, actor: str) -> tuple[str, object]:
    return ("proxy_case", case.id) if case is not None else ("center", actor)


def dispatch(
    center: Center,
    message: dict,
    attachments: dict[str, bytes],
    actor: str,
    case: ProxyCase | None = None,
) -> PlatformMessage:
    """Sign and store ``message``, record it, and hand it to the peer's adapter (the outbox
    for an HTTP peer). Runs in the caller's transaction, so it stands or falls with it."""
    data = files.pack(message, attachments, signing.private_key())
    key, digest = get_storage().put(data, "packages", ".zip")
    adapter = adapter_for(center)
    with write_tx():
        stored = PlatformMessage.create(
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
        adapter.queue(center, stored, case, actor)
        target_type, target_id = _target(case, center.code)
        audit.record(
            actor,
            "platform.queue" if adapter.channel == "http" else "platform.export",
            target_type,
            target_id,
            message_id=message["message_id"],
            kind=message["type"],
            recipient=center.code,
            channel=adapter.channel,
            case_no=case.case_no if case is not None else "",
            sha256=digest,
        )
    return stored


def send_case(case: ProxyCase, actor: str) -> PlatformMessage:
    """Transmit an outbound case (its move to 已传递); the card shows 待送达 until the peer's
    acknowledgement arrives. Raises ``files.ExportRefused`` when the case cannot be sent."""
    if case.direction != OUTBOUND:
        raise files.ExportRefused("只有外地业务（本中心受理）的办件可以传递")
    message, attachments = files.case_send_message(case)
    with write_tx():
        stored = dispatch(case.center, message, attachments, actor, case)
        ProxyCase.update(
            delivery="pending", peer_ack_on=None, peer_deadline=None, updated_at=utcnow()
        ).where(ProxyCase.id == case.id).execute()
    return stored


def _send(case: ProxyCase, kind: str, payload: dict, actor: str, attachments=None):
    ref = case_ref(case)
    if ref is None:
        return None  # not a platform case: nothing to tell anyone
    try:
        message = messages.build(kind, self_center().code, case.center.code, ref, payload)
    except MessageInvalid as exc:
        raise files.ExportRefused(f"报文不符合平台规范，未能发送：{exc}") from None
    return dispatch(case.center, message, attachments or {}, actor, case)


def acknowledge(case: ProxyCase, actor: str) -> PlatformMessage | None:
    """Confirm receipt of an inbound case: its received date and our deadline."""
    payload = messages.ack_payload(case.clock_start, case.deadline)
    return _send(case, "case.ack", payload, actor)


def request_materials(
    case: ProxyCase, missing: list[str], actor: str, note: str = ""
) -> PlatformMessage | None:
    """Ask the accepting center for the missing materials (our inbound case to 待补正)."""
    payload = messages.materials_request_payload(missing, note)
    return _send(case, "materials.request", payload, actor)


def _notice_pdf(case: ProxyCase, outcome: str, note: str, done_on: date) -> bytes:
    center = self_center()
    peer_no = _peer_case_no(case) or ""
    doc = Document(
        center.name, "“跨省通办”业务办理结果告知书", number=case.case_no, issued_on=done_on
    )
    doc.fields(
        [
            ("受理中心", case.center.name),
            ("受理中心办件编号", peer_no),
            ("本中心办件编号", case.case_no),
            ("办理事项", items.get(case.item).name),
            ("申请人", case.applicant_name),
            ("身份证号码", mask_resident_id(case.applicant_id_no)),
            ("办理结果", OUTCOME_LABELS[outcome]),
            ("结果说明", note or "—"),
            ("办结日期", done_on.isoformat()),
        ]
    )
    doc.paragraph("本告知书经全国住房公积金监管服务平台传递，请受理中心告知申请人。")
    doc.seal(center.name, done_on)
    return doc.output()


def send_result(
    case: ProxyCase,
    actor: str,
    today: date,
    outcome: str | None = None,
    note: str | None = None,
    user: StaffUser | None = None,
) -> PlatformMessage | None:
    """Feed back the result of an inbound case with its documents: the Attachment rows of
    kind "result" (processing attaches them); when there are none, a sealed 结果告知书 is
    generated now and kept on our case too, so the accepting center always gets a document."""
    if case_ref(case) is None:
        return None
    result = case.result or {}
    if outcome is None:
        outcome = OUTCOME_CODES.get(str(result.get("outcome") or ""), "done")
    if note is None:
        note = str(result.get("note") or "")
    has_documents = (
        Attachment.select()
        .where((Attachment.case == case) & (Attachment.kind == "result"))
        .exists()
    )
    if not has_documents:
        materials_service.store(
            case,
            _notice_pdf(case, outcome, note, today),
            "办理结果告知书.pdf",
            RESULT_NOTICE,
            uploaded_by=user,
            kind="result",
            content_type="application/pdf",
        )
    storage = get_storage()
    entries, attachments = [], {}
    rows = (
        Attachment.select()
        .where((Attachment.case == case) & (Attachment.kind == "result"))
        .order_by(Attachment.id)
    )
    for a in rows:
        try:
            attachments[a.sha256] = storage.get(a.storage_key, a.sha256)
        except StorageError:
            raise files.ExportRefused(f"结果文书“{a.filename}”的文件缺失，未能发送") from None
        name = "办理结果告知书" if a.material == RESULT_NOTICE else a.filename.rsplit(".", 1)[0]
        entries.append(
            messages.file_entry(
                a.material, name[:100], a.filename, a.content_type, a.size, a.sha256
            )
        )
    payload = messages.result_payload(outcome, today, note, entries)
    return _send(case, "case.result", payload, actor, attachments)


def report_mailing(
    case: ProxyCase, tracking_no: str, actor: str, today: date, carrier: str = CARRIER
) -> PlatformMessage | None:
    contents = "申请材料原件" if case.direction == OUTBOUND else "办理结果文书"
    payload = messages.mailing_payload(carrier, tracking_no, today, contents)
    return _send(case, "mailing.report", payload, actor)


# --- receiving ----------------------------------------------------------------------------


@dataclass
class Received:
    kind: str
    message_id: str
    sender: Center
    case: ProxyCase | None
    duplicate: bool
    reply: bytes | None = None  # a synchronous answer (ecode.reply), for the HTTP inbox
    note: str = ""

    @property
    def kind_label(self) -> str:
        return messages.TYPE_LABELS.get(self.kind, self.kind)


@dataclass
class _Context:
    package: files.Package
    peer: Center
    channel: str
    actor: str
    user: StaffUser | None
    today: date
    overrides: object
    data: bytes

    @property
    def message(self) -> dict:
        return self.package.message

    @property
    def message_id(self) -> str:
        return self.package.message["message_id"]

    @property
    def label(self) -> str:
        """Who acted, as a case's history shows it."""
        if self.user is not None:
            return self.user.name[:60]
        return f"{self.peer.name}（{PLATFORM_LABEL}）"[:60]


def _read(data: bytes) -> files.Package:
    try:
        return files.read_package(data)
    except files.ImportRefused as exc:
        raise Rejected(str(exc), 400, "unreadable") from None


def verify(package: files.Package) -> Center:
    """Known peer, good signature, schema, addressed to us; returns the sender."""
    context = {
        "message_id": str(package.message.get("message_id", ""))[:36],
        "sender": str(package.message.get("sender", ""))[:12],
    }
    try:
        peer = files._sender(package)
    except files.ImportRefused as exc:
        raise Rejected(str(exc), 403, "unknown_peer", **context) from None
    if package.signature.get("algorithm") != signing.ALGORITHM:
        raise Rejected("签名算法不受支持（应为 Ed25519）", 403, "bad_signature", **context)
    body = messages.canonical(package.message)
    if not signing.verify(peer.public_key, body, str(package.signature.get("signature", ""))):
        raise Rejected(
            f"签名校验失败：报文不是{peer.name}签发的，或已被改动", 403, "bad_signature", **context
        )
    try:
        messages.validate(package.message)
    except MessageInvalid as exc:
        raise Rejected(str(exc), 422, "schema", **context) from None
    ours = self_center().code
    if package.message["recipient"] != ours:
        raise Rejected(
            f"报文的接收方不是本中心（{package.message['recipient']}）",
            422,
            "wrong_recipient",
            **context,
        )
    return peer


def _checked_files(package: files.Package, entries: list[dict]) -> list[tuple[dict, bytes]]:
    """Each listed file is in the package and matches its hash, size and type."""
    found = []
    for entry in entries:
        path = files.material_path(entry["sha256"], entry["content_type"])
        data = package.files.get(path)
        context = {"message_id": package.message["message_id"], "sender": package.message["sender"]}
        if data is None:
            raise Rejected(f"业务包缺少材料“{entry['name']}”的文件", 422, "missing_file", **context)
        if hashlib.sha256(data).hexdigest() != entry["sha256"] or len(data) != entry["size"]:
            raise Rejected(
                f"材料“{entry['name']}”与报文记录的校验值不一致，业务包可能已被篡改",
                422,
                "tampered",
                **context,
            )
        if materials_service.sniff(data) != entry["content_type"]:
            raise Rejected(f"材料“{entry['name']}”的文件类型与报文不符", 422, "tampered", **context)
        found.append((entry, data))
    return found


def _audit_action(channel: str) -> str:
    return "platform.import" if channel == "file" else "platform.receive"


def _record_in(ctx: _Context, case: ProxyCase | None, key: str, digest: str) -> PlatformMessage:
    message = ctx.message
    return PlatformMessage.create(
        message_id=message["message_id"],
        direction="in",
        kind=message["type"],
        sender=ctx.peer.code,
        recipient=message["recipient"],
        case=case,
        storage_key=key,
        sha256=digest,
        actor=ctx.actor[:40],
    )


def _duplicate(ctx: _Context, done: PlatformMessage) -> Received:
    with write_tx():
        audit.record(
            ctx.actor,
            "platform.import_duplicate" if ctx.channel == "file" else "platform.receive_duplicate",
            "proxy_case" if done.case_id else "center",
            done.case_id or ctx.peer.code,
            message_id=done.message_id,
            sender=done.sender,
            kind=done.kind,
        )
    case = ProxyCase.get_by_id(done.case_id) if done.case_id else None
    reply = None
    if done.kind == "ecode.query":
        from portal.services import ecode

        reply = ecode.stored_reply(ctx.peer.code, done.message_id)
    return Received(done.kind, done.message_id, ctx.peer, case, True, reply)


def receive(
    data: bytes,
    channel: str = "http",
    actor: str | None = None,
    user: StaffUser | None = None,
    today: date | None = None,
    overrides=None,
) -> Received:
    """Check and process one package (see the module docstring); Rejected says why not."""
    from portal.filters import local_today
    from portal.services.settings import holiday_overrides

    package = _read(data)
    peer = verify(package)
    ctx = _Context(
        package=package,
        peer=peer,
        channel=channel,
        actor=actor or f"platform:{peer.code}",
        user=user,
        today=today or local_today(),
        overrides=holiday_overrides() if overrides is None else overrides,
        data=data,
    )
    kind = package.message["type"]
    if kind in messages.ECODE_TYPES and channel != "http":
        raise Rejected(
            "亮码查询只能通过在线交换进行，不能以文件导入",
            422,
            "wrong_channel",
            message_id=ctx.message_id,
            sender=peer.code,
        )
    if kind == "ecode.reply":
        raise Rejected(
            "亮码查询结果只作为查询的应答返回，不能单独投递",
            422,
            "unexpected",
            message_id=ctx.message_id,
            sender=peer.code,
        )
    done = files._existing(peer.code, ctx.message_id)
    if done is not None:
        return _duplicate(ctx, done)
    handler = _HANDLERS[kind]
    try:
        return handler(ctx)
    except IntegrityError:
        done = files._existing(peer.code, ctx.message_id)
        if done is None:
            raise
        return _duplicate(ctx, done)
    except materials_service.UploadRefused as exc:
        raise Rejected(
            f"材料文件不合格：{exc}", 422, "bad_file", message_id=ctx.message_id, sender=peer.code
        ) from None


def _store_package(ctx: _Context) -> tuple[str, str]:
    return get_storage().put(ctx.data, "packages", ".zip")


def _rejected(ctx: _Context, text: str, status: int, code: str) -> Rejected:
    return Rejected(text, status, code, message_id=ctx.message_id, sender=ctx.peer.code)


# case.send: open the inbound case in 平台接收 (or add to the open one), then acknowledge


def _on_case_send(ctx: _Context) -> Received:
    from portal.services.counter import create_numbered

    message = ctx.message
    found = _checked_files(ctx.package, message["payload"].get("materials", []))
    payload = message["payload"]
    applicant = payload["applicant"]
    if not is_valid_resident_id(applicant["id_no"]):
        raise _rejected(ctx, "报文中申请人的身份证号码校验不通过", 422, "bad_applicant")
    ref = f"{ctx.peer.code}:{message['case_ref']['case_no']}"
    existing = (
        ProxyCase.select()
        .where((ProxyCase.platform_ref == ref) & (ProxyCase.direction == INBOUND))
        .order_by(ProxyCase.id.desc())
        .first()
    )
    if existing is not None and existing.state not in cs.FINAL[INBOUND]:
        return _resend(ctx, existing, found)
    if existing is not None:
        raise _rejected(
            ctx,
            f"该办件已在本中心{cs.label(INBOUND, existing.state)}"
            f"（{existing.case_no}），不能再次传递",
            409,
            "case_closed",
        )
    depositor = Depositor.get_or_none(Depositor.resident_id == applicant["id_no"])
    employer = None
    if payload.get("employer"):
        employer = Employer.get_or_none(Employer.credit_code == payload["employer"]["credit_code"])
    the_item = items.get(payload["item"])
    key, digest = _store_package(ctx)
    with write_tx():
        case = create_numbered(
            ctx.today,
            item=the_item.code,
            direction=INBOUND,
            state=INITIAL[INBOUND],
            center=ctx.peer,
            depositor=depositor,
            employer=employer,
            applicant_name=applicant["name"],
            applicant_id_no=applicant["id_no"],
            applicant_phone=applicant.get("phone", ""),
            application=payload["application"],
            checklist=payload["checklist"],
            clock_start=ctx.today,
            deadline=add_workdays(ctx.today, items.INBOUND_DONE_WORKDAYS, ctx.overrides),
            platform_ref=ref,
        )
        for entry, content in found:
            materials_service.store(
                case,
                content,
                entry["filename"],
                entry.get("code", ""),
                content_type=entry["content_type"],
            )
        _record_in(ctx, case, key, digest)
        CaseEvent.create(
            case=case,
            actor=ctx.user,
            actor_label=(ctx.user.name if ctx.user else PLATFORM_LABEL)[:60],
            action="create",
            to_state=case.state,
            data={
                "channel": ctx.channel,
                "message_id": ctx.message_id,
                "sender": ctx.peer.code,
                "peer_case_no": message["case_ref"]["case_no"],
                "depositor_matched": depositor is not None,
                "materials": len(found),
            },
        )
        audit.record(
            ctx.actor,
            _audit_action(ctx.channel),
            "proxy_case",
            case.id,
            case_no=case.case_no,
            message_id=ctx.message_id,
            kind="case.send",
            sender=ctx.peer.code,
            item=the_item.code,
            depositor_matched=depositor is not None,
            sha256=digest,
        )
        acknowledge(case, ctx.actor)
    return Received("case.send", ctx.message_id, ctx.peer, case, False)


def _resend(ctx: _Context, case: ProxyCase, found) -> Received:
    """The accepting center sent the case again (after 待补正): add the new materials, resume
    the case if it waits in 待补正, and acknowledge again."""
    payload = ctx.message["payload"]
    key, digest = _store_package(ctx)
    with write_tx():
        have = {
            a.sha256
            for a in Attachment.select(Attachment.sha256).where(
                (Attachment.case == case) & (Attachment.kind == "material")
            )
        }
        added = 0
        for entry, content in found:
            if entry["sha256"] in have:
                continue
            materials_service.store(
                case,
                content,
                entry["filename"],
                entry.get("code", ""),
                content_type=entry["content_type"],
            )
            have.add(entry["sha256"])
            added += 1
        fields = {
            "application": payload["application"],
            "checklist": payload["checklist"],
            "updated_at": utcnow(),
        }
        event = {"message_id": ctx.message_id, "materials": added, "channel": ctx.channel}
        source = case.state
        target = None
        if source == PAUSED:
            target = "processing"
            fields["state"] = target
            fields["version"] = case.version + 1
            if case.paused_since:
                deadline, days = cs.resumed_deadline(
                    case.deadline, case.paused_since, ctx.today, ctx.overrides
                )
                fields.update(
                    deadline=deadline,
                    paused_since=None,
                    paused_workdays=(case.paused_workdays or 0) + days,
                )
                event["paused_workdays"] = days
                if deadline != case.deadline:
                    event["deadline"] = deadline.isoformat()
        ProxyCase.update(**fields).where(ProxyCase.id == case.id).execute()
        case = ProxyCase.get_by_id(case.id)
        _record_in(ctx, case, key, digest)
        CaseEvent.create(
            case=case,
            actor=ctx.user,
            actor_label=ctx.label,
            action="move" if target else "supplement",
            from_state=source if target else None,
            to_state=target,
            data=event,
        )
        audit.record(
            ctx.actor,
            _audit_action(ctx.channel),
            "proxy_case",
            case.id,
            case_no=case.case_no,
            message_id=ctx.message_id,
            kind="case.send",
            sender=ctx.peer.code,
            resent=True,
            materials=added,
            resumed=bool(target),
        )
        acknowledge(case, ctx.actor)
    return Received("case.send", ctx.message_id, ctx.peer, case, False, note="resent")


# the accepting center's side: ack, materials request, result, mailing


def _outbound_case(ctx: _Context) -> ProxyCase:
    case = ProxyCase.get_or_none(
        (ProxyCase.case_no == ctx.message["case_ref"]["case_no"])
        & (ProxyCase.direction == OUTBOUND)
        & (ProxyCase.center == ctx.peer.id)
    )
    if case is None:
        label = messages.TYPE_LABELS[ctx.message["type"]]
        raise _rejected(
            ctx,
            f"“{label}”报文所指的办件（{ctx.message['case_ref']['case_no']}）在本中心不存在",
            404,
            "unknown_case",
        )
    return case


def _platform_move(ctx: _Context, case: ProxyCase, target: str, fields: dict, event: dict):
    """A move the platform makes on the liaison's behalf (the peer's message drives it)."""
    if cs.find_move(case.direction, case.state, target) is None:
        raise AssertionError(f"no move {case.state} -> {target}")
    fields.update(state=target, version=case.version + 1, updated_at=utcnow())
    won = (
        ProxyCase.update(**fields)
        .where((ProxyCase.id == case.id) & (ProxyCase.version == case.version))
        .execute()
    )
    if won != 1:
        raise _rejected(ctx, "办件正被其他人更新，请稍后重发", 503, "busy")
    CaseEvent.create(
        case=case,
        actor=ctx.user,
        actor_label=ctx.label,
        action="move",
        from_state=case.state,
        to_state=target,
        data=event,
    )
    moved = ProxyCase.get_by_id(case.id)
    from portal.services import notices  # the applicant is told, as for a move on the board

    notices.case_moved(moved, case.state, target)
    return moved


def _on_ack(ctx: _Context) -> Received:
    case = _outbound_case(ctx)
    payload = ctx.message["payload"]
    received_on = date.fromisoformat(payload["received_on"])
    deadline = date.fromisoformat(payload["deadline"])
    peer_no = ctx.message["case_ref"].get("peer_case_no", "")
    key, digest = _store_package(ctx)
    with write_tx():
        fields = {
            "peer_ack_on": received_on,
            "peer_deadline": deadline,
            "updated_at": utcnow(),
        }
        if peer_no:
            fields["platform_ref"] = f"{ctx.peer.code}:{peer_no}"
        if case.state == "transmitted":
            fields["delivery"] = "acked"
        ProxyCase.update(**fields).where(ProxyCase.id == case.id).execute()
        _record_in(ctx, case, key, digest)
        CaseEvent.create(
            case=case,
            actor=ctx.user,
            actor_label=ctx.label,
            action="ack",
            data={
                "message_id": ctx.message_id,
                "peer_case_no": peer_no,
                "received_on": received_on.isoformat(),
                "peer_deadline": deadline.isoformat(),
            },
        )
        audit.record(
            ctx.actor,
            _audit_action(ctx.channel),
            "proxy_case",
            case.id,
            case_no=case.case_no,
            message_id=ctx.message_id,
            kind="case.ack",
            sender=ctx.peer.code,
            peer_deadline=deadline.isoformat(),
        )
    return Received("case.ack", ctx.message_id, ctx.peer, ProxyCase.get_by_id(case.id), False)


def _on_materials_request(ctx: _Context) -> Received:
    case = _outbound_case(ctx)
    payload = ctx.message["payload"]
    missing = [str(m).strip()[:100] for m in payload["missing"] if str(m).strip()]
    note = payload.get("note", "")
    if case.state not in ("transmitted", PAUSED):
        raise _rejected(
            ctx,
            f"办件 {case.case_no} 当前为“{cs.label(OUTBOUND, case.state)}”，不能退回补正",
            409,
            "state_conflict",
        )
    key, digest = _store_package(ctx)
    with write_tx():
        event = {"message_id": ctx.message_id, "missing": missing}
        if note:
            event["note"] = note
        if case.state == "transmitted":
            case = _platform_move(
                ctx,
                case,
                PAUSED,
                {"paused_since": ctx.today, "missing_materials": missing, "delivery": ""},
                event,
            )
        else:  # already waiting: the list grows
            merged = list(case.missing_materials or [])
            merged += [m for m in missing if m not in merged]
            ProxyCase.update(missing_materials=merged, updated_at=utcnow()).where(
                ProxyCase.id == case.id
            ).execute()
            CaseEvent.create(
                case=case, actor=ctx.user, actor_label=ctx.label, action="request", data=event
            )
        _record_in(ctx, case, key, digest)
        audit.record(
            ctx.actor,
            _audit_action(ctx.channel),
            "proxy_case",
            case.id,
            case_no=case.case_no,
            message_id=ctx.message_id,
            kind="materials.request",
            sender=ctx.peer.code,
            missing=len(missing),
        )
    return Received(
        "materials.request", ctx.message_id, ctx.peer, ProxyCase.get_by_id(case.id), False
    )


def _on_result(ctx: _Context) -> Received:
    case = _outbound_case(ctx)
    payload = ctx.message["payload"]
    found = _checked_files(ctx.package, payload.get("documents", []))
    if case.state not in ("transmitted", "feedback", "archived"):
        raise _rejected(
            ctx,
            f"办件 {case.case_no} 当前为“{cs.label(OUTBOUND, case.state)}”，不能登记办理结果",
            409,
            "state_conflict",
        )
    key, digest = _store_package(ctx)
    with write_tx():
        stored = []
        for entry, content in found:
            materials_service.store(
                case,
                content,
                entry["filename"],
                entry.get("code", ""),
                kind="result",
                content_type=entry["content_type"],
            )
            stored.append(entry["name"])
        result = {
            "outcome": OUTCOME_LABELS[payload["outcome"]],
            "note": payload.get("note", ""),
            "done_on": payload["done_on"],
            "documents": stored,
            "from": ctx.peer.name,
        }
        event = {"message_id": ctx.message_id, "result": result}
        if case.state == "transmitted":
            case = _platform_move(
                ctx, case, "feedback", {"result": result, "delivery": "acked"}, event
            )
        else:  # the result arrived again or after a manual move: record it, no move
            ProxyCase.update(result=result, updated_at=utcnow()).where(
                ProxyCase.id == case.id
            ).execute()
            CaseEvent.create(
                case=case, actor=ctx.user, actor_label=ctx.label, action="result", data=event
            )
        _record_in(ctx, case, key, digest)
        audit.record(
            ctx.actor,
            _audit_action(ctx.channel),
            "proxy_case",
            case.id,
            case_no=case.case_no,
            message_id=ctx.message_id,
            kind="case.result",
            sender=ctx.peer.code,
            outcome=payload["outcome"],
            documents=len(stored),
        )
    return Received("case.result", ctx.message_id, ctx.peer, ProxyCase.get_by_id(case.id), False)


def _on_mailing(ctx: _Context) -> Received:
    ref = ctx.message["case_ref"]
    case = ProxyCase.get_or_none(
        (ProxyCase.case_no == ref["case_no"])
        & (ProxyCase.direction == OUTBOUND)
        & (ProxyCase.center == ctx.peer.id)
    )
    if case is None:
        case = (
            ProxyCase.select()
            .where(
                (ProxyCase.platform_ref == f"{ctx.peer.code}:{ref['case_no']}")
                & (ProxyCase.direction == INBOUND)
            )
            .order_by(ProxyCase.id.desc())
            .first()
        )
    if case is None:
        raise _rejected(
            ctx, f"“邮寄信息”报文所指的办件（{ref['case_no']}）在本中心不存在", 404, "unknown_case"
        )
    payload = ctx.message["payload"]
    key, digest = _store_package(ctx)
    with write_tx():
        ProxyCase.update(updated_at=utcnow()).where(ProxyCase.id == case.id).execute()
        _record_in(ctx, case, key, digest)
        CaseEvent.create(
            case=case,
            actor=ctx.user,
            actor_label=ctx.label,
            action="mail_in",
            data={
                "message_id": ctx.message_id,
                "carrier": payload["carrier"],
                "tracking_no": payload["tracking_no"],
                "mailed_on": payload["mailed_on"],
                "contents": payload.get("contents", ""),
            },
        )
        audit.record(
            ctx.actor,
            _audit_action(ctx.channel),
            "proxy_case",
            case.id,
            case_no=case.case_no,
            message_id=ctx.message_id,
            kind="mailing.report",
            sender=ctx.peer.code,
            tracking_no=payload["tracking_no"],
        )
    return Received("mailing.report", ctx.message_id, ctx.peer, case, False)


# 亮码可办, the issuing center's side


def _on_ecode_query(ctx: _Context) -> Received:
    from portal.services import ecode

    reply = ecode.answer_query(ctx.peer, ctx.message, ctx.data, ctx.actor, ctx.today)
    return Received("ecode.query", ctx.message_id, ctx.peer, None, False, reply=reply)


_HANDLERS = {
    "case.send": _on_case_send,
    "case.ack": _on_ack,
    "materials.request": _on_materials_request,
    "case.result": _on_result,
    "mailing.report": _on_mailing,
    "ecode.query": _on_ecode_query,
}


# --- 亮码可办, the querying side -------------------------------------------------------------


@dataclass
class EcodeAnswer:
    query_id: str
    reply_id: str
    payload: dict


def query_ecode(center: Center, code: str, user: StaffUser, actor: str) -> EcodeAnswer:
    """Ask ``center`` (the e-code's issuer) for its depositor's information table, at once.

    The signed query is POSTed to the peer's inbox (tried up to three times with the same
    message id, which the peer answers once); the answer must be the peer's signed
    ``ecode.reply`` to this very query."""
    if not center.exchange_url:
        raise ExchangeRefused(
            f"{center.name}尚未开通在线交换，暂不能亮码查询，请申请人提供纸质证明"
        )
    department = user.department.name if user.department_id else ""
    message = messages.build(
        "ecode.query",
        self_center().code,
        center.code,
        None,
        messages.ecode_query_payload(code, user.name, department),
    )
    data = files.pack(message, {}, signing.private_key())
    response = None
    error = ""
    for _attempt in range(3):
        try:
            response = transport_http.post(
                center.exchange_url, data, message_id=message["message_id"]
            )
        except transport_http.TransportError as exc:
            error = str(exc)
            continue
        if not transport_http.retryable(response.status):
            break
        error = response.error
    if response is None:
        raise ExchangeRefused(f"无法连接{center.name}：{error}，请稍后再试")
    if not response.ok:
        raise ExchangeRefused(f"{center.name}未受理查询：{response.error}")
    try:
        package = files.read_package(response.body)
        peer = verify(package)
    except files.ImportRefused as exc:
        raise ExchangeRefused(f"{center.name}的应答无法验证：{exc}") from None
    reply = package.message
    if (
        peer.id != center.id
        or reply["type"] != "ecode.reply"
        or reply["payload"]["query_message_id"] != message["message_id"]
    ):
        raise ExchangeRefused(f"{center.name}的应答与本次查询不符")
    key, digest = get_storage().put(data, "packages", ".zip")
    reply_key, reply_digest = get_storage().put(response.body, "packages", ".zip")
    with write_tx():
        for m, direction, k, d in (
            (message, "out", key, digest),
            (reply, "in", reply_key, reply_digest),
        ):
            PlatformMessage.create(
                message_id=m["message_id"],
                direction=direction,
                kind=m["type"],
                sender=m["sender"],
                recipient=m["recipient"],
                storage_key=k,
                sha256=d,
                actor=actor[:40],
            )
        audit.record(
            actor,
            "platform.send",
            "center",
            center.code,
            message_id=message["message_id"],
            kind="ecode.query",
            recipient=center.code,
            channel="http",
        )
        audit.record(
            actor,
            "platform.receive",
            "center",
            center.code,
            message_id=reply["message_id"],
            kind="ecode.reply",
            sender=center.code,
            outcome=reply["payload"]["outcome"],
        )
    return EcodeAnswer(message["message_id"], reply["message_id"], reply["payload"])


# --- peers, for the admin and the CLI -----------------------------------------------------


def check_exchange_url(url: str, production: bool | None = None) -> str:
    """The URL as stored ('' clears it); ValueError with a Chinese reason."""
    url = (url or "").strip()
    if not url:
        return ""
    transport_http.check_url(url)
    if production is None:
        production = current_app.config.get("ENV") == "production"
    if production and not url.startswith("https://"):
        raise ValueError("生产环境的交换地址须使用 https://")
    if len(url) > 200:
        raise ValueError("交换地址不超过 200 个字符")
    return url
