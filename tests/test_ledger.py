"""The ledger (业务办理台账): every case, filters, htmx fragment, Excel export, access."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from openpyxl import load_workbook

from portal.models import AuditLog, Center, ProxyCase
from portal.services import counter
from portal.services.counter import LedgerQuery
from tests.conftest import TODAY, login_depositor, login_staff
from tests.counter_helpers import APPLICANT_ID, accept, soup, staff


def _total(page) -> int:
    return int("".join(ch for ch in page.select_one("#results-h").get_text() if ch.isdigit()))


# --- the service --------------------------------------------------------------------------


def test_every_case_is_in_the_liaisons_ledger():
    accept()
    page = counter.ledger_page(staff("liaison"), LedgerQuery())
    assert page.total == ProxyCase.select().count()
    assert len(page.rows) == min(page.total, counter.LEDGER_PAGE_SIZE)


def test_clerks_and_handlers_see_their_departments_cases():
    case = accept()
    clerk_page = counter.ledger_page(staff("clerk"), LedgerQuery())
    department = staff("clerk").department_id
    assert (
        clerk_page.total
        == ProxyCase.select()
        .where((ProxyCase.department == department) & (ProxyCase.direction == "outbound"))
        .count()
    )
    handler_page = counter.ledger_page(staff("handler"), LedgerQuery())
    assert handler_page.total == (
        ProxyCase.select().where(ProxyCase.department == department).count()
    )
    other = counter.ledger_page(staff("handler2"), LedgerQuery(direction="outbound"))
    assert case.case_no not in {r.case_no for r in other.rows}


def test_auditor_reads_everything():
    assert counter.ledger_page(staff("auditor"), LedgerQuery()).total == ProxyCase.select().count()


def test_filters_combine():
    case = accept()
    liaison = staff("liaison")
    q = LedgerQuery(
        date_from=TODAY,
        date_to=TODAY,
        item="purchase_withdrawal",
        direction="outbound",
        state="accepted",
        center="110000",
    )
    page = counter.ledger_page(liaison, q)
    assert case.case_no in {r.case_no for r in page.rows}
    for row in page.rows:
        assert row.clock_start == TODAY and row.item == "purchase_withdrawal"
        assert row.direction == "outbound" and row.state == "accepted"
        assert row.center_name == "北京住房公积金管理中心"
    assert (
        counter.ledger_page(liaison, LedgerQuery(state="accepted", direction="inbound")).total == 0
    )
    inbound = counter.ledger_page(liaison, LedgerQuery(direction="inbound"))
    assert inbound.total == ProxyCase.select().where(ProxyCase.direction == "inbound").count()
    yinchuan = counter.ledger_page(liaison, LedgerQuery(center="640100"))
    beijing = Center.get(Center.code == "640100")
    assert yinchuan.total == ProxyCase.select().where(ProxyCase.center == beijing).count()


@pytest.mark.parametrize("username", ["liaison", "clerk", "handler", "auditor"])
def test_the_count_is_the_rows_every_page_shows(username):
    """The total is counted on the cases alone (issue 10); it must still be what the pages
    list, for each role's view and filter, cases without a department included."""
    accept()
    user = staff(username)
    for q in (
        LedgerQuery(),
        LedgerQuery(direction="inbound"),
        LedgerQuery(center="640100"),
        LedgerQuery(center="110000", state="accepted"),
        LedgerQuery(date_from=TODAY - timedelta(days=40), date_to=TODAY),
    ):
        first = counter.ledger_page(user, q)
        seen = [
            r.case_no
            for n in range(1, first.pages + 1)
            for r in counter.ledger_page(user, q, n).rows
        ]
        assert len(seen) == first.total == len(set(seen)), (username, q)


def test_date_range_is_inclusive():
    liaison = staff("liaison")
    first = ProxyCase.select().order_by(ProxyCase.clock_start).first().clock_start
    only_first = counter.ledger_page(liaison, LedgerQuery(date_from=first, date_to=first))
    assert only_first.total == ProxyCase.select().where(ProxyCase.clock_start == first).count()
    later = counter.ledger_page(liaison, LedgerQuery(date_from=first + timedelta(days=1)))
    assert later.total == ProxyCase.select().where(ProxyCase.clock_start > first).count()


def test_rows_mask_identifiers():
    accept()
    rows = counter.ledger_page(staff("liaison"), LedgerQuery(date_from=TODAY)).rows
    mine = [r for r in rows if r.applicant_name == "张三丰"]
    assert mine and mine[0].applicant_id_masked == "1101**********1234"


def test_excel_export_has_the_filtered_rows_masked():
    accept()
    q = LedgerQuery(direction="outbound")
    data = counter.ledger_xlsx(staff("liaison"), "staff:liaison", q, TODAY)
    sheet = load_workbook(io.BytesIO(data)).active
    assert sheet.title == "业务办理台账"
    header = [c.value for c in sheet[1]]
    assert header[:5] == ["序号", "办件编号", "回执编号", "方向", "办理事项"]
    rows = list(sheet.iter_rows(min_row=2, values_only=True))
    assert len(rows) == ProxyCase.select().where(ProxyCase.direction == "outbound").count()
    assert {r[3] for r in rows} == {"外地业务"}
    values = " ".join(str(v) for r in rows for v in r)
    assert APPLICANT_ID not in values and "1101**********1234" in values
    for case in ProxyCase.select():
        assert case.applicant_id_no not in values
        assert not case.applicant_phone or case.applicant_phone not in values
    by_no = {r[1]: r for r in rows}
    for case in ProxyCase.select().where(ProxyCase.direction == "outbound"):
        who = by_no[case.case_no]  # 受理人 and 经办人 by name, empty when nobody
        assert who[13] == (case.accepted_by.name if case.accepted_by_id else None)
        assert who[14] == (case.assignee.name if case.assignee_id else None)
        assert who[8] == case.center.name
    assert any(r[13] for r in rows)
    row = (
        AuditLog.select()
        .where(AuditLog.action == "ledger.export")
        .order_by(AuditLog.id.desc())
        .first()
    )
    assert row.detail["rows"] == len(rows) and row.detail["filters"] == {"direction": "outbound"}


# --- the views ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "username, status",
    [
        ("liaison", 200),
        ("clerk", 200),
        ("handler", 200),
        ("auditor", 200),
        ("official", 403),
        ("admin", 403),
    ],
)
def test_ledger_access_per_role(client, username, status):
    login_staff(client, username)
    assert client.get("/staff/ledger/").status_code == status
    assert client.get("/staff/ledger/export.xlsx").status_code == status


def test_ledger_is_staff_only(client, depositor):
    r = client.get("/staff/ledger/")
    assert r.status_code == 302 and "/staff/login" in r.headers["Location"]
    assert client.get("/staff/ledger/", headers={"HX-Request": "true"}).status_code == 401
    login_depositor(client, depositor)
    assert client.get("/staff/ledger/").status_code == 403
    assert client.get("/staff/ledger/export.xlsx").status_code == 403


def test_full_page_lists_cases_with_masked_ids(client):
    case = accept()
    login_staff(client, "liaison")
    r = client.get("/staff/ledger/")
    page = soup(r)
    assert r.status_code == 200 and "HX-Request" in r.headers["Vary"]
    assert page.select_one("form.ledger-filters[hx-get='/staff/ledger/']")
    assert _total(page) == ProxyCase.select().count()
    assert page.select(".error") == [] and page.select(".alert-error") == []
    link = page.select_one(f"#ledger-results a[href='/staff/counter/cases/{case.case_no}']")
    assert link is not None
    assert APPLICANT_ID not in r.get_data(as_text=True)


def test_filtered_fragment_for_htmx(client):
    accept()
    login_staff(client, "liaison")
    r = client.get(
        "/staff/ledger/?direction=inbound&state=received", headers={"HX-Request": "true"}
    )
    text = r.get_data(as_text=True)
    assert r.status_code == 200 and "<html" not in text and "ledger-filters" not in text
    page = soup(r)
    assert page.select(".alert-error") == []
    assert page.select_one("section#ledger-results")
    expected = (
        ProxyCase.select()
        .where((ProxyCase.direction == "inbound") & (ProxyCase.state == "received"))
        .count()
    )
    assert _total(page) == expected
    states = {t.get_text() for t in page.select(".case-state")}
    assert states == {"平台接收"}
    export = page.select_one("a[href^='/staff/ledger/export.xlsx']")["href"]
    assert "direction=inbound" in export and "state=received" in export


def test_filters_without_javascript_keep_their_values(client):
    login_staff(client, "liaison")
    page = soup(client.get("/staff/ledger/?item=purchase_withdrawal&center=110000"))
    assert page.select_one("#item option[selected]")["value"] == "purchase_withdrawal"
    assert page.select_one("#center option[selected]")["value"] == "110000"
    items = {td.get_text() for td in page.select(".ledger-table tbody td:nth-of-type(3)")}
    assert items == {"购房提取"}


@pytest.mark.parametrize(
    "query, field_id, message",
    [
        ("date_from=2026-02-30", "date_from", "日期格式"),
        ("date_from=2026-11-20&date_to=2026-11-01", "date_to", "不能早于"),
        ("item=nonsense", "item", "请从列表中选择"),
        ("state=nonsense", "state", "请从列表中选择"),
    ],
)
def test_bad_filters_are_told_and_ignored(client, query, field_id, message):
    login_staff(client, "liaison")
    r = client.get(f"/staff/ledger/?{query}")
    assert r.status_code == 200
    page = soup(r)
    assert message in page.select_one(f"#{field_id}-error").get_text()
    assert _total(page) >= 1
    r = client.get(f"/staff/ledger/?{query}", headers={"HX-Request": "true"})
    assert message in soup(r).select_one("#ledger-results .alert-error").get_text()


def test_paging(client):
    login_staff(client, "liaison")
    total = ProxyCase.select().count()
    page = soup(client.get("/staff/ledger/?page=999"))
    if total > counter.LEDGER_PAGE_SIZE:
        assert page.select_one(".pager")
    assert len(page.select(".ledger-table tbody tr")) == (
        total - counter.LEDGER_PAGE_SIZE * ((total - 1) // counter.LEDGER_PAGE_SIZE)
    )


def test_excel_download(client):
    login_staff(client, "clerk")
    r = client.get("/staff/ledger/export.xlsx?direction=outbound")
    assert r.status_code == 200
    assert r.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert "filename*=UTF-8''" in r.headers["Content-Disposition"]
    sheet = load_workbook(io.BytesIO(r.data)).active
    clerk = staff("clerk")
    expected = (
        ProxyCase.select()
        .where((ProxyCase.direction == "outbound") & (ProxyCase.department == clerk.department_id))
        .count()
    )
    assert sheet.max_row - 1 == expected
    assert sheet.cell(row=2, column=12).is_date
