"""The counter's printable PDFs, checked by their text."""

from __future__ import annotations

import re

import pytest

from portal.models import ProxyCase
from portal.services import forms_pdf
from tests.conftest import login_staff, pdf_text
from tests.counter_helpers import APPLICANT_ID, accept

CENTER = "阿拉善盟住房公积金管理中心"
TRACK = "http://portal.example/track"


def _pages(data: bytes) -> int:
    return len(re.findall(rb"/Type\s*/Page[^s]", data))


def test_application_form_carries_the_application():
    case = accept()
    text = pdf_text(forms_pdf.application_form(case, CENTER))
    assert "“跨省通办”业务办理申请表" in text
    for expected in (
        case.case_no,
        "张三丰",
        APPLICANT_ID,  # printed for signature: the full ID
        "13912345678",
        "购房提取住房公积金",
        "北京住房公积金管理中心",
        "HT2026-0001",
        "680000.00",
        "阿拉善左旗管理部",
        "申请人（签字）",
        "6222020000000000000",  # the paying center needs the full card number
    ):
        assert expected in text, expected


def test_query_authorization_is_two_copies_on_two_pages():
    case = accept()
    data = forms_pdf.query_authorization(case, CENTER)
    text = pdf_text(data)
    assert _pages(data) == 2
    assert text.count("查询授权书") >= 2
    assert "一式两份" in text and "第一联" in text and "第二联" in text
    assert text.count(APPLICANT_ID) >= 2 and "授权人（签字）" in text
    assert "北京住房公积金管理中心" in text


def test_purchase_verification_form_lists_every_material():
    case = accept(presented={"id_card", "application_form", "purchase_contract"})
    text = pdf_text(forms_pdf.purchase_verification(case, CENTER))
    assert "购房提取材料核实情况表" in text and "HT2026-0001" in text
    assert "购房发票或首付款证明" in text and "未提供" in text
    assert "核实人（签字）" in text


def test_verification_form_only_for_purchase_withdrawal():
    case = accept(item="settlement_certificate", fields={"loan_contract_no": "JK1"})
    with pytest.raises(forms_pdf.NotAvailable):
        forms_pdf.purchase_verification(case, CENTER)
    with pytest.raises(forms_pdf.NotAvailable):
        forms_pdf.render("verification", case, CENTER, TRACK)


def test_one_time_notice_lists_all_missing_materials_at_once():
    case = accept(presented={"id_card", "application_form"})
    text = pdf_text(forms_pdf.one_time_notice(case, CENTER))
    assert "一次性告知书" in text
    for name in case.missing_materials:
        assert name in text
    assert "补正期间不计入办理时限" in text
    assert APPLICANT_ID not in text and "1101**********1234" in text
    assert "0483-12329" in text  # the department's phone


def test_no_notice_without_missing_materials():
    case = accept()
    with pytest.raises(forms_pdf.NotAvailable):
        forms_pdf.one_time_notice(case, CENTER)


def test_receipt_carries_the_tracking_number_and_masked_ids():
    case = accept()
    text = pdf_text(forms_pdf.receipt(case, CENTER, TRACK))
    assert "“跨省通办”业务受理回执" in text
    assert case.receipt_no in text and case.case_no in text
    assert TRACK in text and "12329" in text
    assert APPLICANT_ID not in text and "1101**********1234" in text
    assert "139****5678" in text and "13912345678" not in text
    assert "7个工作日内核实" in text and f"{case.deadline:%Y年%m月%d日}" in text


def test_receipt_of_a_case_waiting_for_materials_says_so():
    case = accept(presented={"id_card"})
    text = pdf_text(forms_pdf.receipt(case, CENTER, TRACK))
    assert "待补正" in text and "不计时" in text


@pytest.mark.parametrize(
    "kind, title",
    [
        ("application", "“跨省通办”业务办理申请表"),
        ("authorization", "查询授权书"),
        ("verification", "购房提取材料核实情况表"),
        ("notice", "一次性告知书"),
        ("receipt", "“跨省通办”业务受理回执"),
    ],
)
def test_documents_download_from_the_case_page(client, kind, title):
    case = accept(presented={"id_card"})
    login_staff(client, "clerk")
    r = client.get(f"/staff/counter/cases/{case.case_no}/documents/{kind}.pdf")
    assert r.status_code == 200 and r.mimetype == "application/pdf"
    disposition = r.headers["Content-Disposition"]
    assert disposition.startswith("attachment;") and "filename*=UTF-8''" in disposition
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert title in pdf_text(r.data)


def test_receipt_link_points_at_the_tracking_page(client):
    case = accept()
    login_staff(client, "clerk")
    r = client.get(f"/staff/counter/cases/{case.case_no}/documents/receipt.pdf")
    assert "http://localhost/track" in pdf_text(r.data)


def test_documents_that_do_not_apply_are_404(client):
    case = accept()
    login_staff(client, "clerk")
    base = f"/staff/counter/cases/{case.case_no}/documents"
    assert client.get(f"{base}/notice.pdf").status_code == 404
    assert client.get(f"{base}/nonsense.pdf").status_code == 404
    other = accept(item="settlement_certificate", fields={"loan_contract_no": "JK1"})
    assert (
        client.get(f"/staff/counter/cases/{other.case_no}/documents/verification.pdf").status_code
        == 404
    )


def test_documents_of_another_departments_case_are_404(client):
    case = accept()
    login_staff(client, "handler2")
    r = client.get(f"/staff/counter/cases/{case.case_no}/documents/receipt.pdf")
    assert r.status_code == 404


def test_demo_case_documents_render():
    """Cases from the demo data (application data of their own shape) print too."""
    case = ProxyCase.get(
        (ProxyCase.direction == "outbound") & (ProxyCase.item == "purchase_withdrawal")
    )
    text = pdf_text(forms_pdf.application_form(case, CENTER))
    assert case.case_no in text and "演示数据" in text
