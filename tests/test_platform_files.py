"""The platform message schema, signatures and the file adapter (import/export, CLI, page)."""

from __future__ import annotations

import base64
import hashlib
import io
import json

import pytest
from jsonschema import Draft202012Validator

from portal.models import (
    Attachment,
    AuditLog,
    CaseEvent,
    Center,
    Depositor,
    PlatformMessage,
    ProxyCase,
)
from portal.platform import files, messages, signing
from portal.rules.workdays import add_workdays
from portal.services import materials
from portal.storage import get_storage
from tests.conftest import TODAY, login_staff
from tests.counter_helpers import (
    PDF_BYTES,
    PNG_BYTES,
    accept,
    package_message,
    package_names,
    rezip,
    soup,
    staff,
)


@pytest.fixture(autouse=True)
def signing_key(app, tmp_path, monkeypatch):
    """Our key for these tests: a fresh development key file in a temporary directory."""
    monkeypatch.delitem(app.config, "SIGNING_KEY", raising=False)
    monkeypatch.delenv("PORTAL_SIGNING_KEY", raising=False)
    monkeypatch.setitem(app.config, "SIGNING_KEY_FILE", str(tmp_path / "signing.key"))
    with app.app_context():
        yield


@pytest.fixture
def our_depositor():
    return Depositor.select().where(Depositor.active).order_by(Depositor.id).first()


@pytest.fixture
def package(our_depositor):
    return files.demo_package("110000", our_depositor, TODAY)


def _resign(message: dict, key, original: bytes) -> bytes:
    """The package with ``message`` replacing the original's, signed with ``key``."""
    body = messages.canonical(message)
    signature = {
        "algorithm": "Ed25519",
        "signer": message["sender"],
        "signed_file": "message.json",
        "signature": signing.sign(body, key),
    }
    return rezip(
        original,
        {"message.json": body, "signature.json": json.dumps(signature).encode()},
    )


# --- schema and messages ------------------------------------------------------------------


def test_schema_is_valid_json_schema_2020_12():
    Draft202012Validator.check_schema(messages.schema())
    assert messages.schema()["properties"]["schema_version"]["const"] == "1.0"


def _ack(**overrides):
    return messages.build(
        "case.ack",
        "152900",
        "110000",
        {"case_no": "KS202611250001"},
        {"received_on": "2026-11-25", "deadline": "2026-11-30"},
        **overrides,
    )


def test_build_makes_a_valid_envelope():
    message = _ack()
    assert message["schema_version"] == "1.0" and message["type"] == "case.ack"
    assert len(message["message_id"]) == 36 and message["created_at"].endswith("Z")
    messages.validate(message)


@pytest.mark.parametrize(
    "kind, payload",
    [
        ("materials.request", {"missing": ["购房发票"], "note": "请补充"}),
        ("case.result", {"outcome": "done", "done_on": "2026-11-27", "note": "已办结"}),
        (
            "mailing.report",
            {"carrier": "EMS", "tracking_no": "1234567890", "mailed_on": "2026-11-26"},
        ),
    ],
)
def test_every_message_type_validates(kind, payload):
    messages.build(kind, "152900", "110000", {"case_no": "KS1", "peer_case_no": "BJ1"}, payload)


@pytest.mark.parametrize(
    "change, expected",
    [
        (lambda m: m.pop("sender"), "缺少必填字段：sender"),
        (lambda m: m.update(type="case.delete"), "type 取值不在允许范围内"),
        (lambda m: m.update(message_id="not-a-uuid"), "message_id 格式不正确"),
        (lambda m: m.update(extra=1), "含有规范未定义的字段：extra"),
        (lambda m: m["payload"].pop("deadline"), "payload 缺少必填字段：deadline"),
        (lambda m: m["payload"].update(deadline="25/11/2026"), "payload/deadline 格式不正确"),
        (lambda m: m.update(schema_version="2.0"), "schema_version 取值不正确"),
    ],
)
def test_schema_violations_are_named_in_chinese(change, expected):
    message = _ack()
    change(message)
    with pytest.raises(messages.MessageInvalid) as info:
        messages.validate(message)
    assert expected in str(info.value) and "报文不符合规范" in str(info.value)


def test_canonical_form_is_stable():
    message = _ack()
    shuffled = json.loads(json.dumps(message, indent=3, ensure_ascii=True))
    assert messages.canonical(shuffled) == messages.canonical(message)
    assert b"\n" not in messages.canonical(message)


# --- signing ------------------------------------------------------------------------------


def test_signatures_verify_with_the_right_key_only():
    key = signing.private_key()
    other = signing.demo_peer_key("640100")
    signature = signing.sign(b"data", key)
    assert signing.verify(signing.public_key_b64(key), b"data", signature)
    assert not signing.verify(signing.public_key_b64(key), b"data!", signature)
    assert not signing.verify(signing.public_key_b64(other), b"data", signature)
    assert not signing.verify("not base64!", b"data", signature)
    assert not signing.verify(signing.public_key_b64(key), b"data", "AAAA")


def test_development_key_is_created_once_and_reused(app):
    path = app.config["SIGNING_KEY_FILE"]
    first = signing.public_key_b64(signing.private_key())
    assert signing.public_key_b64(signing.private_key()) == first
    with open(path) as fh:
        assert len(base64.b64decode(fh.read().strip())) == 32
    import os
    import stat

    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_key_from_the_environment(app, monkeypatch):
    seed = hashlib.sha256(b"production seed").digest()
    monkeypatch.setenv("PORTAL_SIGNING_KEY", base64.b64encode(seed).decode())
    assert signing.public_key_b64(signing.private_key()) == signing.public_key_b64(
        signing.key_from_seed(seed)
    )
    monkeypatch.setenv("PORTAL_SIGNING_KEY", base64.b64encode(b"short").decode())
    with pytest.raises(signing.SigningError):
        signing.private_key()


def test_production_requires_the_environment_key(app, monkeypatch):
    monkeypatch.setitem(app.config, "ENV", "production")
    with pytest.raises(signing.SigningError, match="PORTAL_SIGNING_KEY"):
        signing.private_key()


def test_demo_peers_have_their_deterministic_public_keys():
    for center in Center.select().where(~Center.is_self):
        assert center.public_key == signing.demo_peer_public_key(center.code)
        seed = hashlib.sha256(f"demo-peer-{center.code}".encode()).digest()
        assert center.public_key == signing.public_key_b64(signing.key_from_seed(seed))
        assert signing.is_valid_public_key(center.public_key)


# --- import -------------------------------------------------------------------------------


def test_demo_package_is_signed_and_lists_its_materials(package, our_depositor):
    names = package_names(package)
    message = package_message(package)
    assert {"message.json", "signature.json"} <= set(names)
    assert message["sender"] == "110000" and message["recipient"] == "152900"
    assert message["payload"]["applicant"]["id_no"] == our_depositor.resident_id
    for entry in message["payload"]["materials"]:
        assert files.material_path(entry["sha256"], entry["content_type"]) in names


def test_import_opens_an_inbound_case_in_platform_received(package, our_depositor):
    case = files.import_package(package, actor="staff:liaison", user=staff("liaison"), today=TODAY)
    assert case.direction == "inbound" and case.state == "received"
    assert case.clock_start == TODAY and case.deadline == add_workdays(TODAY, 3, {})
    assert case.depositor_id == our_depositor.id and case.department_id is None
    assert case.center.code == "110000" and case.item == "purchase_withdrawal"
    assert case.platform_ref.startswith("110000:BJ")
    assert case.applicant_id_no == our_depositor.resident_id
    message = package_message(package)
    attachments = list(Attachment.select().where(Attachment.case == case))
    assert {a.sha256 for a in attachments} == {m["sha256"] for m in message["payload"]["materials"]}
    for a in attachments:
        assert get_storage().get(a.storage_key, a.sha256)
    event = CaseEvent.get(CaseEvent.case == case)
    assert event.to_state == "received" and event.data["message_id"] == message["message_id"]
    stored = PlatformMessage.get(PlatformMessage.message_id == message["message_id"])
    assert stored.direction == "in" and stored.case_id == case.id and stored.sender == "110000"
    assert get_storage().get(stored.storage_key, stored.sha256) == package
    audit = AuditLog.get(
        (AuditLog.action == "platform.import") & (AuditLog.target_id == str(case.id))
    )
    assert audit.actor == "staff:liaison" and our_depositor.resident_id not in str(audit.detail)


def test_a_duplicate_message_is_a_no_op(package):
    first = files.import_package(package, today=TODAY)
    count = ProxyCase.select().count()
    again = files.receive(package, today=TODAY)
    assert again.duplicate and again.case.id == first.id
    assert ProxyCase.select().count() == count
    assert Attachment.select().where(Attachment.case == first).count() == len(
        package_message(package)["payload"]["materials"]
    )


def test_a_package_signed_with_another_key_is_refused(package):
    message = package_message(package)
    forged = _resign(message, signing.demo_peer_key("640100"), package)
    with pytest.raises(files.ImportRefused, match="签名校验失败"):
        files.import_package(forged, today=TODAY)


def test_an_edited_message_breaks_the_signature(package):
    message = package_message(package)
    message["payload"]["application"]["price"] = "1.00"
    edited = rezip(package, {"message.json": messages.canonical(message)})
    with pytest.raises(files.ImportRefused, match="签名校验失败"):
        files.import_package(edited, today=TODAY)


def test_an_unknown_peer_is_refused(package):
    message = package_message(package)
    message["sender"] = "310000"
    forged = _resign(message, signing.demo_peer_key("310000"), package)
    with pytest.raises(files.ImportRefused, match="未知的发送中心（310000）"):
        files.import_package(forged, today=TODAY)


def test_a_peer_without_a_public_key_is_refused(package):
    Center.update(public_key=None).where(Center.code == "110000").execute()
    with pytest.raises(files.ImportRefused, match="尚未登记公钥"):
        files.import_package(package, today=TODAY)


def test_a_tampered_material_is_refused(package):
    entry = package_message(package)["payload"]["materials"][0]
    path = files.material_path(entry["sha256"], entry["content_type"])
    tampered = rezip(
        package, {path: PDF_BYTES if entry["content_type"] != "image/png" else PNG_BYTES}
    )
    before = ProxyCase.select().count()
    with pytest.raises(files.ImportRefused, match="篡改"):
        files.import_package(tampered, today=TODAY)
    assert ProxyCase.select().count() == before


def test_a_missing_material_file_is_refused(package):
    entry = package_message(package)["payload"]["materials"][0]
    path = files.material_path(entry["sha256"], entry["content_type"])
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(package)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            if info.filename != path:
                dst.writestr(info.filename, src.read(info))
    with pytest.raises(files.ImportRefused, match="缺少材料"):
        files.import_package(out.getvalue(), today=TODAY)


def test_a_schema_violation_is_refused_even_when_signed(package):
    message = package_message(package)
    del message["payload"]["applicant"]["id_no"]
    signed = _resign(message, signing.demo_peer_key("110000"), package)
    with pytest.raises(files.ImportRefused, match="报文不符合规范.*id_no"):
        files.import_package(signed, today=TODAY)


def test_a_package_for_another_center_is_refused(package):
    message = package_message(package)
    message["recipient"] = "640100"
    signed = _resign(message, signing.demo_peer_key("110000"), package)
    with pytest.raises(files.ImportRefused, match="接收方不是本中心"):
        files.import_package(signed, today=TODAY)


def test_other_message_types_are_not_imported_as_cases(package):
    message = messages.build(
        "case.ack",
        "110000",
        "152900",
        {"case_no": "KS1"},
        {"received_on": "2026-11-25", "deadline": "2026-11-30"},
    )
    signed = files.pack(message, {}, signing.demo_peer_key("110000"))
    with pytest.raises(files.ImportRefused, match="接收确认"):
        files.import_package(signed, today=TODAY)


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "文件为空"),
        (b"MZ not a zip", "不是有效的业务包"),
    ],
)
def test_not_a_package(data, message):
    with pytest.raises(files.ImportRefused, match=message):
        files.import_package(data, today=TODAY)


def test_unknown_files_in_the_zip_are_refused(package):
    with pytest.raises(files.ImportRefused, match="无法识别的文件"):
        files.import_package(rezip(package, add={"../evil.sh": b"rm -rf /"}), today=TODAY)


def test_signer_must_be_the_sender(package):
    signature = {"algorithm": "Ed25519", "signer": "640100", "signature": "AAAA"}
    forged = rezip(package, {"signature.json": json.dumps(signature).encode()})
    with pytest.raises(files.ImportRefused, match="签名方"):
        files.import_package(forged, today=TODAY)


def test_a_stranger_is_opened_but_not_matched(package, our_depositor):
    from tests.counter_helpers import APPLICANT_ID

    message = package_message(package)
    message["payload"]["applicant"]["id_no"] = APPLICANT_ID
    signed = _resign(message, signing.demo_peer_key("110000"), package)
    case = files.import_package(signed, today=TODAY)
    assert case.depositor_id is None and case.state == "received"
    assert CaseEvent.get(CaseEvent.case == case).data["depositor_matched"] is False


# --- export -------------------------------------------------------------------------------


def test_export_case_stores_a_signed_package():
    case = accept()
    materials.upload(
        staff("clerk"), "staff:clerk", case, "purchase_contract", "合同.pdf", PDF_BYTES
    )
    materials.upload(staff("clerk"), "staff:clerk", case, "id_card", "身份证.png", PNG_BYTES)
    key = files.export_case(case, actor="staff:liaison")
    data = get_storage().get(key)
    message = package_message(data)
    assert message["type"] == "case.send" and message["sender"] == "152900"
    assert message["recipient"] == "110000" and message["case_ref"] == {"case_no": case.case_no}
    payload = message["payload"]
    assert payload["applicant"]["id_no"] == case.applicant_id_no
    assert payload["application"]["price"] == "680000.00"
    assert {m["sha256"] for m in payload["materials"]} == {
        hashlib.sha256(PDF_BYTES).hexdigest(),
        hashlib.sha256(PNG_BYTES).hexdigest(),
    }
    package = files.read_package(data)
    ours = signing.public_key_b64(signing.private_key())
    assert signing.verify(ours, messages.canonical(package.message), package.signature["signature"])
    sent = PlatformMessage.get(PlatformMessage.case == case)
    assert sent.direction == "out" and sent.storage_key == key
    exported = AuditLog.get(
        (AuditLog.action == "platform.export") & (AuditLog.target_id == str(case.id))
    )
    assert exported.actor == "staff:liaison"


def test_an_exported_package_imports_at_the_peer(our_depositor):
    """Round trip: what we export verifies with our public key as the peer would check it."""
    case = accept()
    materials.upload(staff("clerk"), "staff:clerk", case, "id_card", "a.png", PNG_BYTES)
    data = get_storage().get(files.export_case(case))
    package = files.read_package(data)
    messages.validate(package.message)
    entry = package.message["payload"]["materials"][0]
    path = files.material_path(entry["sha256"], entry["content_type"])
    assert hashlib.sha256(package.files[path]).hexdigest() == entry["sha256"]


def test_inbound_cases_are_not_exported(package):
    case = files.import_package(package, today=TODAY)
    with pytest.raises(files.ExportRefused):
        files.export_case(case)


def test_export_refuses_a_missing_material_file():
    case = accept()
    attachment = materials.upload(
        staff("clerk"), "staff:clerk", case, "id_card", "a.pdf", PDF_BYTES
    )
    Attachment.update(sha256="0" * 64).where(Attachment.id == attachment.id).execute()
    with pytest.raises(files.ExportRefused, match="校验失败"):
        files.export_case(ProxyCase.get_by_id(case.id))


# --- the command line ---------------------------------------------------------------------


def test_cli_demo_package_then_import_then_duplicate(runner, tmp_path, our_depositor):
    out = tmp_path / "pkg.zip"
    result = runner.invoke(args=["platform", "demo-package", "--from", "110000", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert package_message(out.read_bytes())["payload"]["applicant"]["id_no"] == (
        our_depositor.resident_id
    )
    before = ProxyCase.select().count()
    result = runner.invoke(args=["platform", "import", str(out)])
    assert result.exit_code == 0, result.output
    assert "imported: KS" in result.output and "received" in result.output
    assert ProxyCase.select().count() == before + 1
    result = runner.invoke(args=["platform", "import", str(out)])
    assert result.exit_code == 0 and ProxyCase.select().count() == before + 1
    assert "already imported" in result.output


def test_cli_import_refusal_is_a_clear_error(runner, tmp_path):
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"not a zip")
    result = runner.invoke(args=["platform", "import", str(bad)])
    assert result.exit_code != 0 and "不是有效的业务包" in result.output


def test_cli_export(runner, tmp_path):
    case = accept()
    out = tmp_path / "out.zip"
    result = runner.invoke(args=["platform", "export", case.case_no, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert package_message(out.read_bytes())["case_ref"]["case_no"] == case.case_no
    result = runner.invoke(args=["platform", "export", "KS-nope"])
    assert result.exit_code != 0 and "no case" in result.output


def test_cli_public_key(runner):
    result = runner.invoke(args=["platform", "public-key"])
    assert result.exit_code == 0
    assert signing.is_valid_public_key(result.output.strip())


def test_cli_demo_package_for_a_settlement_certificate(runner, tmp_path):
    out = tmp_path / "s.zip"
    result = runner.invoke(
        args=["platform", "demo-package", "--item", "settlement_certificate", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert package_message(out.read_bytes())["payload"]["item"] == "settlement_certificate"


# --- the liaison's page -------------------------------------------------------------------


@pytest.mark.parametrize(
    "username, status",
    [("liaison", 200), ("clerk", 403), ("handler", 403), ("auditor", 403), ("admin", 403)],
)
def test_platform_page_is_for_the_liaison(client, username, status):
    login_staff(client, username)
    assert client.get("/staff/platform/").status_code == status


def test_platform_page_anonymous_and_htmx(client):
    assert client.get("/staff/platform/").status_code == 302
    login_staff(client, "liaison")
    r = client.get("/staff/platform/", headers={"HX-Request": "true"})
    text = r.get_data(as_text=True)
    assert "<html" not in text and 'id="platform-messages"' in text


def _upload(client, data: bytes, name="pkg.zip"):
    return client.post(
        "/staff/platform/import",
        data={"package": (io.BytesIO(data), name)},
        content_type="multipart/form-data",
    )


def test_liaison_imports_a_package_through_the_page(client, package):
    login_staff(client, "liaison")
    r = _upload(client, package)
    assert r.status_code == 303
    page = soup(client.get(r.headers["Location"]))
    assert "平台接收" in page.select_one(".flashes").get_text()
    case = ProxyCase.select().order_by(ProxyCase.id.desc()).first()
    assert (
        case.state == "received"
        and CaseEvent.get(CaseEvent.case == case).actor_id == staff("liaison").id
    )
    link = page.select_one(f"#platform-messages a[href='/staff/counter/cases/{case.case_no}']")
    assert link is not None
    r = _upload(client, package)
    assert r.status_code == 303
    assert "此前已导入" in soup(client.get(r.headers["Location"])).select_one(".flashes").get_text()


def test_a_refused_package_is_told_next_to_the_field(client, package):
    login_staff(client, "liaison")
    forged = _resign(package_message(package), signing.demo_peer_key("640100"), package)
    r = _upload(client, forged)
    assert r.status_code == 422
    assert "签名校验失败" in soup(r).select_one("#package-error").get_text()
    r = client.post("/staff/platform/import", data={}, content_type="multipart/form-data")
    assert r.status_code == 422 and soup(r).select_one("#package-error")


def test_liaison_exports_and_downloads_a_package(client):
    case = accept()
    ProxyCase.update(state="verifying").where(ProxyCase.id == case.id).execute()
    login_staff(client, "liaison")
    r = client.post("/staff/platform/export", data={"case_no": case.case_no})
    assert r.status_code == 303
    page = soup(client.get("/staff/platform/"))
    link = page.select_one("#platform-messages a[href$='.zip']")
    r = client.get(link["href"])
    assert r.status_code == 200 and r.mimetype == "application/zip"
    assert package_message(r.data)["case_ref"]["case_no"] == case.case_no
    assert "attachment;" in r.headers["Content-Disposition"]


@pytest.mark.parametrize(
    "case_no, state, message",
    [("KS-nope", None, "没有此办件"), (None, "accepted", "完成材料核实后")],
)
def test_export_refusals_on_the_page(client, case_no, state, message):
    if case_no is None:
        case_no = accept().case_no
    login_staff(client, "liaison")
    r = client.post("/staff/platform/export", data={"case_no": case_no})
    assert r.status_code == 422
    assert message in soup(r).select_one("#case_no-error").get_text()


def test_unknown_package_download_is_404(client):
    login_staff(client, "liaison")
    assert client.get("/staff/platform/packages/999999.zip").status_code == 404


def test_moving_an_outbound_case_to_transmitted_exports_its_package():
    """The board's move to 已传递 calls ``export_case`` (the contract between the two areas)."""
    from portal.services import cases

    case = accept()
    materials.upload(staff("clerk"), "staff:clerk", case, "id_card", "a.png", PNG_BYTES)
    ProxyCase.update(state="verifying").where(ProxyCase.id == case.id).execute()
    version = ProxyCase.get_by_id(case.id).version
    cases.move_case(staff("liaison"), case.id, "transmitted", version, today=TODAY, overrides={})
    sent = PlatformMessage.get(
        (PlatformMessage.case == case) & (PlatformMessage.direction == "out")
    )
    assert package_message(get_storage().get(sent.storage_key, sent.sha256))["case_ref"] == {
        "case_no": case.case_no
    }
    event = CaseEvent.get((CaseEvent.case == case) & (CaseEvent.to_state == "transmitted"))
    assert event.data["package"] == sent.storage_key
