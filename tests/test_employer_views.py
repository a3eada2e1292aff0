"""Employer hall pages: the overview with the employer account detail (paged with htmx,
exported to Excel), the roster with active search, navigation, and access isolation."""

from __future__ import annotations

from decimal import Decimal
from io import BytesIO

import pytest
from openpyxl import load_workbook

from portal.models import Account, Depositor, DepositRecord, Employer
from portal.rules.ids import mask_resident_id
from portal.services import employers
from tests import employer_helpers as helpers
from tests.conftest import login_depositor, login_operator
from tests.employer_helpers import account_of, soup

fixed_today = helpers.fixed_today  # fixture
foreign_operator = helpers.foreign_operator  # fixture
secondary = helpers.secondary  # fixture
pytestmark = pytest.mark.usefixtures("fixed_today")
HX = {"HX-Request": "true"}


def test_overview_shows_the_employer_and_its_numbers(client, operator):
    login_operator(client, operator)
    r = client.get("/employer/")
    assert r.status_code == 200 and "HX-Request" in r.headers["Vary"]
    page = soup(r)
    employer = operator.employer
    assert page.select_one("h1").get_text() == employer.name
    facts = page.select_one("#emp-h").find_parent("section").get_text()
    normal = Account.select().where((Account.employer == employer) & (Account.status == "正常"))
    sealed = Account.select().where((Account.employer == employer) & (Account.status == "封存"))
    monthly = sum((a.monthly_amount for a in normal), Decimal("0.00"))
    for text in (
        employer.credit_code,
        employer.account_no,
        employer.address,
        f"单位 {employer.employer_ratio}%",
        "2026年10月",  # paid up to last month
        f"{monthly:,.2f}",
    ):
        assert text in facts
    dds = {
        div.select_one("dt").get_text(): div.select_one("dd").get_text()
        for div in page.select_one("#emp-h").find_parent("section").select("dl.facts > div")
    }
    assert dds["正常缴存人数"] == str(normal.count())
    assert dds["封存人数"] == str(sealed.count())
    assert employer.contact_phone not in r.get_data(as_text=True)  # masked
    nav = [a.get_text() for a in page.select("nav.nav a")]
    assert nav == ["概况", "职工名册", "信息变更", "经办人", "缴存证明"]
    assert page.select_one('nav.nav a[aria-current="page"]').get_text() == "概况"


def test_account_detail_groups_postings_with_a_running_total(client, operator):
    employer = operator.employer
    lines = employers.ledger_lines(employer)
    records = DepositRecord.select().where(
        (DepositRecord.employer == employer) & DepositRecord.kind.in_(("汇缴", "补缴"))
    )
    assert sum(line.persons for line in lines) == records.count()
    assert lines[-1].balance == sum((r.amount for r in records), Decimal("0.00"))
    running = Decimal("0.00")
    for line in lines:
        running += line.amount
        assert line.balance == running
        assert line.kind in ("汇缴", "补缴") and isinstance(line.amount, Decimal)
    assert [line.posted_on for line in lines] == sorted(line.posted_on for line in lines)


def test_account_detail_pages_with_and_without_htmx(client, operator):
    login_operator(client, operator)
    total = len(employers.ledger_lines(operator.employer))
    assert total > employers.PER_PAGE
    full = soup(client.get("/employer/?page=2"))
    assert full.select_one("h1") is not None
    assert len(full.select("#ledger tbody tr")) == min(employers.PER_PAGE, total - 20)
    r = client.get("/employer/?page=2", headers=HX)
    assert r.status_code == 200 and "HX-Request" in r.headers["Vary"]
    fragment = soup(r)
    assert fragment.select_one("h1") is None and fragment.select_one("div#ledger")
    assert fragment.select_one("a[rel=prev]")["hx-get"] == "/employer/?page=1"
    assert fragment.select_one("a[rel=prev]")["href"] == "/employer/?page=1"  # plain link
    assert "第 2 /" in fragment.select_one(".pager-pos").get_text()
    # newest first on the first page
    first = soup(client.get("/employer/", headers=HX)).select("#ledger tbody tr td")[0].get_text()
    assert first == str(employers.ledger_lines(operator.employer)[-1].posted_on)


def test_excel_export_masks_ids(client, operator):
    login_operator(client, operator)
    r = client.get("/employer/detail.xlsx")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/vnd.openxmlformats")
    assert r.headers["Cache-Control"] == "no-store"
    wb = load_workbook(BytesIO(r.data))
    assert wb.sheetnames == ["单位账户明细", "职工名册"]
    detail = list(wb["单位账户明细"].iter_rows(min_row=3, values_only=True))
    assert len(detail) == len(employers.ledger_lines(operator.employer))
    roster = list(wb["职工名册"].iter_rows(min_row=2, values_only=True))
    accounts = Account.select().where(Account.employer == operator.employer)
    assert len(roster) == accounts.count()
    ids = {a.depositor.resident_id for a in accounts}
    text = " ".join(str(c) for row in roster + detail for c in row)
    assert not any(i in text for i in ids)
    assert all(row[2] == mask_resident_id(row[2]) or "*" in row[2] for row in roster)


def test_roster_lists_masked_ids_and_amounts(client, operator):
    login_operator(client, operator)
    r = client.get("/employer/roster")
    assert r.status_code == 200
    page = soup(r)
    rows = page.select("#roster tbody tr")
    count = Account.select().where(Account.employer == operator.employer).count()
    assert len(rows) == min(count, employers.PER_PAGE)
    account = Account.get(Account.account_no == rows[0].select("td")[0].get_text())
    cells = [td.get_text(strip=True) for td in rows[0].select("td")]
    assert cells[1] == account.depositor.name
    assert cells[2] == mask_resident_id(account.depositor.resident_id)
    assert cells[3] == f"{account.deposit_base:,.2f}"
    assert cells[4] == f"{account.monthly_amount:,.2f}"
    html = r.get_data(as_text=True)
    for a in Account.select().where(Account.employer == operator.employer):
        assert a.depositor.resident_id not in html
    search = page.select_one("input[name=q]")
    assert search["hx-trigger"] == "input changed delay:300ms, search"
    assert search["hx-get"] == "/employer/roster" and search["hx-target"] == "#roster"


def test_roster_search_by_name_and_account_number(client, operator):
    login_operator(client, operator)
    account = account_of(operator.employer_id, skip=3)
    name = account.depositor.name
    r = client.get("/employer/roster", query_string={"q": name}, headers=HX)
    assert r.status_code == 200
    fragment = soup(r)
    assert fragment.select_one("h1") is None
    names = [tr.select("td")[1].get_text() for tr in fragment.select("tbody tr")]
    assert name in names and all(name in n for n in names)
    r = client.get("/employer/roster", query_string={"q": account.account_no[-4:]})
    numbers = [tr.select("td")[0].get_text() for tr in soup(r).select("#roster tbody tr")]
    assert account.account_no in numbers
    # another employer's depositor is never found
    other = Account.select().where(Account.employer != operator.employer_id).first()
    r = client.get("/employer/roster", query_string={"q": other.account_no}, headers=HX)
    assert not soup(r).select("tbody tr") and "没有符合条件的职工" in r.get_data(as_text=True)
    # wildcards are literal
    r = client.get("/employer/roster", query_string={"q": "%"}, headers=HX)
    assert not soup(r).select("tbody tr")


def test_roster_status_filter_and_bad_filter(client, operator):
    login_operator(client, operator)
    r = client.get("/employer/roster", query_string={"status": "封存"}, headers=HX)
    statuses = {tr.select("td")[5].get_text(strip=True) for tr in soup(r).select("tbody tr")}
    assert statuses <= {"封存"}
    r = client.get("/employer/roster", query_string={"status": "nonsense"})
    assert r.status_code == 422 and "请从列表中选择" in r.get_data(as_text=True)


def test_roster_pages_keep_the_search(client):
    employer = (
        Employer.select()
        .join(Account, on=(Account.employer == Employer.id))
        .group_by(Employer.id)
        .order_by(Employer.id)
        .first()
    )
    from portal.models import EmployerOperator

    op = EmployerOperator.get((EmployerOperator.employer == employer) & EmployerOperator.is_primary)
    login_operator(client, op)
    per_page = employers.PER_PAGE
    employers.PER_PAGE = 5
    try:
        r = client.get("/employer/roster", query_string={"status": "正常"}, headers=HX)
        nxt = soup(r).select_one("a[rel=next]")
        assert nxt is not None and "status=" in nxt["href"] and "page=2" in nxt["href"]
    finally:
        employers.PER_PAGE = per_page


@pytest.mark.parametrize(
    "path",
    [
        "/employer/",
        "/employer/roster",
        "/employer/changes",
        "/employer/operators",
        "/employer/certificates",
        "/employer/detail.xlsx",
    ],
)
def test_pages_need_an_operator(client, depositor, path):
    r = client.get(path)
    assert r.status_code == 302 and r.headers["Location"].startswith("/employer/login")
    assert client.get(path, headers=HX).status_code == 401
    login_depositor(client, depositor)
    assert client.get(path).status_code == 403


def test_another_employers_depositor_is_not_found(client, operator, foreign_operator):
    login_operator(client, operator)
    foreign = account_of(foreign_operator.employer_id)
    assert client.get(f"/employer/roster/{foreign.id}/base").status_code == 404
    r = client.post(
        f"/employer/roster/{foreign.id}/base",
        data={"deposit_base": "5000", "effective_from": "2026-11", "code": "123456"},
    )
    assert r.status_code == 404
    assert Account.get_by_id(foreign.id).deposit_base == foreign.deposit_base
    mine = account_of(operator.employer_id)
    assert client.get(f"/employer/roster/{mine.id}/base").status_code == 200
    assert client.get("/employer/roster/999999/base").status_code == 404


def test_operators_of_one_employer_see_only_it(client, operator, foreign_operator):
    login_operator(client, foreign_operator)
    html = client.get("/employer/").get_data(as_text=True)
    assert foreign_operator.employer.name in html and operator.employer.name not in html
    roster = client.get("/employer/roster").get_data(as_text=True)
    for a in Account.select().where(Account.employer == operator.employer_id):
        assert a.account_no not in roster
    assert Depositor.select().count()  # sanity: the demo has depositors
