"""The counter (窗口受理): guide or accept, the case page, refusals and access."""

from __future__ import annotations

import re

import pytest

from portal import items
from portal.models import AuditLog, CaseEvent, Center, ProxyCase
from portal.rules.workdays import add_workdays
from portal.services import counter
from tests.conftest import TODAY, login_depositor, login_staff
from tests.counter_helpers import (
    APPLICANT_ID,
    OTHER_ID,
    accept,
    application,
    purchase_form,
    soup,
    staff,
)

# --- the service --------------------------------------------------------------------------


def test_recent_cases_are_the_windows_latest_accepted_first():
    """The counter lists its department's latest outbound cases by acceptance day, newest
    first (the same day: the last recorded first), ten at most; another department's cases
    and inbound ones are not among them."""
    clerk = staff("clerk")
    accepted = [accept() for _ in range(3)]
    recent = counter.recent_cases(clerk)
    assert [c.case_no for c in recent[:3]] == [c.case_no for c in reversed(accepted)]
    assert len(recent) <= 10
    mine = {
        c.case_no
        for c in ProxyCase.select().where(
            (ProxyCase.department == clerk.department_id) & (ProxyCase.direction == "outbound")
        )
    }
    assert {c.case_no for c in recent} <= mine
    days = [c.clock_start for c in recent]
    assert days == sorted(days, reverse=True)


def test_guidance_when_the_peer_offers_the_item_online():
    beijing = Center.get(Center.code == "110000")
    guide = counter.guidance("query", beijing)
    assert guide is not None
    assert guide.hall_url == beijing.hall_url and guide.hotline == "12329"
    assert guide.center_name == beijing.name
    assert counter.guidance("purchase_withdrawal", beijing) is None


def test_guidance_follows_each_peers_configuration():
    yinchuan = Center.get(Center.code == "640100")
    assert counter.guidance("query", yinchuan) is not None
    assert counter.guidance("usage_certificate", yinchuan) is None


def test_accept_opens_an_outbound_case_at_the_clerks_window():
    clerk = staff("clerk")
    case = accept()
    assert case.direction == "outbound" and case.state == "accepted"
    assert case.department_id == clerk.department_id and case.accepted_by_id == clerk.id
    assert case.clock_start == TODAY
    assert case.deadline == add_workdays(TODAY, items.OUTBOUND_VERIFY_WORKDAYS, {})
    assert case.paused_since is None and case.missing_materials == []
    assert all(case.checklist.values())
    assert set(case.checklist) == {m.code for m in items.get("purchase_withdrawal").materials}
    assert re.fullmatch(r"KS20261125\d{4}", case.case_no)
    assert re.fullmatch(r"HZ20261125\d{8}", case.receipt_no)
    assert case.application["price"] == "680000.00"
    event = CaseEvent.get(CaseEvent.case == case)
    assert (event.action, event.to_state, event.actor_id) == ("create", "accepted", clerk.id)
    row = AuditLog.get((AuditLog.action == "case.accept") & (AuditLog.target_id == str(case.id)))
    assert row.actor == "staff:clerk" and APPLICANT_ID not in str(row.detail)


def test_deadline_counts_working_days_with_the_admins_overrides():
    from datetime import date

    user = staff("clerk")
    overrides = {date(2026, 11, 26): False}  # a declared day off moves the deadline
    case = counter.accept(user, "staff:clerk", application(), TODAY, overrides)
    assert case.deadline == add_workdays(TODAY, 7, overrides)
    assert case.deadline > add_workdays(TODAY, 7)


def test_missing_materials_put_the_case_in_supplement_told_once():
    case = accept(presented={"id_card", "application_form", "purchase_contract"})
    assert case.state == "supplement" and case.paused_since == TODAY
    assert case.missing_materials == [
        "购房发票或首付款证明",
        "婚姻状况证明（配偶共同提取时）",
        "本人银行借记卡",
    ]
    assert case.checklist["payment_invoice"] is False
    event = CaseEvent.get(CaseEvent.case == case)
    assert event.to_state == "supplement" and event.data["missing"] == case.missing_materials


def test_case_numbers_follow_each_other_and_receipts_differ():
    first, second = accept(), accept()
    assert int(second.case_no[-4:]) == int(first.case_no[-4:]) + 1
    assert first.receipt_no != second.receipt_no


def test_online_item_is_refused_without_the_applicants_reason():
    with pytest.raises(counter.Refused, match="全程网办"):
        accept(item="query", fields={"scope": "缴存信息"}, presented=set())


def test_online_item_with_a_reason_is_accepted_and_the_reason_recorded():
    case = accept(
        item="query",
        fields={"scope": "缴存信息"},
        presented={"id_card", "application_form", "query_authorization"},
        override_reason="申请人无智能手机，且不会使用网上业务大厅",
    )
    assert case.state == "accepted"
    event = CaseEvent.get(CaseEvent.case == case)
    assert event.data["guide_override"].startswith("申请人无智能手机")


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"center": "999999"}, "缴存地"),
        ({"center": "152900"}, "缴存地"),  # our own center is not a peer
        ({"item": "nonsense"}, "事项"),
        ({"applicant_id_no": "110105198503121235"}, "身份证"),
        ({"applicant_name": "  "}, "姓名"),
        ({"fields": {"contract_no": "X"}}, "购房日期"),
    ],
)
def test_accept_refusals(overrides, message):
    before = ProxyCase.select().count()
    with pytest.raises(counter.Refused, match=message):
        accept(**overrides)
    assert ProxyCase.select().count() == before


@pytest.mark.parametrize("username", ["liaison", "auditor", "official"])
def test_only_clerks_and_handlers_accept(username):
    with pytest.raises(counter.Refused):
        accept(username)


def test_handler_may_accept_at_their_window():
    case = accept("handler2")
    assert case.department_id == staff("handler2").department_id


def test_visible_case_per_role():
    case = accept()
    assert counter.visible_case(staff("clerk"), case.case_no) == case
    assert counter.visible_case(staff("handler"), case.case_no) == case  # same department
    assert counter.visible_case(staff("handler2"), case.case_no) is None
    assert counter.visible_case(staff("liaison"), case.case_no) == case
    assert counter.visible_case(staff("auditor"), case.case_no) == case
    assert counter.visible_case(staff("official"), case.case_no) is None
    assert counter.visible_case(staff("clerk"), "KS-nope") is None


def test_record_guidance_writes_the_audit_log():
    guide = counter.record_guidance(staff("clerk"), "staff:clerk", "query", "110000")
    assert guide.center_name == "北京住房公积金管理中心"
    assert AuditLog.select().where(AuditLog.action == "counter.guided").count() == 1
    with pytest.raises(counter.Refused):
        counter.record_guidance(staff("clerk"), "staff:clerk", "purchase_withdrawal", "110000")


# --- the views ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "username, status",
    [
        ("clerk", 200),
        ("handler", 200),
        ("liaison", 403),
        ("auditor", 403),
        ("official", 403),
        ("admin", 403),
    ],
)
def test_counter_start_per_role(client, username, status):
    login_staff(client, username)
    assert client.get("/staff/counter/").status_code == status


def test_counter_is_staff_only(client, depositor):
    r = client.get("/staff/counter/")
    assert r.status_code == 302 and "/staff/login" in r.headers["Location"]
    login_depositor(client, depositor)
    assert client.get("/staff/counter/").status_code == 403


def test_start_page_offers_every_item_and_the_peer_centers(client):
    login_staff(client, "clerk")
    page = soup(client.get("/staff/counter/"))
    item_values = [o["value"] for o in page.select("#item option") if o["value"]]
    assert item_values == [i.code for i in items.ITEMS]
    centers = [o["value"] for o in page.select("#center option") if o["value"]]
    assert centers == ["110000", "640100"]
    assert page.select_one("form[action='/staff/counter/new'][method='get']")


def test_start_fragment_for_htmx(client):
    login_staff(client, "clerk")
    r = client.get("/staff/counter/", headers={"HX-Request": "true"})
    assert r.status_code == 200 and "HX-Request" in r.headers["Vary"]
    text = r.get_data(as_text=True)
    assert "<html" not in text and 'id="counter-start"' in text


def test_online_item_shows_the_guidance_instead_of_a_form(client):
    login_staff(client, "clerk")
    r = client.get("/staff/counter/new?item=query&center=110000")
    page = soup(r)
    guide = page.select_one("#counter-guide")
    assert r.status_code == 200 and guide is not None
    assert "该中心已开通全程网办" in guide.get_text()
    assert page.select_one("a[href='https://gjj.example.invalid/110000']")
    assert page.select_one("a[href='tel:12329']")
    assert page.select_one("#counter-form") is None
    override = page.select_one("a[href*='override=1']")
    assert override is not None


def test_guidance_fragment_for_htmx(client):
    login_staff(client, "clerk")
    r = client.get("/staff/counter/new?item=query&center=110000", headers={"HX-Request": "true"})
    text = r.get_data(as_text=True)
    assert "<html" not in text and 'id="counter-guide"' in text


def test_recording_guidance_posts_and_redirects(client):
    login_staff(client, "clerk")
    r = client.post("/staff/counter/guided", data={"item": "query", "center": "110000"})
    assert r.status_code == 303 and r.headers["Location"].endswith("/staff/counter/")
    assert AuditLog.select().where(AuditLog.action == "counter.guided").count() == 1


def test_override_shows_the_form_with_a_required_reason(client):
    login_staff(client, "clerk")
    page = soup(client.get("/staff/counter/new?item=query&center=110000&override=1"))
    assert page.select_one("#counter-form textarea[name='override_reason']")
    data = {
        "item": "query",
        "center": "110000",
        "override": "1",
        "applicant_name": "李四",
        "resident_id": APPLICANT_ID,
        "phone": "13912345678",
        "app_scope": "缴存信息",
        "materials": ["id_card", "application_form", "query_authorization"],
    }
    r = client.post("/staff/counter/new", data=data)
    assert r.status_code == 422
    error = soup(r).select_one("#override_reason-error")
    assert error is not None and "必填" in error.get_text()
    r = client.post("/staff/counter/new", data={**data, "override_reason": "申请人不会使用手机"})
    assert r.status_code == 303


def test_application_form_has_the_items_fields_and_checklist(client):
    login_staff(client, "clerk")
    r = client.get("/staff/counter/new?item=purchase_withdrawal&center=110000")
    page = soup(r)
    assert r.status_code == 200
    for name in ("app_contract_no", "app_purchase_date", "app_price", "app_bank_card"):
        assert page.select_one(f"#counter-form [name='{name}']"), name
    boxes = [i["value"] for i in page.select("input[type=checkbox][name=materials]")]
    assert boxes == [m.code for m in items.get("purchase_withdrawal").materials]
    assert page.select_one("textarea[name='override_reason']") is None
    r = client.get(
        "/staff/counter/new?item=employer_registration&center=110000",
        headers={"HX-Request": "true"},
    )
    text = r.get_data(as_text=True)
    assert "<html" not in text and 'name="app_credit_code"' in text


def test_unknown_choice_is_told_next_to_the_field(client):
    login_staff(client, "clerk")
    r = client.get("/staff/counter/new?item=nonsense&center=")
    assert r.status_code == 422
    page = soup(r)
    assert page.select_one("#item-error") and page.select_one("#center-error")


def test_accepting_through_the_form(client):
    login_staff(client, "clerk")
    before = ProxyCase.select().count()
    r = client.post("/staff/counter/new", data=purchase_form())
    assert r.status_code == 303
    case = ProxyCase.select().order_by(ProxyCase.id.desc()).first()
    assert ProxyCase.select().count() == before + 1
    assert r.headers["Location"].endswith(f"/staff/counter/cases/{case.case_no}")
    assert case.state == "accepted" and case.applicant_id_no == APPLICANT_ID
    assert case.application["purchase_date"] == "2026-10-08"
    page = soup(client.get(r.headers["Location"]))
    assert "已受理" in page.select_one(".flashes").get_text()
    links = [a["href"] for a in page.select(".doc-list a")]
    assert [link.rsplit("/", 1)[-1] for link in links] == [
        "application.pdf",
        "authorization.pdf",
        "verification.pdf",
        "receipt.pdf",
    ]
    text = page.get_text()
    assert APPLICANT_ID not in text and "1101**********1234" in text
    assert "139****5678" in text
    assert "6222020000000000000" not in text and "622202*********0000" in text


def test_accepting_through_htmx_answers_with_a_location(client):
    login_staff(client, "clerk")
    r = client.post("/staff/counter/new", data=purchase_form(), headers={"HX-Request": "true"})
    assert r.status_code == 200 and r.headers["HX-Location"].startswith("/staff/counter/cases/")


def test_missing_materials_through_the_form_offer_the_notice(client):
    login_staff(client, "clerk")
    r = client.post("/staff/counter/new", data=purchase_form(materials=["id_card"]))
    assert r.status_code == 303
    page = soup(client.get(r.headers["Location"]))
    assert page.select_one("a[href$='/notice.pdf']")
    assert "待补正" in page.select_one(".case-state").get_text()
    assert "一次性告知书" in page.select_one(".flashes").get_text()


@pytest.mark.parametrize(
    "overrides, field_id, message",
    [
        ({"resident_id": "110105198503121235"}, "resident_id", "身份证号码格式不正确"),
        ({"resident_id": ""}, "resident_id", "必填"),
        ({"applicant_name": ""}, "applicant_name", "必填"),
        ({"phone": "12345"}, "phone", "11 位手机号码"),
        ({"app_purchase_date": "2099-01-01"}, "app_purchase_date", "不能晚于今天"),
        ({"app_purchase_date": "2026-13-40"}, "app_purchase_date", "日期格式"),
        ({"app_price": "-5"}, "app_price", "金额"),
        ({"app_price": "12.345"}, "app_price", "两位小数"),
        ({"app_price": "0"}, "app_price", "大于 0"),
        ({"app_bank_card": "6222020000000000001"}, "app_bank_card", "银行卡号不正确"),
        ({"app_contract_no": ""}, "app_contract_no", "必填"),
        ({"materials": ["forged"]}, "materials", "材料选择无效"),
    ],
)
def test_bad_input_is_told_next_to_the_field_and_nothing_saved(
    client, overrides, field_id, message
):
    login_staff(client, "clerk")
    before = ProxyCase.select().count()
    r = client.post("/staff/counter/new", data=purchase_form(**overrides))
    assert r.status_code == 422
    page = soup(r)
    if field_id == "materials":
        error = page.select_one(".checklist .error")
    else:
        error = page.select_one(f"#{field_id}-error")
    assert error is not None and message in error.get_text(), page.select(".error")
    assert ProxyCase.select().count() == before


def test_employer_registration_checks_the_credit_code(client):
    login_staff(client, "clerk")
    data = {
        "item": "employer_registration",
        "center": "110000",
        "applicant_name": "王经办",
        "resident_id": OTHER_ID,
        "phone": "13812345678",
        "app_employer_name": "北京示例科技有限公司",
        "app_credit_code": "91110105MA00000000",
        "app_employer_address": "北京市朝阳区示例路 1 号",
        "app_legal_rep": "赵六",
        "materials": ["application_form"],
    }
    r = client.post("/staff/counter/new", data=data)
    assert r.status_code == 422
    assert "统一社会信用代码不正确" in soup(r).select_one("#app_credit_code-error").get_text()
    from portal.rules.ids import org_code_check_char, uscc_check_char

    body = "MA01ABCD"
    first17 = "91110105" + body + org_code_check_char(body)
    good = first17 + uscc_check_char(first17)
    r = client.post("/staff/counter/new", data={**data, "app_credit_code": good.lower()})
    assert r.status_code == 303
    case = ProxyCase.select().order_by(ProxyCase.id.desc()).first()
    assert case.application["credit_code"] == good and case.state == "supplement"


def test_online_center_without_a_reason_is_refused_by_the_form(client):
    login_staff(client, "clerk")
    data = {
        "item": "query",
        "center": "110000",
        "applicant_name": "李四",
        "resident_id": APPLICANT_ID,
        "phone": "13912345678",
        "app_scope": "缴存信息",
    }
    r = client.post("/staff/counter/new", data=data)
    assert r.status_code == 422
    assert soup(r).select_one("#override_reason-error")


def test_case_page_access(client, depositor):
    case = accept()
    url = f"/staff/counter/cases/{case.case_no}"
    assert client.get(url).status_code == 302
    login_staff(client, "handler2")  # another department
    assert client.get(url).status_code == 404
    client.post("/logout")
    login_staff(client, "auditor")
    page = soup(client.get(url))
    assert page.select_one(".doc-list") and page.select_one("form.upload-form") is None
    client.post("/logout")
    login_depositor(client, depositor)
    assert client.get(url).status_code == 403


def test_case_page_fragment_for_htmx(client):
    case = accept()
    login_staff(client, "clerk")
    r = client.get(f"/staff/counter/cases/{case.case_no}", headers={"HX-Request": "true"})
    text = r.get_data(as_text=True)
    assert r.status_code == 200 and "<html" not in text and 'id="counter-case"' in text


def test_unknown_case_is_404(client):
    login_staff(client, "clerk")
    assert client.get("/staff/counter/cases/KS000").status_code == 404


def test_inbound_case_page_has_no_counter_documents(client):
    login_staff(client, "liaison")
    case = ProxyCase.get(ProxyCase.direction == "inbound")
    page = soup(client.get(f"/staff/counter/cases/{case.case_no}"))
    assert page.select_one(".doc-list") is None and page.select_one("form.upload-form")
    assert (
        client.get(f"/staff/counter/cases/{case.case_no}/documents/receipt.pdf").status_code == 404
    )


@pytest.mark.parametrize(
    "username, expected",
    [
        ("clerk", ["窗口受理", "台账"]),
        ("handler", ["窗口受理", "台账"]),
        ("liaison", ["台账", "平台文件"]),
        ("auditor", ["台账"]),
    ],
)
def test_staff_navigation_links(client, username, expected):
    login_staff(client, username)
    page = soup(client.get("/staff/ledger/"))
    labels = [a.get_text(strip=True) for a in page.select("nav.nav a")]
    for label in ("窗口受理", "台账", "平台文件"):
        assert (label in labels) == (label in expected), (username, labels)
    current = page.select_one("nav.nav a[aria-current='page']")
    assert current.get_text(strip=True) == "台账"
