"""Issue 9, points 8 and 9: hostile input in every form, and uploads.

**Point 8.** Every form the test can find on the public and staff pages (login, activation,
password reset, tracking and verification, the depositor's and the employer's changes, the
counter's acceptance form, comments and mailing on the board, the processing panel, the
officials' forms, the admin's forms, and the GET filters) is submitted with, in turn, each text
field set to:

* full-width digits, Arabic-Indic digits — refused (``portal.forms.plain_text``): no identifier
  is ever validated on anything but ``portal.rules.ids`` with ASCII digits;
* control characters (NUL, ESC, the bidi override U+202E) — refused;
* 5 000 characters — refused (each field's ``Length``, or the default ceiling);
* HTML with a script — accepted or refused, but never echoed raw into a page.

"Refused" means the field carries its error (``aria-invalid="true"`` or ``#<id>-error``) and the
request changes nothing (no 303 to a success page); never a 500. The other fields keep the
values the page rendered, so a valid baseline reaches the field under test.

**Point 9.** Uploads: PDF, JPEG or PNG only, recognised by content and agreeing with the
file's extension, at most 5 MB (413 above, also when Flask's ``MAX_CONTENT_LENGTH`` stops the
body), stored under the content's SHA-256 (never the sender's name) outside ``static/``,
downloaded as an attachment with ``nosniff`` by staff who may see the case only.
"""

from __future__ import annotations

import io
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest
from bs4 import BeautifulSoup
from werkzeug.test import EnvironBuilder

from portal import storage
from portal.models import Attachment, CaseComment, Depositor, Employer, StaffUser
from portal.services import materials
from tests.conftest import TODAY, login_depositor, login_operator
from tests.security_helpers import PDF, PNG, build_world, login, login_staff_user

SCRIPT = '<script>alert("x")</script><img src=x onerror=alert(1)>'
HOSTILE = {
    "fullwidth": "１５２９２１１９８５０１０４１２７６",
    "arabic": "١٣٨٠٠١٣٨٠٠٠",
    "control": "正常文字\x00\x1b[31m注入",
    "bidi": "正常文字\u202e注入",
    "overlong": "长" * 5000,
    "html": SCRIPT,
}
REFUSED_KINDS = ("fullwidth", "arabic", "control", "bidi", "overlong")
TEXT_TYPES = ("text", "tel", "email", "search", "url", "number", None, "")

# (role, page path) — the pages whose forms are attacked. ``{...}`` names a world object.
PAGES = [
    ("anonymous", "/login"),
    ("anonymous", "/activate"),
    ("anonymous", "/reset"),
    ("anonymous", "/employer/login"),
    ("anonymous", "/employer/activate"),
    ("anonymous", "/employer/track"),
    ("anonymous", "/track"),
    ("anonymous", "/staff/login"),
    ("anonymous", "/verify"),
    ("depositor", "/me/changes"),
    ("depositor", "/me/certificates"),
    ("depositor", "/me/loans/quota"),
    ("operator", "/employer/changes"),
    ("operator", "/employer/operators"),
    ("operator", "/employer/roster/{employer_account}/base"),
    ("operator", "/employer/certificates"),
    ("operator", "/employer/roster"),
    ("clerk", "/staff/counter/new?item=purchase_withdrawal&center=640100"),
    ("clerk", "/staff/counter/new?item=settlement_certificate&center=640100"),
    ("clerk", "/staff/ecode/"),
    ("clerk", "/staff/officials/counter"),
    ("clerk", "/staff/board/outbound"),
    ("handler", "/staff/board/case/{inbound_case}"),
    ("handler", "/staff/processing/case/{inbound_case}"),
    ("liaison", "/staff/board/case/{outbound_case}"),
    ("official", "/staff/officials/requests/{cert_request}"),
    ("official", "/staff/officials/certificates/{settlement_certificate}"),
    ("admin", "/staff/admin/staff"),
    ("admin", "/staff/admin/calendar"),
    ("admin", "/staff/admin/settings"),
    ("admin", "/staff/admin/centers/110000"),
    ("admin", "/staff/board/limits"),
    ("auditor", "/staff/audit/"),
]


def _path(template: str, world) -> str:
    ids = {
        "loan": world.loan.id,
        "employer_account": world.employer_account.id,
        "inbound_case": world.inbound_case.id,
        "outbound_case": world.outbound_case.id,
        "cert_request": world.cert_request.id,
        "settlement_certificate": world.settlement_certificate.id,
    }
    return template.format(**ids)


def _forms(html: str, page: str):
    """(method, action, baseline values, text fields) of every form on the page."""
    soup = BeautifulSoup(html, "html.parser")
    found = []
    for form in soup.find_all("form"):
        method = (form.get("method") or "get").upper()
        action = form.get("action") or page
        htmx = bool(form.get("hx-post"))  # the page's script posts it with HX-Request
        if htmx:
            method, action = "POST", form["hx-post"]
        if action.startswith(("http:", "https:")) or "/logout" in action:
            continue
        values: dict[str, list[str]] = {}
        targets = []
        for el in form.find_all(["input", "textarea", "select"]):
            name = el.get("name")
            if not name or el.has_attr("disabled"):
                continue
            kind = el.get("type")
            if el.name == "select":
                chosen = el.find("option", selected=True) or next(
                    (o for o in el.find_all("option") if o.get("value")), None
                )
                values.setdefault(name, []).append(chosen.get("value", "") if chosen else "")
            elif el.name == "textarea":
                values.setdefault(name, []).append(el.get_text())
                targets.append(name)
            elif kind in ("checkbox", "radio"):
                if el.has_attr("checked"):
                    values.setdefault(name, []).append(el.get("value", "y"))
                elif kind == "radio" and name not in values:
                    values[name] = [el.get("value", "")]
            elif kind in ("submit", "button", "file", "image", "reset"):
                continue
            else:
                values.setdefault(name, []).append(el.get("value", ""))
                if kind in TEXT_TYPES and name != "csrf_token":
                    targets.append(name)
        if targets:
            found.append((method, action, htmx, values, list(dict.fromkeys(targets))))
    return found


def _marked_invalid(html: str, name: str) -> bool:
    soup = BeautifulSoup(html, "html.parser")
    for el in soup.find_all(attrs={"name": name}):
        if el.get("aria-invalid") == "true":
            return True
        if el.get("id") and soup.find(id=f"{el['id']}-error"):
            return True
    return False


def _send(client, method, action, htmx, values):
    headers = {"HX-Request": "true"} if htmx else {}
    if method == "GET":
        path = urlsplit(action).path
        return client.get(f"{path}?{urlencode(values, doseq=True)}", headers=headers)
    return client.post(action, data=values, headers=headers)


@pytest.mark.parametrize(("role", "page"), PAGES, ids=[f"{r}:{p}" for r, p in PAGES])
def test_hostile_input_in_every_field_is_refused_or_escaped(app, role, page):
    client = app.test_client()
    with app.app_context():
        world = build_world()
    login(client, role, world)
    url = _path(page, world)
    r = client.get(url)
    assert r.status_code in (200, 422), (url, r.status_code)  # 422: a GET form's first look
    forms = _forms(r.get_data(as_text=True), url)
    assert forms, f"no form with a text field on {url}"
    problems = []
    for method, action, htmx, baseline, targets in forms:
        for name in targets:
            for kind, payload in HOSTILE.items():
                values = {**baseline, name: [payload]}
                got = _send(client, method, action, htmx, values)
                body = got.get_data(as_text=True)
                where = f"{method} {action} [{name}] {kind}"
                if got.status_code >= 500:
                    problems.append(f"{where}: HTTP {got.status_code}")
                    continue
                if got.status_code in (302, 303) and kind == "html":
                    follow = client.get(got.headers["Location"])
                    body = follow.get_data(as_text=True)
                if SCRIPT in body or "<script>alert" in body:
                    problems.append(f"{where}: the HTML came back unescaped")
                if method == "POST" and kind in REFUSED_KINDS:
                    if got.status_code in (302, 303):
                        problems.append(f"{where}: accepted ({got.status_code})")
                    elif got.status_code not in (400, 429) and not _marked_invalid(body, name):
                        problems.append(f"{where}: no error next to the field")
    assert not problems, "\n".join(problems)


# --- refused, with the reason next to the field, and nothing stored ----------------------


def test_a_full_width_resident_id_is_refused_at_login(client, depositor):
    wide = depositor.resident_id.translate(str.maketrans("0123456789X", "０１２３４５６７８９Ｘ"))
    r = client.post("/login", data={"resident_id": wide, "password": "Demo1234"})
    assert r.status_code == 422
    assert "半角数字" in r.get_data(as_text=True)


def test_arabic_indic_digits_in_a_new_phone_number_are_refused(client, depositor):
    login_depositor(client, depositor)
    before = Depositor.get_by_id(depositor.id).phone
    r = client.post("/me/changes/phone", data={"phone-phone": "138٠٠١٣٨٠٠٠"})
    assert r.status_code == 422
    assert "半角数字" in r.get_data(as_text=True)
    assert Depositor.get_by_id(depositor.id).phone == before


def test_arabic_indic_digits_in_employer_ratios_are_refused(client, operator):
    login_operator(client, operator)
    before = Employer.get_by_id(operator.employer_id).employer_ratio
    r = client.post(
        "/employer/changes/ratios",
        data={"ratio-employer_ratio": "١٠", "ratio-employee_ratio": "١٠", "ratio-code": "123456"},
    )
    assert r.status_code == 422
    assert Employer.get_by_id(operator.employer_id).employer_ratio == before


def test_a_comment_with_control_characters_is_refused_and_not_stored(app, client):
    with app.app_context():
        world = build_world()
    login_staff_user(client, "handler")
    case = world.inbound_case
    r = client.post(f"/staff/board/case/{case.id}/comments", data={"body": "请补\x00材料"})
    assert r.status_code in (303, 422)
    assert not CaseComment.select().where(CaseComment.case == case.id).exists()


def test_html_in_a_comment_is_stored_as_text_and_shown_escaped(app, client):
    with app.app_context():
        world = build_world()
    login_staff_user(client, "handler")
    case = world.inbound_case
    r = client.post(f"/staff/board/case/{case.id}/comments", data={"body": SCRIPT})
    assert r.status_code == 303
    assert CaseComment.get(CaseComment.case == case.id).body == SCRIPT  # text, as typed
    html = client.get(f"/staff/board/case/{case.id}").get_data(as_text=True)
    assert SCRIPT not in html
    assert "&lt;script&gt;alert(" in html


def test_html_in_stored_names_and_addresses_is_escaped_on_every_page_showing_them(app):
    """Values that reached the database by another channel (a platform package, an import)
    are escaped wherever the depositor, the operator or staff see them."""
    client = app.test_client()
    with app.app_context():
        world = build_world()
    person = world.depositor
    Depositor.update(address=SCRIPT).where(Depositor.id == person.id).execute()
    Employer.update(contact_name=SCRIPT[:40], address=SCRIPT).where(
        Employer.id == world.operator.employer_id
    ).execute()
    StaffUser.update(name=SCRIPT[:40]).where(StaffUser.username == "clerk").execute()
    login_depositor(client, person)
    for url in ("/me/", "/me/changes"):
        html = client.get(url).get_data(as_text=True)
        assert "<script>alert" not in html and "<img src=x" not in html, url
    client = app.test_client()
    login_operator(client, world.operator)
    for url in ("/employer/", "/employer/changes"):
        html = client.get(url).get_data(as_text=True)
        assert "<script>alert" not in html and "<img src=x" not in html, url
    client = app.test_client()
    login_staff_user(client, "admin")
    html = client.get("/staff/admin/staff").get_data(as_text=True)
    assert "<script>alert" not in html


# --- point 9: uploads --------------------------------------------------------------------

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 64
EXE = b"MZ\x90\x00" + b"\x00" * 64
HTML_FILE = b"<html><script>alert(1)</script></html>"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'


class Sent:
    """What came back from an upload; the response is closed at once, so the request's
    spooled temporary file is closed too."""

    def __init__(self, response):
        self.status_code = response.status_code
        self.text = response.get_data(as_text=True)
        response.close()

    def get_data(self, as_text=False):
        return self.text


def _upload(client, case, data: bytes, filename: str) -> Sent:
    """POST one file; the multipart body (spooled to a temporary file when large) is closed."""
    builder = EnvironBuilder(
        path=f"/staff/counter/cases/{case.case_no}/materials",
        method="POST",
        data={"material": "", "file": (io.BytesIO(data), filename)},
        content_type="multipart/form-data",
    )
    environ = builder.get_environ()
    try:
        return Sent(client.open(environ))
    finally:
        environ["wsgi.input"].close()
        builder.close()


def _attachments(case) -> int:
    return Attachment.select().where(Attachment.case == case.id).count()


def test_the_limits_agree_at_five_megabytes(app):
    assert materials.MAX_BYTES == 5 * 1024 * 1024
    # the request may carry one file of MAX_BYTES plus the form's other fields
    assert materials.MAX_BYTES < app.config["MAX_CONTENT_LENGTH"] <= materials.MAX_BYTES + 65536
    nginx = (Path(__file__).resolve().parent.parent / "deploy/nginx.conf.example").read_text()
    assert "client_max_body_size 6m;" in nginx


@pytest.mark.parametrize(
    ("data", "filename", "stored_as"),
    [
        (PDF, "申请表.pdf", "application/pdf"),
        (PNG, "scan.png", "image/png"),
        (JPEG, "photo.jpg", "image/jpeg"),
        (JPEG, "photo.JPEG", "image/jpeg"),
    ],
)
def test_pdf_jpeg_and_png_are_accepted(app, client, data, filename, stored_as):
    with app.app_context():
        world = build_world()
    login_staff_user(client, "clerk")
    r = _upload(client, world.outbound_case, data, filename)
    assert r.status_code == 303, r.get_data(as_text=True)
    row = (
        Attachment.select()
        .where(Attachment.case == world.outbound_case.id)
        .order_by(Attachment.id.desc())
        .first()
    )
    assert row.content_type == stored_as


@pytest.mark.parametrize(
    ("data", "filename"),
    [
        (EXE, "scan.pdf"),  # a program named as a PDF
        (HTML_FILE, "scan.png"),  # HTML named as a PNG
        (SVG, "scan.svg"),  # SVG can carry script: not accepted
        (HTML_FILE, "page.html"),
        (PDF, "scan.png"),  # real PDF, wrong extension
        (PNG, "scan.pdf"),  # real PNG, wrong extension
        (JPEG, "scan.exe"),  # real JPEG, executable extension
        (PDF, "scan.pdf.exe"),
        (b"", "empty.pdf"),
    ],
)
def test_other_types_and_mismatched_extensions_are_refused(app, client, data, filename):
    with app.app_context():
        world = build_world()
    case = world.outbound_case
    before = _attachments(case)
    login_staff_user(client, "clerk")
    r = _upload(client, case, data, filename)
    assert r.status_code == 422, r.status_code
    assert 'aria-invalid="true"' in r.get_data(as_text=True)
    assert _attachments(case) == before


def test_over_five_megabytes_is_413(app, client):
    with app.app_context():
        world = build_world()
    case = world.outbound_case
    before = _attachments(case)
    login_staff_user(client, "clerk")
    just_over = PDF + b"0" * (materials.MAX_BYTES + 1 - len(PDF))
    r = _upload(client, case, just_over, "big.pdf")
    assert r.status_code == 413
    assert "5 MB" in r.get_data(as_text=True)
    far_over = PDF + b"0" * (8 * 1024 * 1024)  # stopped by MAX_CONTENT_LENGTH
    r = _upload(client, case, far_over, "huge.pdf")
    assert r.status_code == 413
    assert _attachments(case) == before
    exactly = PDF + b"0" * (materials.MAX_BYTES - len(PDF))
    assert _upload(client, case, exactly, "max.pdf").status_code == 303


def test_stored_under_the_content_hash_outside_static(app, client):
    with app.app_context():
        world = build_world()
    login_staff_user(client, "clerk")
    r = _upload(client, world.outbound_case, PNG + b"unique-1", "../../static/evil.png")
    assert r.status_code == 303
    row = Attachment.select().order_by(Attachment.id.desc()).first()
    assert row.filename == "evil.png"  # the display name loses its path
    assert "evil" not in row.storage_key and row.sha256 in row.storage_key
    root = storage.get_storage().root.resolve()
    static = (Path(app.static_folder)).resolve()
    path = (root / row.storage_key).resolve()
    assert path.exists() and static not in path.parents
    assert not (static / "evil.png").exists()


def test_downloads_are_attachments_with_nosniff_for_staff_who_see_the_case(app):
    with app.app_context():
        world = build_world()
    url = f"/staff/counter/cases/{world.outbound_case.case_no}/materials/{world.material.id}"
    for role, status in (
        ("clerk", 200),
        ("liaison", 200),
        ("auditor", 200),
        ("other_handler", 404),
        ("admin", 403),
        ("depositor", 403),
        ("anonymous", 302),
    ):
        client = app.test_client()
        login(client, role, world)
        r = client.get(url)
        assert r.status_code == status, (role, r.status_code)
        if status == 200:
            assert r.headers["Content-Disposition"].startswith("attachment")
            assert r.headers["X-Content-Type-Options"] == "nosniff"
            assert r.headers["Content-Type"].split(";")[0] == "image/png"
            assert "no-store" in r.headers["Cache-Control"]
    result = f"/staff/processing/case/{world.inbound_case.id}/result/{world.result.id}"
    client = app.test_client()
    login(client, "handler", world)
    r = client.get(result)
    assert r.status_code == 200
    assert r.headers["Content-Disposition"].startswith("attachment")
    assert r.headers["X-Content-Type-Options"] == "nosniff"


def test_the_holder_downloads_their_own_documents_as_attachments(app):
    with app.app_context():
        world = build_world()
    client = app.test_client()
    login(client, "depositor", world)
    r = client.get(f"/me/certificates/{world.usage_certificate.id}.pdf")
    assert r.status_code == 200
    assert r.headers["Content-Disposition"].startswith("attachment")
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert TODAY  # the certificate is the world's, issued today
