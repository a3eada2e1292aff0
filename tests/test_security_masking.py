"""Issue 9, point 10: masking is done on the server, everywhere a role can look.

For every role the test crawls what the role can reach: its home page, every GET route the
access table (``tests/test_security_access.py``) allows it, pointed at the world's objects, and
every same-site link (``href``, ``hx-get``) found on those pages, each HTML page also as its
htmx fragment. It reads HTML and JSON as sent (attributes included), Excel exports cell by cell
(openpyxl) and PDFs as text (pdftotext). It fails when a full resident ID, bank card or mobile
number of anyone in the database appears, or any 18-character string that is a valid resident
ID at all.

The exceptions, where the full number is the point of the document:

* ``hall.certificate_pdf``: the holder's own deposit-usage certificate carries the holder's own
  full resident ID (lending centers match people by it) — that ID only, nothing else;
* ``officials.certificate_pdf``: the loan-settlement certificate an official hands to the
  borrower is the same kind of document — the borrower's full ID only;
* ``counter.document``: the forms the counter prints for the applicant's signature
  (申请表, 查询授权书 ...) carry the applicant's full ID, phone and card, as on paper;
* ``dev.sms_outbox``: the development SMS outbox (not registered in production) shows phones.
"""

from __future__ import annotations

import io
import re
from collections import Counter, deque
from urllib.parse import urljoin, urlsplit

import pytest
from bs4 import BeautifulSoup
from openpyxl import load_workbook
from werkzeug.exceptions import HTTPException

from portal.models import (
    CasePayout,
    Certificate,
    Depositor,
    Employer,
    EmployerOperator,
    Payout,
    ProxyCase,
    StaffUser,
)
from portal.rules.ids import is_valid_resident_id
from tests.conftest import pdf_text
from tests.security_helpers import ALLOW, ROLES, build_world, login
from tests.test_security_access import _requests, expectations

MAX_PAGES = 260  # per role: enough for every page kind, bounded
PER_ENDPOINT = 4  # distinct URLs of one endpoint (pagination, filters) worth reading
SKIP_ENDPOINTS = {"dev.sms_outbox", "static", "auth.logout"}
EXCEPTIONS = {"hall.certificate_pdf", "officials.certificate_pdf", "counter.document"}
CANDIDATE = re.compile(r"(?<![0-9A-Za-z])(\d{17}[\dXx]|\d{11,19})(?![0-9A-Za-z])")


def sensitive() -> dict[str, str]:
    """Every full identifier in the database → what it is (for the failure message)."""
    found: dict[str, str] = {}

    def add(value, label):
        value = "".join(str(value or "").split())
        if len(value) >= 11:
            found[value] = label

    for d in Depositor.select():
        add(d.resident_id, f"depositor {d.id} resident ID")
        add(d.phone, f"depositor {d.id} phone")
        add(d.bank_card, f"depositor {d.id} card")
    for o in EmployerOperator.select():
        add(o.resident_id, f"operator {o.id} resident ID")
        add(o.phone, f"operator {o.id} phone")
    for e in Employer.select():
        add(e.contact_phone, f"employer {e.id} contact phone")
    for s in StaffUser.select():
        add(s.phone, f"staff {s.username} phone")
    for c in ProxyCase.select():
        add(c.applicant_id_no, f"case {c.case_no} applicant ID")
        add(c.applicant_phone, f"case {c.case_no} applicant phone")
        for key, value in (c.application or {}).items():
            if isinstance(value, str) and CANDIDATE.fullmatch("".join(value.split())):
                add(value, f"case {c.case_no} application {key}")
    for p in CasePayout.select():
        add(p.spouse_id_no, f"case payout {p.id} spouse ID")
        add(p.bank_card, f"case payout {p.id} card")
        for owner in p.co_owners or []:
            add(owner.get("id_no"), f"case payout {p.id} co-owner ID")
    for p in Payout.select():
        add(p.bank_card, f"payout {p.id} card")
    return found


def text_of(response) -> str:
    kind = response.mimetype or ""
    data = response.get_data()
    if kind == "application/pdf":
        return pdf_text(data)
    if "spreadsheetml" in kind or data[:2] == b"PK" and kind.startswith("application/vnd"):
        book = load_workbook(io.BytesIO(data), read_only=True)
        cells = [
            str(cell)
            for sheet in book.worksheets
            for row in sheet.iter_rows(values_only=True)
            for cell in row
            if cell is not None
        ]
        book.close()
        return "\n".join(cells)
    if kind.startswith(("text/", "application/json")):
        return data.decode("utf-8", "replace")
    return ""


def leaks(text: str, known: dict[str, str], allowed: set[str]) -> list[str]:
    joined = re.sub(r"(?<=\d)[ \u00a0-](?=\d)", "", text)  # "6222 0212 ..." counts too
    out = []
    for candidate in set(CANDIDATE.findall(text)) | set(CANDIDATE.findall(joined)):
        value = candidate.upper()
        if value in allowed:
            continue
        if value in known:
            out.append(f"{known[value]}: {value}")
        elif len(value) == 18 and is_valid_resident_id(value):
            out.append(f"a resident ID not in the database: {value}")
    return out


def _links(html: str, base: str) -> list[str]:
    soup = BeautifulSoup(html, "html.parser")
    urls = []
    for el in soup.find_all(True):
        for attr in ("href", "hx-get"):
            href = el.get(attr)
            if not href or href.startswith(("#", "mailto:", "tel:", "javascript:", "data:")):
                continue
            parts = urlsplit(urljoin(base, href))
            if parts.netloc not in ("", "localhost"):
                continue
            urls.append(parts.path + (f"?{parts.query}" if parts.query else ""))
    return urls


def _endpoint(adapter, url: str) -> str | None:
    parts = urlsplit(url)
    try:
        endpoint, _args = adapter.match(parts.path, method="GET")
    except HTTPException:
        return None
    return endpoint


def _allowed_for(endpoint: str, world, response_url: str) -> set[str]:
    """The exceptions: what may appear in full in this document."""
    if endpoint not in EXCEPTIONS:
        return set()
    if endpoint == "hall.certificate_pdf":
        return {world.depositor.resident_id}
    if endpoint == "officials.certificate_pdf":
        certificate_id = int(re.search(r"/(\d+)\.pdf", response_url).group(1))
        cert = Certificate.get_by_id(certificate_id)
        return {cert.depositor.resident_id} if cert.depositor_id else set()
    case_no = response_url.split("/cases/")[1].split("/")[0]
    case = ProxyCase.get(ProxyCase.case_no == case_no)
    values = {case.applicant_id_no, case.applicant_phone}
    values |= {
        "".join(str(v).split())
        for v in (case.application or {}).values()
        if isinstance(v, str) and v.strip()
    }
    return {v.upper() for v in values if v}


@pytest.mark.parametrize("role", ROLES)
def test_no_full_identifier_on_any_page_a_role_can_reach(app, role):
    client = app.test_client()
    with app.app_context():
        world = build_world()
    login(client, role, world)
    known = sensitive()
    adapter = app.url_map.bind("localhost")
    table = expectations()
    start = ["/", "/me/", "/employer/", "/staff/", "/verify", "/track", "/guide/"]
    start += [
        url
        for key, method, url in _requests(app, world)
        if method == "GET" and table[key][role] == ALLOW
    ]
    queue = deque(start)
    seen: set[str] = set()
    per_endpoint: Counter = Counter()
    problems: list[str] = []
    read = 0
    while queue and read < MAX_PAGES:
        url = queue.popleft()
        if url in seen:
            continue
        seen.add(url)
        endpoint = _endpoint(adapter, url)
        if endpoint is None or endpoint in SKIP_ENDPOINTS:
            continue
        if per_endpoint[endpoint] >= PER_ENDPOINT:
            continue
        per_endpoint[endpoint] += 1
        read += 1
        response = client.get(url)
        if response.status_code != 200:
            response.close()
            continue
        allowed = _allowed_for(endpoint, world, url)
        body = text_of(response)
        problems += [f"{url}: {leak}" for leak in leaks(body, known, allowed)]
        if response.mimetype == "text/html":
            queue.extend(_links(body, url))
            fragment = client.get(url, headers={"HX-Request": "true"})
            if fragment.status_code == 200:
                problems += [
                    f"{url} (htmx): {leak}" for leak in leaks(text_of(fragment), known, allowed)
                ]
            fragment.close()
        response.close()
    assert read > 3, f"{role} reached almost nothing: {sorted(seen)[:10]}"
    assert not problems, f"{role} sees full identifiers:\n  " + "\n  ".join(sorted(set(problems)))


def test_the_exceptions_really_carry_the_full_id_and_nothing_more(app):
    """The holder's own certificate has the holder's full ID (and no phone or card)."""
    client = app.test_client()
    with app.app_context():
        world = build_world()
    login(client, "depositor", world)
    r = client.get(f"/me/certificates/{world.usage_certificate.id}.pdf")
    text = pdf_text(r.get_data())
    person = world.depositor
    assert person.resident_id in text
    assert person.phone not in text and person.bank_card not in text.replace(" ", "")
    # the public verification page of the same certificate shows the ID masked
    r = client.get(f"/verify/{world.usage_certificate.verify_code}")
    html = r.get_data(as_text=True)
    assert person.resident_id not in html
    assert person.resident_id[:4] + "**********" + person.resident_id[-4:] in html


def test_the_crawler_would_notice_a_leak():
    """The scanner itself: a full card, a spaced card, a valid unknown ID are all caught."""
    known = {"6222021234567890123": "card", "13800138000": "phone"}
    assert leaks("卡号 6222021234567890123", known, set())
    assert leaks("卡号 6222 0212 3456 7890 123", known, set())
    assert leaks("<input value=13800138000>", known, set())
    assert leaks("11010519491231002X", {}, set())  # the GB 11643 example ID
    assert not leaks("622202*********0123 138****8000 1101**********002X", known, set())
    assert not leaks("6222021234567890123", known, {"6222021234567890123"})
