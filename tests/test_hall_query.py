"""The depositor hall's queries: account, deposit detail (htmx and plain), annual statement,
loans with schedule, quota trial, payoff calculator, and access rules."""

from __future__ import annotations

from decimal import Decimal

import pytest

from portal.models import Account, DepositRecord, Loan
from portal.rules.dates import add_months
from portal.rules.money import payoff_amount
from portal.services import deposits, loans
from tests.conftest import TODAY, login_depositor, login_operator, pdf_text
from tests.hall_helpers import fixed_today, loan_of_kind, money, soup  # noqa: F401

pytestmark = pytest.mark.usefixtures("fixed_today")


def test_account_summary_shows_every_field_masked(client, depositor):
    login_depositor(client, depositor)
    page = soup(client.get("/me/"))
    labels = [dt.get_text() for dt in page.select(".facts dt")]
    for label in (
        "个人账号",
        "缴存单位",
        "缴存基数（元）",
        "缴存比例",
        "月缴存额（元）",
        "缴至年月",
        "开户日期",
    ):
        assert label in labels
    assert page.select_one(".status").get_text() == "正常"
    text = page.get_text()
    assert depositor.resident_id not in text and depositor.phone not in text
    assert depositor.bank_card not in text
    nav = [a.get_text() for a in page.select("nav.nav a")]
    assert nav == ["我的账户", "缴存明细", "贷款", "证明", "退休提取", "信息变更", "我的办件"]


def test_hall_needs_a_depositor(client, operator):
    r = client.get("/me/deposits")
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    assert client.get("/me/deposits", headers={"HX-Request": "true"}).status_code == 401
    login_operator(client, operator)
    assert client.get("/me/deposits").status_code == 403


# --- deposit detail -----------------------------------------------------------------------


def test_detail_pages_twenty_rows_newest_first(client, depositor):
    login_depositor(client, depositor)
    account = Account.get(Account.depositor == depositor)
    total = DepositRecord.select().where(DepositRecord.account == account).count()
    r = client.get("/me/deposits")
    assert r.status_code == 200 and "HX-Request" in r.headers["Vary"]
    page = soup(r)
    rows = page.select("#detail tbody tr")
    assert len(rows) == min(20, total)
    dates = [row.select_one(".c-date").get_text() for row in rows]
    assert dates == sorted(dates, reverse=True)
    assert f"共 {total} 条" in page.select_one("#detail [role=status]").get_text()
    nxt = page.select_one(".pager a[rel=next]")
    assert nxt["href"] == "/me/deposits?page=2" and nxt["hx-get"] == nxt["href"]
    assert nxt["hx-push-url"] == "true"


def test_detail_filters_by_year_and_kind_full_page_and_fragment(client, depositor):
    login_depositor(client, depositor)
    account = Account.get(Account.depositor == depositor)
    year = TODAY.year - 1
    expected = (
        DepositRecord.select()
        .where(
            (DepositRecord.account == account)
            & (DepositRecord.kind == "结息")
            & (DepositRecord.posted_on.year == year)
        )
        .count()
    )
    url = f"/me/deposits?year={year}&kind=结息"
    full = client.get(url)
    assert full.get_data(as_text=True).lstrip().startswith("<!doctype html>")
    fragment = client.get(url, headers={"HX-Request": "true"})
    html = fragment.get_data(as_text=True)
    assert fragment.status_code == 200 and "<html" not in html
    rows = soup(fragment).select("tbody tr")
    assert len(rows) == expected
    assert all(row.select_one(".c-kind").get_text(strip=True) == "结息" for row in rows)
    assert all(row.select_one(".c-date").get_text().startswith(str(year)) for row in rows)
    # the full page keeps the chosen filters selected
    selected = soup(full).select_one("#year option[selected]")
    assert selected["value"] == str(year)
    # a history restore (back button) wants the whole page
    restore = client.get(url, headers={"HX-Request": "true", "HX-History-Restore-Request": "true"})
    assert "<html" in restore.get_data(as_text=True)


def test_detail_second_page_and_out_of_range_page(client, depositor):
    login_depositor(client, depositor)
    p2 = soup(client.get("/me/deposits?page=2", headers={"HX-Request": "true"}))
    assert "第 2 /" in p2.select_one(".pager-pos").get_text()
    last = soup(client.get("/me/deposits?page=999"))
    assert last.select_one(".pager a[rel=next]") is None
    assert client.get("/me/deposits?page=abc").status_code == 200


@pytest.mark.parametrize("query", ["year=1990", "kind=工资", "year=abc&kind=汇缴"])
def test_detail_bad_filters_are_explained_and_show_everything(client, depositor, query):
    login_depositor(client, depositor)
    r = client.get(f"/me/deposits?{query}")
    assert r.status_code == 422
    page = soup(r)
    assert page.select_one(".field .error").get_text() == "请从列表中选择"
    assert page.select("#detail tbody tr")


def test_detail_service_filters_and_pages():
    account = Account.select().where(Account.status == "正常").first()
    page = deposits.detail(account, kind="汇缴", page=1)
    assert page.rows and all(r.kind == "汇缴" for r in page.rows)
    assert page.pages == -(-page.total // 20)
    assert deposits.years(account)[0] == TODAY.year


def test_detail_is_the_plain_query_for_every_filter_and_page():
    """The detail's statements are built once per filter shape (issue 10); each shape and
    page gives what the plain query gives."""
    from datetime import date

    from portal.models import DepositRecord

    account = Account.select().where(Account.status == "正常").first()
    year = deposits.years(account)[1]
    for y, kind in ((None, None), (year, None), (None, "汇缴"), (year, "结息"), (None, "不存在")):
        plain = DepositRecord.select().where(DepositRecord.account == account)
        if y:
            plain = plain.where(DepositRecord.posted_on.between(date(y, 1, 1), date(y, 12, 31)))
        if kind in deposits.KINDS:
            plain = plain.where(DepositRecord.kind == kind)
        ordered = list(plain.order_by(DepositRecord.posted_on.desc(), DepositRecord.id.desc()))
        first = deposits.detail(account, y, kind, 1)
        assert first.total == len(ordered)
        for number in range(1, first.pages + 1):
            page = deposits.detail(account, y, kind, number)
            want = ordered[(number - 1) * 20 : number * 20]
            assert [r.id for r in page.rows] == [r.id for r in want], (y, kind, number)
        last = deposits.detail(account, y, kind, first.pages + 5)  # out of range: the last
        assert last.page == first.pages
    assert deposits.detail(account, 1990).total == 0


def test_annual_statement_adds_up(client, depositor):
    account = Account.get(Account.depositor == depositor)
    year = TODAY.year - 1
    st = deposits.annual_statement(account, year, TODAY)
    assert st.opening + sum(line.amount for line in st.lines) == st.closing
    assert st.deposits > 0 and st.interest > 0 and not st.partial
    assert st.opening + st.deposits + st.interest - st.withdrawals == st.closing
    login_depositor(client, depositor)
    page = soup(client.get(f"/me/deposits/statement?year={year}"))
    assert page.select_one("h1").get_text() == f"{year} 年度对账单"
    facts = {
        d.select_one("dt").get_text(): d.select_one("dd").get_text()
        for d in page.select(".facts > div")
    }
    assert money(facts["期末余额（元）"]) == st.closing
    assert money(facts["上年结转余额（元）"]) == st.opening
    pdf = client.get(f"/me/deposits/statement.pdf?year={year}")
    assert pdf.headers["Content-Type"] == "application/pdf"
    text = pdf_text(pdf.data)
    assert f"{year} 年度对账单" in text and depositor.name in text
    assert depositor.resident_id not in text  # a statement is not an identity document
    assert client.get("/me/deposits/statement?year=1990").status_code == 422


# --- loans --------------------------------------------------------------------------------


def test_loan_view_schedule_adds_up_and_marks_the_next_instalment():
    loan = loan_of_kind("current")
    view = loans.loan_view(loan.depositor, loan.id, TODAY)
    assert len(view.schedule) == loan.term_months
    assert sum(row.principal for row in view.schedule) == loan.amount
    assert view.schedule[-1].remaining == 0
    assert view.paid_periods == sum(1 for row in view.schedule if row.status == "paid")
    assert view.next_due.status == "due" and view.next_due.due_on >= TODAY
    assert view.next_due.due_on == add_months(loan.first_due_on, view.paid_periods)
    assert not view.overdue


def test_overdue_loan_lists_its_overdue_instalments_and_refuses_payoff():
    loan = loan_of_kind("overdue")
    view = loans.loan_view(loan.depositor, loan.id, TODAY)
    assert view.overdue and all(row.due_on < TODAY for row in view.overdue)
    quote = loans.payoff_quote(view, TODAY, TODAY)
    assert quote.refused.startswith(f"您的贷款有 {len(view.overdue)} 期逾期未还")


def test_payoff_quote_is_the_rules_amount():
    loan = loan_of_kind("current")
    view = loans.loan_view(loan.depositor, loan.id, TODAY)
    quote = loans.payoff_quote(view, TODAY, TODAY)
    expected = payoff_amount(loan.outstanding, view.rate, view.last_paid_due, TODAY)
    assert (quote.principal, quote.interest, quote.total) == tuple(expected)
    later = loans.payoff_quote(view, add_months(TODAY, 3), TODAY)
    assert later.assumed_periods == 3 and later.principal < quote.principal


def test_rate_change_reaches_existing_loans_on_the_next_first_of_january():
    loan = Loan(
        disbursed_on=TODAY.replace(year=2025, month=3, day=1),
        term_months=240,
        first_home=True,
        annual_rate=Decimal("0.0285"),
    )
    assert loans.current_rate(loan, TODAY.replace(year=2025, month=12, day=31)) == Decimal("0.0285")
    assert loans.current_rate(loan, TODAY.replace(year=2026, month=1, day=1)) == Decimal("0.026")


def test_loan_pages_show_contract_schedule_and_repayments(client):
    loan = loan_of_kind("current")
    login_depositor(client, loan.depositor)
    listing = soup(client.get("/me/loans"))
    assert loan.contract_no in listing.get_text()
    page = soup(client.get(f"/me/loans/{loan.id}"))
    text = page.get_text()
    for label in ("贷款金额（元）", "贷款期限", "执行年利率", "还款方式", "下次还款日", "逾期期数"):
        assert label in text
    assert loan.contract_no in text
    # issue 10: a year of the schedule at a time (a 30-year loan is 360 rows), every year offered
    section = page.select_one("#sched-h").find_parent("section")
    year = int(section.select_one("#schedule-year option[selected]")["value"])
    schedule = loans.loan_view(loan.depositor, loan.id, TODAY).schedule
    assert len(schedule) == loan.term_months
    assert len(section.select("tbody tr")) == sum(1 for r in schedule if r.due_on.year == year)
    assert {int(o["value"]) for o in section.select("#schedule-year option")} >= {
        r.due_on.year for r in schedule
    }
    assert page.select_one("a[href$='/payoff']")


def test_someone_elses_loan_is_404(client, depositor):
    other = Loan.select().where(Loan.depositor != depositor).first()
    login_depositor(client, depositor)
    for url in (
        f"/me/loans/{other.id}",
        f"/me/loans/{other.id}/payoff",
        f"/me/loans/{other.id}/payoff-calculator?on={TODAY}",
    ):
        assert client.get(url).status_code == 404, url
    assert client.post(f"/me/loans/{other.id}/settlement-certificate").status_code == 404


def test_payoff_calculator_page_fragment_and_range(client):
    loan = loan_of_kind("current")
    login_depositor(client, loan.depositor)
    on = add_months(TODAY, 2)
    url = f"/me/loans/{loan.id}/payoff-calculator?on={on}"
    full = client.get(url)
    assert full.status_code == 200 and "<html" in full.get_data(as_text=True)
    frag = client.get(url, headers={"HX-Request": "true"})
    assert "<html" not in frag.get_data(as_text=True)
    view = loans.loan_view(loan.depositor, loan.id, TODAY)
    expected = loans.payoff_quote(view, on, TODAY).total
    assert money(soup(frag).select_one(".amount").get_text()) == expected
    bad = client.get(f"/me/loans/{loan.id}/payoff-calculator?on={TODAY.replace(year=2030)}")
    assert bad.status_code == 422 and "请选择" in soup(bad).select_one(".error").get_text()
    assert client.get(f"/me/loans/{loan.id}/payoff-calculator?on=tomorrow").status_code == 422


def test_quota_trial_page_and_fragment(client, depositor):
    login_depositor(client, depositor)
    r = client.get("/me/loans/quota?monthly_income=9000&term_years=20&first_home=1")
    assert r.status_code == 200
    amount = money(soup(r).select_one(".balance-value").get_text())
    trial = loans.quota_trial(depositor, Decimal("9000"), TODAY, 20, True)
    assert amount == trial.quota.amount and amount % 100 == 0 and amount <= Decimal("600000")
    frag = client.get("/me/loans/quota?monthly_income=9000", headers={"HX-Request": "true"})
    assert "<html" not in frag.get_data(as_text=True) and soup(frag).select_one("#quota")


def test_quota_page_without_a_query_shows_the_empty_form(client, depositor):
    login_depositor(client, depositor)
    for headers in ({}, {"HX-Request": "true"}):
        r = client.get("/me/loans/quota", headers=headers)
        assert r.status_code == 200
        page = soup(r)
        assert page.select_one("#monthly_income") is not None
        assert page.select_one(".error") is None and page.select_one(".balance-value") is None
    assert "<html" in client.get("/me/loans/quota").get_data(as_text=True)


@pytest.mark.parametrize(
    "query, message",
    [
        ("monthly_income=", "请输入月收入"),
        ("monthly_income=-5", "请输入 1–1,000,000 元"),
        ("monthly_income=abc", "不是有效的小数"),
        ("monthly_income=5000&term_years=45", "贷款年限为 1–30 年"),
    ],
)
def test_quota_trial_bad_input(client, depositor, query, message):
    login_depositor(client, depositor)
    r = client.get(f"/me/loans/quota?{query}")
    assert r.status_code == 422
    error = soup(r).select_one(".field .error").get_text()
    assert message in error and "；" not in error  # one message, not two for one fault
    assert soup(r).select_one(".balance-value") is None
    value = query.split("&")[0].split("=", 1)[1]
    assert soup(r).select_one("#monthly_income")["value"] == value  # the input stays to mend


def test_quota_counts_existing_loan_payments():
    loan = loan_of_kind("current")
    trial = loans.quota_trial(loan.depositor, Decimal("20000"), TODAY)
    assert trial.existing_payments > 0 and trial.notes


def test_invalid_htmx_form_answers_the_fragment_with_errors(client, depositor):
    """422 with the fragment: base.html's htmx responseHandling swaps 422 answers."""
    login_depositor(client, depositor)
    r = client.get("/me/loans/quota?monthly_income=-5", headers={"HX-Request": "true"})
    assert r.status_code == 422 and "<html" not in r.get_data(as_text=True)
    assert "请输入 1–1,000,000 元" in soup(r).select_one("#quota .error").get_text()


def test_wtforms_messages_follow_the_language_and_are_read_once(client, depositor, monkeypatch):
    """WTForms' own messages come from its catalogue in the request's language; each language's
    catalogue is read from disk once per process, not once per request (issue 10)."""
    from babel import support

    from portal import forms

    forms.wtforms_catalogue.cache_clear()
    loads = []
    real_load = support.Translations.load

    def counting_load(*args, **kwargs):
        if kwargs.get("domain") == "wtforms":
            loads.append(str((args[1] if len(args) > 1 else kwargs["locales"])[0]))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(support.Translations, "load", counting_load)
    login_depositor(client, depositor)
    for _ in range(3):
        r = client.get("/me/loans/quota?monthly_income=abc")
        assert "不是有效的小数" in soup(r).select_one(".field .error").get_text()
    english = {"Accept-Language": "en"}
    for _ in range(2):
        r = client.get("/me/loans/quota?monthly_income=abc", headers=english)
        assert r.status_code == 422
        assert "Not a valid decimal value" in soup(r).select_one(".field .error").get_text()
    assert sorted(loads) == ["en", "zh_Hans_CN"]
    forms.wtforms_catalogue.cache_clear()
