"""Shared helpers for the counter, ledger, PDF and platform-file tests."""

from __future__ import annotations

import io
import json
import zipfile

from bs4 import BeautifulSoup

from portal.models import StaffUser
from portal.rules.ids import resident_id_check_char
from portal.services import counter
from tests.conftest import TODAY

PDF_BYTES = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG_BYTES = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
JPEG_BYTES = b"\xff\xd8\xff\xe0" + b"\x00" * 64
EXE_BYTES = b"MZ\x90\x00" + b"\x00" * 64


def make_id(first17: str) -> str:
    return first17 + resident_id_check_char(first17)


APPLICANT_ID = make_id("11010519850312123")  # Beijing, born 1985-03-12, male
OTHER_ID = make_id("64010419900101224")


def soup(response) -> BeautifulSoup:
    return BeautifulSoup(response.get_data(as_text=True), "html.parser")


def staff(username: str) -> StaffUser:
    return StaffUser.get(StaffUser.username == username)


def purchase_form(**overrides) -> dict:
    """A complete, valid counter form for home-purchase withdrawal at the Beijing center."""
    data = {
        "item": "purchase_withdrawal",
        "center": "110000",
        "applicant_name": "张三丰",
        "resident_id": APPLICANT_ID,
        "phone": "13912345678",
        "app_contract_no": "HT2026-0001",
        "app_purchase_date": "2026-10-08",
        "app_price": "680000.00",
        "app_property_address": "阿拉善左旗巴彦浩特镇王府街 1 号",
        "app_bank_name": "中国工商银行",
        "app_bank_card": "6222020000000000000",
        "materials": [
            "id_card",
            "application_form",
            "purchase_contract",
            "payment_invoice",
            "marriage_proof",
            "bank_card",
        ],
    }
    data.update(overrides)
    return data


def application(**overrides) -> counter.Application:
    """The service-level equivalent of :func:`purchase_form`."""
    values = {
        "item": "purchase_withdrawal",
        "center": "110000",
        "applicant_name": "张三丰",
        "applicant_id_no": APPLICANT_ID,
        "applicant_phone": "13912345678",
        "fields": {
            "contract_no": "HT2026-0001",
            "purchase_date": "2026-10-08",
            "price": "680000.00",
            "property_address": "阿拉善左旗巴彦浩特镇王府街 1 号",
            "bank_name": "中国工商银行",
            "bank_card": "6222020000000000000",
        },
        "presented": {
            "id_card",
            "application_form",
            "purchase_contract",
            "payment_invoice",
            "marriage_proof",
            "bank_card",
        },
    }
    values.update(overrides)
    return counter.Application(**values)


def accept(username: str = "clerk", **overrides):
    user = staff(username)
    return counter.accept(user, f"staff:{username}", application(**overrides), TODAY, {})


def rezip(data: bytes, replace: dict[str, bytes] | None = None, add=None) -> bytes:
    """A copy of a package zip with some members replaced (or added)."""
    replace = replace or {}
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            dst.writestr(info.filename, replace.get(info.filename, src.read(info)))
        for name, content in (add or {}).items():
            dst.writestr(name, content)
    return out.getvalue()


def package_message(data: bytes) -> dict:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return json.loads(zf.read("message.json"))


def package_names(data: bytes) -> list[str]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return zf.namelist()
