"""The peer HTTP exchange: the inbox (/platform/inbox), the messages each move sends, and what
each received message does to our cases (issue 8)."""

from __future__ import annotations

import pytest

from portal.filters import local_today
from portal.models import (
    Attachment,
    AuditLog,
    CaseEvent,
    Center,
    Depositor,
    OutboxMessage,
    PlatformMessage,
    ProxyCase,
)
from portal.platform import exchange, files, messages, signing
from portal.rules import casestates as cs
from portal.storage import get_storage
from tests.conftest import TODAY, login_staff
from tests.counter_helpers import rezip
from tests.platform_http_helpers import (
    HX,
    OURS,
    PDF_BYTES,
    PEER,
    PNG_BYTES,
    build,
    entry,
    exchange_app,  # noqa: F401 (fixture)
    our_public_key,
    outbound_transmitted,
    peer,
    post_inbox,
    read_zip,
    signed,
    soup,
    staff,
)

pytestmark = pytest.mark.usefixtures("exchange_app")


@pytest.fixture
def our_depositor():
    return Depositor.select().where(Depositor.active).order_by(Depositor.id).first()


@pytest.fixture
def package(our_depositor):
    return files.demo_package(PEER, our_depositor, TODAY)


@pytest.fixture
def http_peer():
    """The peer reached over HTTP (its messages go through the outbox)."""
    Center.update(exchange_url="http://127.0.0.1:9/platform/inbox").where(
        Center.code == PEER
    ).execute()
    return peer()


def refused_audit(code: str) -> AuditLog:
    return (
        AuditLog.select()
        .where(AuditLog.action == "platform.refused")
        .order_by(AuditLog.id.desc())
        .first()
    )


# --- the inbox: who may deliver what --------------------------------------------------------


def test_a_signed_case_is_accepted_and_opens_an_inbound_case(client, package, our_depositor):
    r = post_inbox(client, package)
    assert r.status_code == 200, r.get_json()
    answer = r.get_json()
    message, _sig = read_zip(package)
    assert answer["status"] == "accepted" and answer["message_id"] == message["message_id"]
    case = ProxyCase.get(ProxyCase.case_no == answer["case_no"])
    assert case.direction == cs.INBOUND and case.state == "received"
    assert case.depositor_id == our_depositor.id
    assert case.platform_ref == f"{PEER}:{message['case_ref']['case_no']}"
    event = CaseEvent.get(CaseEvent.case == case)
    assert event.data["channel"] == "http" and event.data["message_id"] == message["message_id"]
    received = AuditLog.get(
        (AuditLog.action == "platform.receive") & (AuditLog.target_id == str(case.id))
    )
    assert received.detail["message_id"] == message["message_id"]
    assert received.actor == f"platform:{PEER}"
    assert our_depositor.resident_id not in str(received.detail)
    # the acknowledgement is written at once, for the peer's file exchange
    ack = PlatformMessage.get((PlatformMessage.case == case) & (PlatformMessage.kind == "case.ack"))
    ack_message, signature = read_zip(get_storage().get(ack.storage_key, ack.sha256))
    assert ack_message["case_ref"] == {
        "case_no": message["case_ref"]["case_no"],
        "peer_case_no": case.case_no,
    }
    assert ack_message["payload"] == {
        "received_on": case.clock_start.isoformat(),
        "deadline": case.deadline.isoformat(),
    }
    assert signing.verify(our_public_key(), messages.canonical(ack_message), signature["signature"])


def test_the_ack_to_an_http_peer_goes_to_the_outbox(client, package, http_peer):
    r = post_inbox(client, package)
    case = ProxyCase.get(ProxyCase.case_no == r.get_json()["case_no"])
    queued = OutboxMessage.get(OutboxMessage.case == case)
    assert queued.kind == "case.ack" and queued.status == "pending"
    assert queued.center_id == http_peer.id and queued.attempts == 0
    assert (
        AuditLog.get(
            (AuditLog.action == "platform.queue") & (AuditLog.target_id == str(case.id))
        ).detail["message_id"]
        == queued.message_id
    )


def test_a_duplicate_delivery_is_a_no_op(client, package):
    first = post_inbox(client, package).get_json()
    cases_before = ProxyCase.select().count()
    messages_before = PlatformMessage.select().count()
    again = post_inbox(client, package)
    assert again.status_code == 200
    assert again.get_json() == {**first, "status": "duplicate"}
    assert ProxyCase.select().count() == cases_before
    assert PlatformMessage.select().count() == messages_before
    assert AuditLog.select().where(AuditLog.action == "platform.receive_duplicate").exists()


@pytest.mark.parametrize(
    "make, status, code",
    [
        (lambda p: b"", 400, "unreadable"),
        (lambda p: b'{"message": "hello"}', 400, "unreadable"),
        (lambda p: rezip(p, {}) and _without(p, "signature.json"), 400, "unreadable"),
    ],
)
def test_unreadable_or_unsigned_packages_are_refused(client, package, make, status, code):
    before = ProxyCase.select().count()
    r = post_inbox(client, make(package))
    assert r.status_code == status
    assert r.get_json()["code"] == code and r.get_json()["error"]
    assert ProxyCase.select().count() == before
    row = refused_audit(code)
    assert row.detail["reason"] == code and row.detail["status"] == status


def _without(data: bytes, name: str) -> bytes:
    import io
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            if info.filename != name:
                dst.writestr(info.filename, src.read(info))
    return out.getvalue()


def _resign(message: dict, original: bytes, key=None) -> bytes:
    import json

    body = messages.canonical(message)
    signature = {
        "algorithm": "Ed25519",
        "signer": message["sender"],
        "signed_file": "message.json",
        "signature": signing.sign(body, key or signing.demo_peer_key(message["sender"])),
    }
    return rezip(original, {"message.json": body, "signature.json": json.dumps(signature).encode()})


def test_an_unknown_peer_is_refused_with_403(client, package):
    message, _ = read_zip(package)
    message["sender"] = "310000"
    r = post_inbox(client, _resign(message, package))
    assert r.status_code == 403 and r.get_json()["code"] == "unknown_peer"
    assert "未知的发送中心（310000）" in r.get_json()["error"]
    row = refused_audit("unknown_peer")
    assert row.detail["message_id"] == message["message_id"] and row.target_id == "310000"


def test_a_forged_signature_is_refused_with_403(client, package):
    message, _ = read_zip(package)
    forged = _resign(message, package, key=signing.demo_peer_key("640100"))
    r = post_inbox(client, forged)
    assert r.status_code == 403 and r.get_json()["code"] == "bad_signature"
    assert "签名校验失败" in r.get_json()["error"]


def test_an_edited_message_is_refused(client, package):
    message, _ = read_zip(package)
    message["payload"]["application"]["price"] = "1.00"
    r = post_inbox(client, rezip(package, {"message.json": messages.canonical(message)}))
    assert r.status_code == 403 and r.get_json()["code"] == "bad_signature"


def test_a_tampered_file_is_refused_with_422(client, package):
    message, _ = read_zip(package)
    first = message["payload"]["materials"][0]
    path = files.material_path(first["sha256"], first["content_type"])
    replacement = PNG_BYTES if first["content_type"] == "image/png" else PDF_BYTES
    r = post_inbox(client, rezip(package, {path: replacement}))
    assert r.status_code == 422 and r.get_json()["code"] == "tampered"
    assert "篡改" in r.get_json()["error"]


def test_a_schema_violation_is_refused_with_422(client, package):
    message, _ = read_zip(package)
    del message["payload"]["applicant"]["id_no"]
    r = post_inbox(client, _resign(message, package))
    assert r.status_code == 422 and r.get_json()["code"] == "schema"
    assert "id_no" in r.get_json()["error"]


def test_a_message_for_another_center_is_refused(client, package):
    message, _ = read_zip(package)
    message["recipient"] = "640100"
    r = post_inbox(client, _resign(message, package))
    assert r.status_code == 422 and r.get_json()["code"] == "wrong_recipient"


def test_the_inbox_needs_no_session_and_no_csrf_token(app, client, package, monkeypatch):
    """CSRF on: the inbox still accepts a signed package (exempt), a staff POST does not."""
    r = post_inbox(app.test_client(), b"")  # no cookie set, even on a refusal
    assert "Set-Cookie" not in r.headers
    login_staff(client, "liaison")
    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", True)
    r = post_inbox(client, package)
    assert r.status_code == 200 and r.get_json()["status"] == "accepted"
    r = client.post("/staff/outbox/1/retry")
    assert r.status_code == 400


def test_the_inbox_says_who_we_are(client):
    r = client.get("/platform/inbox")
    assert r.status_code == 200
    assert r.get_json()["center"] == OURS
    assert r.get_json()["public_key"] == our_public_key()
    assert r.get_json()["schema_versions"] == ["1.0", "1.1"]


def test_an_oversized_package_is_refused_with_413(client, monkeypatch):
    monkeypatch.setattr(files, "MAX_PACKAGE_BYTES", 1000)
    r = post_inbox(client, b"x" * 5000)
    assert r.status_code == 413 and r.get_json()["code"] == "too_large"


def test_repeated_refusals_from_one_address_are_rate_limited(client, monkeypatch):
    from portal.platform import inbox

    monkeypatch.setattr(inbox, "REFUSALS_PER_HOUR", 3)
    codes = [post_inbox(client, b"junk").status_code for _ in range(5)]
    assert codes[:3] == [400, 400, 400] and codes[-1] == 429


def test_ecode_messages_cannot_be_imported_as_files(package):
    query = build("ecode.query", None, messages.ecode_query_payload("1529001234567890", "张三"))
    with pytest.raises(files.ImportRefused, match="只能通过在线交换"):
        files.receive(signed(query))


# --- schema versions ---------------------------------------------------------------------


def test_case_messages_stay_version_1_0_and_ecode_messages_are_1_1():
    ack = build("case.ack", {"case_no": "KS1"}, messages.ack_payload(TODAY, TODAY))
    query = build("ecode.query", None, messages.ecode_query_payload("1529001234567890", "张三"))
    assert ack["schema_version"] == "1.0" and query["schema_version"] == "1.1"
    assert "case_ref" not in query


def test_a_1_0_message_is_read_with_the_1_0_schema_and_1_1_adds_only():
    from jsonschema import Draft202012Validator

    ack = build("case.ack", {"case_no": "KS1"}, messages.ack_payload(TODAY, TODAY))
    messages.validate(ack)
    as_11 = {**ack, "schema_version": "1.1"}
    messages.validate(as_11)  # every 1.0 message is also a valid 1.1 message
    Draft202012Validator.check_schema(messages.schema("1.1"))
    with pytest.raises(messages.MessageInvalid, match="schema_version 取值不正确"):
        messages.validate({**ack, "schema_version": "3.0"})
    # a case message needs its case_ref; an e-code message must not have one
    with pytest.raises(messages.MessageInvalid, match="case_ref"):
        messages.validate({k: v for k, v in as_11.items() if k != "case_ref"})
    query = build("ecode.query", None, messages.ecode_query_payload("1529001234567890", "张三"))
    with pytest.raises(messages.MessageInvalid):
        messages.validate({**query, "case_ref": {"case_no": "KS1"}})
    with pytest.raises(messages.MessageInvalid, match="v1.0"):
        messages.validate({**query, "schema_version": "1.0"})


def test_a_refused_ecode_reply_cannot_carry_a_table():
    payload = messages.ecode_reply_payload("0" * 8 + "-0000-4000-8000-" + "0" * 12, reason="x")
    payload["table"] = {}
    with pytest.raises(messages.MessageInvalid):
        build("ecode.reply", None, payload)


# --- the accepting center (our outbound cases) ----------------------------------------------


def test_transmitting_to_an_http_peer_queues_the_case_and_shows_pending(client, http_peer):
    case = ProxyCase.get_by_id(outbound_transmitted().id)
    assert case.delivery == "pending" and case.peer_deadline is None
    queued = OutboxMessage.get(OutboxMessage.case == case)
    assert queued.kind == "case.send" and queued.status == "pending"
    event = CaseEvent.get((CaseEvent.case == case) & (CaseEvent.to_state == "transmitted"))
    stored = PlatformMessage.get(PlatformMessage.message_id == queued.message_id)
    assert event.data["package"] == stored.storage_key
    login_staff(client, "liaison")
    page = soup(client.get("/staff/board/outbound"))
    card = page.select_one(f"#case-{case.id}")
    assert card.select_one(".kcard-delivery").get_text(strip=True).startswith("待送达")


def test_the_peers_ack_starts_its_deadline_on_our_card(client, http_peer):
    case = outbound_transmitted()
    ack = build(
        "case.ack",
        {"case_no": case.case_no, "peer_case_no": "BJ20261125001"},
        messages.ack_payload(TODAY, TODAY.replace(day=30)),
    )
    r = post_inbox(client, signed(ack))
    assert r.status_code == 200 and r.get_json()["case_no"] == case.case_no
    case = ProxyCase.get_by_id(case.id)
    assert case.delivery == "acked" and case.state == "transmitted"
    assert case.peer_ack_on == TODAY and case.peer_deadline == TODAY.replace(day=30)
    assert case.platform_ref == f"{PEER}:BJ20261125001"
    login_staff(client, "liaison")
    card = soup(client.get("/staff/board/outbound", headers=HX)).select_one(f"#case-{case.id}")
    text = card.select_one(".kcard-delivery").get_text(" ", strip=True)
    assert "对方已接收" in text and "2026-11-30" in text
    history = soup(client.get(f"/staff/board/case/{case.id}")).get_text()
    assert "对方接收确认" in history and "BJ20261125001" in history


def test_an_ack_for_an_unknown_case_is_refused_with_404(client):
    ack = build("case.ack", {"case_no": "KS-NOPE"}, messages.ack_payload(TODAY, TODAY))
    r = post_inbox(client, signed(ack))
    assert r.status_code == 404 and r.get_json()["code"] == "unknown_case"
    assert "接收确认" in r.get_json()["error"]


def test_a_request_for_materials_puts_the_case_back_in_supplement(client, http_peer):
    case = outbound_transmitted()
    request = build(
        "materials.request",
        {"case_no": case.case_no},
        messages.materials_request_payload(["购房发票", "婚姻关系证明"], "发票不清晰"),
    )
    r = post_inbox(client, signed(request))
    assert r.status_code == 200
    case = ProxyCase.get_by_id(case.id)
    assert case.state == cs.PAUSED and case.paused_since == local_today()
    assert case.missing_materials == ["购房发票", "婚姻关系证明"] and case.delivery == ""
    event = CaseEvent.select().where(CaseEvent.case == case).order_by(CaseEvent.id.desc()).first()
    assert event.from_state == "transmitted" and event.to_state == cs.PAUSED
    assert event.actor_id is None and "全国住房公积金监管服务平台" in event.actor_label
    # a second request while it waits adds to the list; once it moved on, it is refused
    more = build(
        "materials.request",
        {"case_no": case.case_no},
        messages.materials_request_payload(["收入证明"]),
    )
    assert post_inbox(client, signed(more)).status_code == 200
    assert ProxyCase.get_by_id(case.id).missing_materials[-1] == "收入证明"
    ProxyCase.update(state="accepted").where(ProxyCase.id == case.id).execute()
    late = build(
        "materials.request", {"case_no": case.case_no}, messages.materials_request_payload(["x"])
    )
    r = post_inbox(client, signed(late))
    assert r.status_code == 409 and r.get_json()["code"] == "state_conflict"


def _result(case_no: str, outcome="done", documents=()):
    entries = [entry("result_notice", n, f"{n}.pdf", d, "application/pdf") for n, d in documents]
    payload = messages.result_payload(outcome, TODAY, "已支付至申请人银行卡", entries)
    return build("case.result", {"case_no": case_no, "peer_case_no": "BJ1"}, payload)


def test_a_result_moves_the_case_to_feedback_with_its_documents(client, http_peer):
    case = outbound_transmitted()
    notice = PDF_BYTES + b"% notice\n"
    message = _result(case.case_no, documents=[("办理结果告知书", notice)])
    r = post_inbox(client, signed(message, {entry_sha(notice): notice}))
    assert r.status_code == 200
    case = ProxyCase.get_by_id(case.id)
    assert case.state == "feedback"
    assert case.result["outcome"] == "办结" and case.result["note"] == "已支付至申请人银行卡"
    docs = list(
        Attachment.select().where((Attachment.case == case) & (Attachment.kind == "result"))
    )
    assert [d.filename for d in docs] == ["办理结果告知书.pdf"]
    assert get_storage().get(docs[0].storage_key, docs[0].sha256) == notice
    login_staff(client, "clerk")
    detail = soup(client.get(f"/staff/board/case/{case.id}"))
    assert "办理结果告知书.pdf" in detail.get_text() and "办结" in detail.get_text()


def entry_sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def test_a_rejection_result_is_fed_back_as_not_handled(client):
    case = outbound_transmitted()
    r = post_inbox(client, signed(_result(case.case_no, outcome="rejected")))
    assert r.status_code == 200
    case = ProxyCase.get_by_id(case.id)
    assert case.state == "feedback" and case.result["outcome"] == "不予办理"


def test_a_result_with_a_tampered_document_is_refused(client):
    case = outbound_transmitted()
    notice = PDF_BYTES + b"% notice\n"
    message = _result(case.case_no, documents=[("办理结果告知书", notice)])
    r = post_inbox(client, signed(message, {entry_sha(notice): PDF_BYTES + b"% other\n"}))
    assert r.status_code == 422 and r.get_json()["code"] == "tampered"
    assert ProxyCase.get_by_id(case.id).state == "transmitted"


def test_a_mailing_report_is_recorded_on_the_case(client):
    case = outbound_transmitted()
    report = build(
        "mailing.report",
        {"case_no": case.case_no},
        messages.mailing_payload("EMS", "EMS1234567890", TODAY, "结果文书原件"),
    )
    assert post_inbox(client, signed(report)).status_code == 200
    event = CaseEvent.select().where(CaseEvent.case == case).order_by(CaseEvent.id.desc()).first()
    assert event.action == "mail_in" and event.data["tracking_no"] == "EMS1234567890"


# --- the deposit-place center (our inbound cases) --------------------------------------------


def _inbound(client, package) -> ProxyCase:
    number = post_inbox(client, package).get_json()["case_no"]
    return ProxyCase.get(ProxyCase.case_no == number)


def _move(case, username, target, data=None):
    from portal.services import cases

    case = ProxyCase.get_by_id(case.id)
    return cases.move_case(staff(username), case.id, target, case.version, data, today=TODAY)


def test_inbound_moves_send_requests_and_results(client, package, http_peer):
    case = _inbound(client, package)
    _move(case, "liaison", "distributed", {"department": staff("handler").department_id})
    _move(case, "handler", "processing")
    _move(case, "handler", cs.PAUSED, {"missing": ["购房发票"]})
    sent = PlatformMessage.get(
        (PlatformMessage.case == case) & (PlatformMessage.kind == "materials.request")
    )
    request, _ = read_zip(get_storage().get(sent.storage_key))
    assert request["payload"]["missing"] == ["购房发票"]
    assert request["case_ref"]["peer_case_no"] == case.case_no
    assert OutboxMessage.get(OutboxMessage.message_id == sent.message_id).status == "pending"
    move = CaseEvent.select().where(CaseEvent.case == case).order_by(CaseEvent.id.desc()).first()
    assert move.data["message_id"] == sent.message_id

    # the accepting center sends the case again with the missing file: it resumes
    message, _ = read_zip(package)
    invoice = PDF_BYTES + b"% invoice\n"
    message["message_id"] = "00000000-0000-4000-8000-000000000001"
    message["payload"]["materials"].append(
        entry("payment_invoice", "购房发票", "发票.pdf", invoice, "application/pdf")
    )
    attachments = {e["sha256"]: b"" for e in message["payload"]["materials"]}
    for name, data in _members(package).items():
        if name.startswith("materials/"):
            attachments[name.split("/")[1].split(".")[0]] = data
    attachments[entry_sha(invoice)] = invoice
    r = post_inbox(client, signed(message, attachments))
    assert r.status_code == 200 and r.get_json()["case_no"] == case.case_no
    case = ProxyCase.get_by_id(case.id)
    assert case.state == "processing" and case.paused_since is None
    assert (
        Attachment.select()
        .where((Attachment.case == case) & (Attachment.sha256 == entry_sha(invoice)))
        .exists()
    )
    acks = PlatformMessage.select().where(
        (PlatformMessage.case == case) & (PlatformMessage.kind == "case.ack")
    )
    assert acks.count() == 2

    _move(case, "handler", "done", {"outcome": "办结", "note": "已支付 120000.00 元"})
    _move(case, "liaison", "fed_back")
    result = PlatformMessage.get(
        (PlatformMessage.case == case) & (PlatformMessage.kind == "case.result")
    )
    data = get_storage().get(result.storage_key)
    message, _ = read_zip(data)
    assert message["payload"]["outcome"] == "done"
    assert message["payload"]["note"] == "已支付 120000.00 元"
    [document] = message["payload"]["documents"]
    assert document["name"] == "办理结果告知书"
    members = _members(data)
    assert files.material_path(document["sha256"], "application/pdf") in members
    # the notice is kept on our case too
    assert (
        Attachment.select().where((Attachment.case == case) & (Attachment.kind == "result")).count()
        == 1
    )


def _members(data: bytes) -> dict[str, bytes]:
    import io
    import zipfile

    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def test_rejecting_an_inbound_case_feeds_back_the_reason(client, package):
    case = _inbound(client, package)
    _move(case, "liaison", "rejected", {"reason": "申请人非本中心缴存职工"})
    result = PlatformMessage.get(
        (PlatformMessage.case == case) & (PlatformMessage.kind == "case.result")
    )
    message, _ = read_zip(get_storage().get(result.storage_key))
    assert message["payload"]["outcome"] == "rejected"
    assert message["payload"]["note"] == "申请人非本中心缴存职工"


def test_a_case_already_closed_here_cannot_be_sent_again(client, package):
    case = _inbound(client, package)
    _move(case, "liaison", "rejected", {"reason": "不符合条件"})
    message, _ = read_zip(package)
    message["message_id"] = "00000000-0000-4000-8000-000000000002"
    attachments = {}
    for name, data in _members(package).items():
        if name.startswith("materials/"):
            attachments[name.split("/")[1].split(".")[0]] = data
    r = post_inbox(client, signed(message, attachments))
    assert r.status_code == 409 and r.get_json()["code"] == "case_closed"


def test_recording_mailing_reports_it_to_the_other_center(client, package):
    from portal.services import cases

    case = outbound_transmitted()
    cases.record_mailing(staff("liaison"), case.id, "EMS9876543210")
    report = PlatformMessage.get(
        (PlatformMessage.case == case) & (PlatformMessage.kind == "mailing.report")
    )
    message, _ = read_zip(get_storage().get(report.storage_key))
    assert message["payload"]["tracking_no"] == "EMS9876543210"
    assert message["case_ref"] == {"case_no": case.case_no}


def test_a_demo_inbound_case_without_a_platform_reference_sends_nothing():
    from tests.board_helpers import make_case

    case = make_case(cs.INBOUND, "done", assignee="handler")
    _move(case, "liaison", "fed_back")
    assert not PlatformMessage.select().where(PlatformMessage.case == case).exists()


def test_the_file_import_takes_every_message_type(package, our_depositor):
    """The file adapter carries the same messages: an ack imported by hand acknowledges."""
    case = outbound_transmitted()
    ack = build("case.ack", {"case_no": case.case_no}, messages.ack_payload(TODAY, TODAY))
    imported = files.receive(signed(ack), actor="staff:liaison", user=staff("liaison"))
    assert imported.kind == "case.ack" and not imported.duplicate
    case = ProxyCase.get_by_id(case.id)
    assert case.delivery == "acked" and case.peer_deadline == TODAY
    assert (
        AuditLog.get(
            (AuditLog.action == "platform.import") & (AuditLog.target_id == str(case.id))
        ).actor
        == "staff:liaison"
    )


def test_the_platform_page_says_what_a_non_case_import_did(client):
    import io

    case = outbound_transmitted()
    ack = build("case.ack", {"case_no": case.case_no}, messages.ack_payload(TODAY, TODAY))
    login_staff(client, "liaison")
    r = client.post(
        "/staff/platform/import",
        data={"package": (io.BytesIO(signed(ack)), "ack.zip")},
        content_type="multipart/form-data",
    )
    assert r.status_code == 303
    flashes = soup(client.get(r.headers["Location"])).select_one(".flashes").get_text()
    assert "接收确认" in flashes and case.case_no in flashes


# --- the admin sets a peer's exchange URL --------------------------------------------------


def test_admin_sets_the_exchange_url_audited(client):
    login_staff(client, "admin")
    form = soup(client.get(f"/staff/admin/centers/{PEER}"))
    assert form.select_one("#exchange_url") is not None
    data = {
        "online_items": ["query"],
        "public_key": signing.demo_peer_public_key(PEER),
        "exchange_url": "https://gjj.beijing.example/platform/inbox",
        "active": "y",
    }
    r = client.post(f"/staff/admin/centers/{PEER}", data=data)
    assert r.status_code == 303
    assert peer().exchange_url == "https://gjj.beijing.example/platform/inbox"
    row = AuditLog.select().where(AuditLog.action == "center.update").order_by(AuditLog.id.desc())
    assert row.first().detail["after"]["exchange_url"] == data["exchange_url"]
    r = client.post(f"/staff/admin/centers/{PEER}", data={**data, "exchange_url": "ftp://x"})
    assert r.status_code == 422
    assert "http://" in soup(r).select_one("#exchange_url-error").get_text()
    assert peer().exchange_url == "https://gjj.beijing.example/platform/inbox"


def test_production_requires_https_for_exchange_urls():
    with pytest.raises(ValueError, match="https"):
        exchange.check_exchange_url("http://peer.example/platform/inbox", production=True)
    assert exchange.check_exchange_url(" http://127.0.0.1:5001/platform/inbox ", False) == (
        "http://127.0.0.1:5001/platform/inbox"
    )
    assert exchange.check_exchange_url("") == ""


# --- setting up a pair of centers (CLI) ----------------------------------------------------


def test_cli_peer_and_configure_self(app, runner, monkeypatch):
    r = runner.invoke(
        args=[
            "platform",
            "peer",
            PEER,
            "--public-key",
            signing.demo_peer_public_key(PEER),
            "--exchange-url",
            "http://127.0.0.1:5001/platform/inbox",
        ]
    )
    assert r.exit_code == 0, r.output
    assert "http http://127.0.0.1:5001/platform/inbox" in r.output
    assert peer().exchange_url == "http://127.0.0.1:5001/platform/inbox"
    r = runner.invoke(args=["platform", "peer", "320000"])
    assert r.exit_code != 0 and "--name" in r.output
    r = runner.invoke(args=["platform", "peer", PEER, "--public-key", "bm90LWEta2V5"])
    assert r.exit_code != 0 and "32 字节" in r.output

    ours = Center.get(Center.is_self)
    monkeypatch.setitem(app.config, "CENTER_CODE", PEER)
    monkeypatch.setitem(app.config, "CENTER_NAME", "北京住房公积金管理中心")
    r = runner.invoke(args=["platform", "configure-self"])
    assert r.exit_code == 0, r.output
    me, other = Center.get_by_id(ours.id), Center.get(Center.code == OURS)
    assert me.is_self and me.code == PEER and me.name == "北京住房公积金管理中心"
    assert not other.is_self and other.name == ours.name and other.public_key is None
    assert files.self_center().code == PEER
