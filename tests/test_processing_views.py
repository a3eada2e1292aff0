"""The processing pages (issue 7): the 办理 entry point on the card detail, the item forms with
and without htmx, 待复核, result downloads, 对账, and who may reach each."""

from __future__ import annotations

from decimal import Decimal

import pytest

from portal.filters import local_today
from portal.models import CasePayout, ProxyCase
from portal.services import processing
from tests.conftest import TODAY, login_staff, pdf_text
from tests.processing_helpers import (
    HX,
    depositors,
    inbound,
    prepare_and_approve,
    purchase,
    second_handler,  # noqa: F401 - fixture
    soup,
    staff,
)

pytestmark = pytest.mark.usefixtures("second_handler")


@pytest.fixture
def person():
    return depositors()[0]


@pytest.fixture
def case(person):
    return inbound("purchase_withdrawal", person, application={"contract_no": "HT2026-0001"})


def form(case, **extra):
    values = {
        "version": str(case.version),
        "property_no": "HT2026-0001",
        "property_address": "阿拉善左旗巴彦浩特镇王府街 8 号 3-201",
        "purchase_date": "2026-10-16",
        "price": "300000.00",
        "card_source": "file",
        "action": "submit",
    }
    values.update(extra)
    return values


def test_card_detail_offers_the_entry_point_to_the_departments_handler(client, case):
    login_staff(client, "handler")
    page = soup(client.get(f"/staff/board/case/{case.id}"))
    link = page.select_one(f'a[href="/staff/processing/case/{case.id}"]')
    assert link is not None and link.get_text(strip=True) == "办理"


def test_card_detail_has_no_entry_point_for_the_liaison(client, case):
    login_staff(client, "liaison")
    page = soup(client.get(f"/staff/board/case/{case.id}"))
    assert page.select_one(f'a[href="/staff/processing/case/{case.id}"]') is None


def test_processing_page_full_and_fragment(client, case):
    login_staff(client, "handler")
    full = client.get(f"/staff/processing/case/{case.id}")
    assert full.status_code == 200 and "HX-Request" in full.headers["Vary"]
    page = soup(full)
    assert page.select_one("html") and page.select_one("#processing-panel")
    assert page.select_one("input[name=property_no]")["value"] == "HT2026-0001"
    fragment = client.get(f"/staff/processing/case/{case.id}", headers=HX)
    body = fragment.get_data(as_text=True)
    assert fragment.status_code == 200 and "<html" not in body
    assert soup(fragment).select_one("div#processing-panel")


@pytest.mark.parametrize(
    "username,status", [("clerk", 403), ("liaison", 403), ("official", 403), ("handler2", 404)]
)
def test_who_may_open_the_processing_page(client, case, username, status):
    login_staff(client, username)
    assert client.get(f"/staff/processing/case/{case.id}").status_code == status


def test_anonymous_is_sent_to_the_staff_login(client, case):
    r = client.get(f"/staff/processing/case/{case.id}")
    assert r.status_code == 302 and "/staff/login" in r.headers["Location"]


def test_invalid_form_answers_422_with_the_message_next_to_the_field(client, case):
    login_staff(client, "handler")
    for headers in ({}, HX):
        r = client.post(
            f"/staff/processing/case/{case.id}/purchase", data=form(case, price=""), headers=headers
        )
        assert r.status_code == 422
        error = soup(r).select_one("#price-error")
        assert error is not None and "请填写金额" in error.get_text()
    assert not CasePayout.select().where(CasePayout.case == case).exists()


def test_preview_shows_the_computation_without_recording(client, case, person):
    login_staff(client, "handler")
    r = client.post(
        f"/staff/processing/case/{case.id}/purchase", data=form(case, action="preview"), headers=HX
    )
    assert r.status_code == 200
    quote = soup(r).select_one(".proc-quote.ok")
    assert quote is not None and "可提取额度" in quote.get_text()
    assert not CasePayout.select().where(CasePayout.case == case).exists()


def test_a_refusal_lists_every_reason_and_prefills_the_decline(client, case):
    login_staff(client, "handler")
    r = client.post(
        f"/staff/processing/case/{case.id}/purchase",
        data=form(case, purchase_date="2024-01-02"),
        headers=HX,
    )
    assert r.status_code == 422
    page = soup(r)
    reasons = [li.get_text() for li in page.select(".alert-error .reasons li")]
    assert any("已超过期限" in x for x in reasons)
    assert "已超过期限" in page.select_one("textarea[name=reason]").get_text()


def test_submit_without_htmx_redirects_with_a_flash(client, case):
    login_staff(client, "handler")
    r = client.post(f"/staff/processing/case/{case.id}/purchase", data=form(case))
    assert r.status_code == 303 and r.headers["Location"].endswith(f"/case/{case.id}")
    page = soup(client.get(r.headers["Location"]))
    assert "已提交复核" in page.select_one(".flash").get_text()
    assert page.select_one(".proc-pending_approval") is not None


def test_submit_with_htmx_answers_the_fresh_panel(client, case):
    login_staff(client, "handler")
    r = client.post(f"/staff/processing/case/{case.id}/purchase", data=form(case), headers=HX)
    assert r.status_code == 200 and "<html" not in r.get_data(as_text=True)
    page = soup(r)
    assert "已提交复核" in page.select_one(".flash").get_text()
    assert "撤回重新经办" in page.get_text()


def test_the_approvals_queue_and_the_approval(client, case):
    record = processing.prepare_purchase(staff("handler"), case.id, purchase(), TODAY)
    login_staff(client, "handler3")
    page = soup(client.get("/staff/processing/approvals"))
    link = page.select_one(f'a[href="/staff/processing/approvals/{record.id}"]')
    assert link is not None and "待复核（1）" in page.select_one("nav.nav").get_text()
    fragment = client.get("/staff/processing/approvals", headers=HX)
    assert "<html" not in fragment.get_data(as_text=True)
    r = client.post(
        f"/staff/processing/approvals/{record.id}/approve",
        data={"version": str(record.version)},
        headers=HX,
    )
    assert r.status_code == 200
    assert "已支付" in soup(r).select_one(".flash").get_text()
    assert CasePayout.get_by_id(record.id).status == "paid"


def test_the_preparer_sees_no_approve_button_and_is_refused(client, case):
    record = processing.prepare_purchase(staff("handler"), case.id, purchase(), TODAY)
    login_staff(client, "handler")
    page = soup(client.get(f"/staff/processing/approvals/{record.id}"))
    assert page.select_one(f'form[action$="/approvals/{record.id}/approve"]') is None
    assert "不能复核自己经办的支付" in page.get_text()
    r = client.post(
        f"/staff/processing/approvals/{record.id}/approve", data={"version": str(record.version)}
    )
    assert r.status_code == 409 and "不能复核自己经办的支付" in r.get_data(as_text=True)
    assert CasePayout.get_by_id(record.id).status == "pending_approval"


def test_refusing_needs_a_reason(client, case):
    record = processing.prepare_purchase(staff("handler"), case.id, purchase(), TODAY)
    login_staff(client, "handler3")
    r = client.post(f"/staff/processing/approvals/{record.id}/refuse", data={"reason": ""})
    assert r.status_code == 422 and soup(r).select_one("#reason-error")
    r = client.post(f"/staff/processing/approvals/{record.id}/refuse", data={"reason": "金额有误"})
    assert r.status_code == 303
    assert CasePayout.get_by_id(record.id).status == "refused"


def test_other_departments_records_are_404(client, case):
    record = processing.prepare_purchase(staff("handler"), case.id, purchase(), TODAY)
    login_staff(client, "handler2")
    assert client.get(f"/staff/processing/approvals/{record.id}").status_code == 404
    assert client.post(f"/staff/processing/approvals/{record.id}/approve").status_code == 404


def test_finish_and_download_the_result(client, case, person):
    prepare_and_approve(case)
    login_staff(client, "handler")
    page = soup(client.get(f"/staff/processing/case/{case.id}"))
    assert page.select_one(".proc-finish") is not None
    fresh = ProxyCase.get_by_id(case.id)
    r = client.post(
        f"/staff/processing/case/{case.id}/finish", data={"version": str(fresh.version)}, headers=HX
    )
    assert r.status_code == 200 and ProxyCase.get_by_id(case.id).state == "done"
    link = soup(r).select_one("#processing-panel .attachments a")
    download = client.get(link["href"])
    assert download.status_code == 200 and download.headers["Content-Type"] == "application/pdf"
    assert "购房提取" in pdf_text(download.data)
    detail = soup(client.get(f"/staff/board/case/{case.id}"))
    assert detail.select_one(".cd-results a")["href"] == link["href"]


def test_the_liaison_downloads_results_and_other_departments_cannot(client, case):
    prepare_and_approve(case)
    from portal.models import Attachment

    a = Attachment.get((Attachment.case == case) & (Attachment.kind == "result"))
    url = f"/staff/processing/case/{case.id}/result/{a.id}"
    login_staff(client, "liaison")
    assert client.get(url).status_code == 200
    client.post("/logout")
    login_staff(client, "handler2")
    assert client.get(url).status_code == 404


def test_decline_with_and_without_htmx(client, case):
    login_staff(client, "handler")
    r = client.post(
        f"/staff/processing/case/{case.id}/decline", data={"version": str(case.version)}
    )
    assert r.status_code == 422 and soup(r).select_one("#reason-error")
    r = client.post(
        f"/staff/processing/case/{case.id}/decline",
        data={"version": str(case.version), "reason": "非本中心缴存职工"},
    )
    assert r.status_code == 303 and ProxyCase.get_by_id(case.id).result["outcome"] == "不予办理"


def test_employer_form_validates_the_credit_code(client):
    case = inbound("employer_registration", None, application={"credit_code": "123"})
    login_staff(client, "handler")
    r = client.post(
        f"/staff/processing/case/{case.id}/employer",
        data={
            "version": str(case.version),
            "name": "测试单位",
            "credit_code": "91152921MA0000000X",
            "address": "阿拉善左旗某路 1 号",
            "operator_name": "韩梅",
            "operator_resident_id": "110105198001010016",
            "operator_phone": "13912345678",
        },
    )
    assert r.status_code == 422
    assert "统一社会信用代码不正确" in soup(r).select_one("#credit_code-error").get_text()


def test_query_item_button(client, person):
    case = inbound("query", person)
    login_staff(client, "handler")
    r = client.post(f"/staff/processing/case/{case.id}/query", data={"version": str(case.version)})
    assert r.status_code == 303 and ProxyCase.get_by_id(case.id).state == "done"


def test_nav_links_per_role(client):
    login_staff(client, "handler")
    nav = soup(client.get("/staff/")).select_one("nav.nav").get_text()
    assert "待复核" in nav and "对账" in nav and "签发证明" not in nav
    client.post("/logout")
    login_staff(client, "official")
    nav = soup(client.get("/staff/")).select_one("nav.nav").get_text()
    assert "签发证明" in nav and "待复核" not in nav and "对账" not in nav


@pytest.mark.parametrize(
    "username,status",
    [("handler", 200), ("liaison", 200), ("clerk", 403), ("official", 403), ("auditor", 403)],
)
def test_reconciliation_page_access(client, username, status):
    login_staff(client, username)
    assert client.get("/staff/processing/reconciliation").status_code == status


def test_reconciliation_page_fragment_and_bad_date(client, case):
    prepare_and_approve(case)
    login_staff(client, "handler")
    day = local_today()  # the payout really happened today
    r = client.get(f"/staff/processing/reconciliation?date={day.isoformat()}", headers=HX)
    assert r.status_code == 200 and "<html" not in r.get_data(as_text=True)
    assert "账实相符" in soup(r).select_one("#reconcile").get_text()
    assert client.get("/staff/processing/reconciliation?date=2026-13-40").status_code == 422


def test_amount_is_shown_as_money(client, case, person):
    record = processing.prepare_purchase(
        staff("handler"), case.id, purchase(amount=Decimal("1234.50")), TODAY
    )
    login_staff(client, "handler")
    text = soup(client.get(f"/staff/processing/case/{case.id}")).get_text()
    assert "1,234.50" in text and record.bank_card not in text


@pytest.mark.parametrize(
    "item,selector",
    [
        ("retirement_withdrawal", 'form[action$="/retirement"] input[name=card_source]'),
        ("early_repayment", 'form[action$="/payoff"] select[name=loan]'),
        ("settlement_certificate", 'form[action$="/settlement"] select[name=loan]'),
        ("employer_registration", 'form[action$="/employer"] input[name=credit_code]'),
        ("query", 'form[action$="/query"] button'),
        ("usage_certificate", 'form[action$="/usage"] input[name=addressee]'),
        ("individual_change", 'form[action$="/change"] input[name=phone]'),
        ("employer_change", 'form[action$="/employer-change"] input[name=effective_from]'),
    ],
)
def test_every_item_has_its_form(client, person, item, selector):
    case = inbound(item, None if item.startswith("employer") else person)
    login_staff(client, "handler")
    for headers in ({}, HX):
        r = client.get(f"/staff/processing/case/{case.id}", headers=headers)
        assert r.status_code == 200
        page = soup(r)
        assert page.select_one(selector) is not None, item
        assert page.select_one('form[action$="/decline"] textarea[name=reason]') is not None


def test_usage_and_change_forms_through_http(client, person):
    usage = inbound(
        "usage_certificate", person, application={"addressee": "银川住房公积金管理中心"}
    )
    login_staff(client, "handler")
    page = soup(client.get(f"/staff/processing/case/{usage.id}"))
    assert page.select_one("input[name=addressee]")["value"] == "银川住房公积金管理中心"
    r = client.post(
        f"/staff/processing/case/{usage.id}/usage",
        data={"version": str(usage.version), "addressee": ""},
        headers=HX,
    )
    assert r.status_code == 422 and soup(r).select_one("#addressee-error")
    r = client.post(
        f"/staff/processing/case/{usage.id}/usage",
        data={"version": str(usage.version), "addressee": "银川住房公积金管理中心"},
        headers=HX,
    )
    assert r.status_code == 200 and ProxyCase.get_by_id(usage.id).state == "done"
    change = inbound("individual_change", person)
    r = client.post(
        f"/staff/processing/case/{change.id}/change",
        data={"version": str(change.version), "phone": "12345"},
    )
    assert r.status_code == 422
    assert "11 位手机号码" in soup(r).select_one("#phone-error").get_text()
