"""Material uploads: checked by content, size-limited, stored with SHA-256, staff only."""

from __future__ import annotations

import hashlib
import io

import pytest
from werkzeug.test import EnvironBuilder

from portal.models import Attachment, AuditLog
from portal.services import materials
from portal.storage import get_storage
from tests.conftest import login_depositor, login_staff
from tests.counter_helpers import (
    EXE_BYTES,
    JPEG_BYTES,
    PDF_BYTES,
    PNG_BYTES,
    accept,
    soup,
    staff,
)


@pytest.mark.parametrize(
    "data, expected",
    [
        (PDF_BYTES, "application/pdf"),
        (PNG_BYTES, "image/png"),
        (JPEG_BYTES, "image/jpeg"),
        (EXE_BYTES, None),
        (b"GIF89a....", None),
        (b"<html><script>alert(1)</script>", None),
    ],
)
def test_sniff_by_content(data, expected):
    assert materials.sniff(data) == expected


def test_check_refuses_empty_oversized_and_foreign_files():
    with pytest.raises(materials.UploadRefused, match="为空"):
        materials.check(b"")
    with pytest.raises(materials.UploadRefused, match="5 MB"):
        materials.check(b"%PDF-" + b"0" * materials.MAX_BYTES)
    with pytest.raises(materials.UploadRefused, match="PDF、JPEG 或 PNG"):
        materials.check(EXE_BYTES)
    assert materials.check(b"%PDF-" + b"0" * (materials.MAX_BYTES - 5)) == "application/pdf"


@pytest.mark.parametrize(
    "name, content_type, expected",
    [
        ("扫描件.pdf", "application/pdf", "扫描件.pdf"),
        ("../../etc/passwd", "application/pdf", "passwd.pdf"),
        ("C:\\Users\\x\\照片.JPG", "image/jpeg", "照片.jpg"),
        ("photo.png.exe", "image/png", "photo.png.png"),
        ("", "image/png", "材料.png"),
        ('a<b>"c|.pdf', "application/pdf", "a_b_c_.pdf"),
    ],
)
def test_clean_filename(name, content_type, expected):
    assert materials.clean_filename(name, content_type) == expected


def test_upload_stores_the_file_with_its_hash_and_audits():
    case = accept()
    clerk = staff("clerk")
    attachment = materials.upload(
        clerk, "staff:clerk", case, "purchase_contract", "合同.pdf", PDF_BYTES
    )
    assert attachment.sha256 == hashlib.sha256(PDF_BYTES).hexdigest()
    assert attachment.content_type == "application/pdf" and attachment.size == len(PDF_BYTES)
    assert get_storage().get(attachment.storage_key, attachment.sha256) == PDF_BYTES
    assert attachment.uploaded_by_id == clerk.id and attachment.kind == "material"
    row = AuditLog.get(
        (AuditLog.action == "case.material_upload") & (AuditLog.target_id == str(case.id))
    )
    assert row.detail["sha256"] == attachment.sha256
    listed = materials.list_for(case)
    assert [(m.material_name, m.type_label) for m in listed] == [("购房合同或不动产权证书", "PDF")]


def test_upload_refuses_a_material_not_on_the_list():
    case = accept()
    with pytest.raises(materials.UploadRefused, match="材料名称"):
        materials.upload(staff("clerk"), "staff:clerk", case, "forged", "a.pdf", PDF_BYTES)


def _post(client, case, data: bytes, filename: str, material="id_card", content_type=None):
    return client.post(
        f"/staff/counter/cases/{case.case_no}/materials",
        data={"material": material, "file": (io.BytesIO(data), filename, content_type)},
        content_type="multipart/form-data",
    )


def test_upload_through_the_case_page(client):
    case = accept()
    login_staff(client, "clerk")
    r = _post(client, case, PNG_BYTES, "身份证正面.png", content_type="image/png")
    assert r.status_code == 303 and r.headers["Location"].endswith("#materials")
    page = soup(client.get(r.headers["Location"]))
    link = page.select_one("#materials table a")
    assert link.get_text() == "身份证正面.png"
    r = client.get(link["href"])
    assert r.status_code == 200 and r.data == PNG_BYTES and r.mimetype == "image/png"
    assert r.headers["Content-Disposition"].startswith("attachment;")
    assert r.headers["X-Content-Type-Options"] == "nosniff"


def test_type_comes_from_the_content_not_the_name_or_browser(client):
    case = accept()
    login_staff(client, "clerk")
    # issue 9: the extension must agree with the content (a JPEG named .pdf is refused)
    r = _post(client, case, JPEG_BYTES, "scan.pdf", content_type="application/pdf")
    assert r.status_code == 422
    r = _post(client, case, JPEG_BYTES, "scan.jpeg", content_type="application/pdf")
    assert r.status_code == 303
    attachment = Attachment.get(Attachment.case == case)
    assert attachment.content_type == "image/jpeg" and attachment.filename == "scan.jpg"


@pytest.mark.parametrize(
    "data, filename, message",
    [
        (EXE_BYTES, "合同.pdf", "PDF、JPEG 或 PNG"),  # an .exe renamed .pdf
        (b"", "empty.pdf", "为空"),
    ],
)
def test_bad_uploads_are_told_next_to_the_field(client, data, filename, message):
    case = accept()
    login_staff(client, "clerk")
    r = _post(client, case, data, filename, content_type="application/pdf")
    assert r.status_code == 422
    assert message in soup(r).select_one("#file-error").get_text()
    assert Attachment.select().where(Attachment.case == case).count() == 0


def test_missing_file_is_told(client):
    case = accept()
    login_staff(client, "clerk")
    r = client.post(
        f"/staff/counter/cases/{case.case_no}/materials",
        data={"material": "id_card"},
        content_type="multipart/form-data",
    )
    assert r.status_code == 422
    assert "请选择要上传的文件" in soup(r).select_one("#file-error").get_text()


def test_oversized_upload_is_told_next_to_the_field(client):
    case = accept()
    login_staff(client, "clerk")
    big = b"%PDF-" + b"0" * (materials.MAX_BYTES + 128 * 1024)
    builder = EnvironBuilder(
        path=f"/staff/counter/cases/{case.case_no}/materials",
        method="POST",
        data={"material": "id_card", "file": (io.BytesIO(big), "big.pdf")},
        content_type="multipart/form-data",
    )
    environ = builder.get_environ()
    try:
        r = client.open(environ)
    finally:
        environ["wsgi.input"].close()
        builder.close()
    assert r.status_code == 413
    assert "5 MB" in soup(r).select_one("#file-error").get_text()
    assert Attachment.select().where(Attachment.case == case).count() == 0


@pytest.mark.parametrize("username", ["auditor"])
def test_readers_cannot_upload(client, username):
    case = accept()
    login_staff(client, username)
    assert _post(client, case, PDF_BYTES, "a.pdf").status_code == 403


def test_liaison_may_upload_scans(client):
    case = accept()
    login_staff(client, "liaison")
    assert _post(client, case, PDF_BYTES, "a.pdf").status_code == 303


def test_materials_are_staff_only(client, depositor):
    case = accept()
    attachment = materials.upload(
        staff("clerk"), "staff:clerk", case, "id_card", "a.pdf", PDF_BYTES
    )
    url = f"/staff/counter/cases/{case.case_no}/materials/{attachment.id}"
    r = client.get(url)
    assert r.status_code == 302 and "/staff/login" in r.headers["Location"]
    login_depositor(client, depositor)
    assert client.get(url).status_code == 403
    client.post("/logout")
    login_staff(client, "handler2")  # another department
    assert client.get(url).status_code == 404
    client.post("/logout")
    login_staff(client, "auditor")
    assert client.get(url).status_code == 200


def test_an_attachment_of_another_case_is_404(client):
    one, two = accept(), accept()
    attachment = materials.upload(staff("clerk"), "staff:clerk", one, "id_card", "a.pdf", PDF_BYTES)
    login_staff(client, "clerk")
    assert (
        client.get(f"/staff/counter/cases/{two.case_no}/materials/{attachment.id}").status_code
        == 404
    )
