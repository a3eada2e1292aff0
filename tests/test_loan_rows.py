"""The loan page's table rows (portal/public/loan_rows.py), the templates' shared globals and
the kept parsing of the rate table: issue 10's eleventh round, checked for what a person sees."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from flask import render_template_string
from markupsafe import Markup

from portal.filters import fact, yuan
from portal.models import Loan, Setting
from portal.public.loan_rows import repayment_rows, schedule_rows, year_options
from portal.services import loans
from portal.services.loans import Repayment, ScheduleRow
from tests.conftest import TODAY, login_depositor
from tests.hall_helpers import fixed_today, loan_of_kind, soup  # noqa: F401

SCHEDULE_LABELS = ("期次", "应还日期", "本金", "利息", "月供", "剩余本金", "状态")
STATUS_TEXT = {"paid": "已还", "overdue": "逾期", "due": "下期应还", "future": "未到期"}
REPAYMENT_LABELS = ("还款日期", "类型", "期次", "本金", "利息", "金额")
KIND_TEXT = {"scheduled": "按期还款", "early": "提前还清", "offset": "公积金冲还贷"}


def _cells(html: str) -> list[list[tuple[str, str]]]:
    """Each row's cells as (data-label, text)."""
    from bs4 import BeautifulSoup

    rows = BeautifulSoup(f"<table><tbody>{html}</tbody></table>", "html.parser").select("tr")
    return [[(td["data-label"], td.get_text()) for td in tr.select("td")] for tr in rows]


def test_schedule_rows_hold_the_rows_values_under_their_labels():
    rows = [
        ScheduleRow(7, date(2026, 3, 4), Decimal("2583.33"), Decimal("660.47"),
                    Decimal("3243.80"), Decimal("1304833.34"), "paid"),
        ScheduleRow(8, date(2026, 4, 4), Decimal("2583.33"), Decimal("9.5"),
                    Decimal("2592.83"), Decimal("0"), "due"),
    ]  # fmt: skip
    html = schedule_rows(rows, SCHEDULE_LABELS, STATUS_TEXT)
    assert _cells(html) == [
        list(zip(SCHEDULE_LABELS, ["7", "2026-03-04", "2,583.33", "660.47", "3,243.80",
                                   "1,304,833.34", "已还"], strict=True)),
        list(zip(SCHEDULE_LABELS, ["8", "2026-04-04", "2,583.33", "9.50", "2,592.83",
                                   "0.00", "下期应还"], strict=True)),
    ]  # fmt: skip
    assert 'class="row-paid"' in html and 'class="row-due"' in html
    assert html.count('class="num"') == 8


def test_repayment_rows_show_a_dash_for_no_period_and_the_kind_text():
    repayments = [
        Repayment(1, 9, 3, date(2026, 2, 4), date(2026, 2, 4), Decimal("100"), Decimal("2.5"),
                  Decimal("102.5"), "scheduled"),
        Repayment(2, 9, None, None, date(2026, 3, 1), Decimal("900"), Decimal("0"),
                  Decimal("900"), "early"),
    ]  # fmt: skip
    html = repayment_rows(repayments, REPAYMENT_LABELS, KIND_TEXT)
    assert _cells(html) == [
        list(zip(REPAYMENT_LABELS, ["2026-02-04", "按期还款", "3", "100.00", "2.50", "102.50"],
                 strict=True)),
        list(zip(REPAYMENT_LABELS, ["2026-03-01", "提前还清", "—", "900.00", "0.00", "900.00"],
                 strict=True)),
    ]  # fmt: skip
    assert 'class="repay-early"' in html


def test_rows_escape_every_text_they_are_given():
    evil = '<script>"x"</script>'
    labels = (evil, "50%", "{h0}", "{}", "%s", "%(x)s", "状态")
    row = ScheduleRow(1, date(2026, 1, 4), Decimal("1"), Decimal("1"), Decimal("2"),
                      Decimal("0"), "future")  # fmt: skip
    html = str(schedule_rows([row], labels, {**STATUS_TEXT, "future": evil}))
    assert "<script>" not in html and html.count("&lt;script&gt;") == 2
    # labels with format characters come out as they are, in their own cells
    assert [label for label, _ in _cells(html)[0]] == [evil, *labels[1:]]
    odd = Repayment(1, 9, 1, None, date(2026, 1, 4), Decimal("1"), Decimal("0"), Decimal("1"),
                    '"><img src=x>')  # fmt: skip
    html = str(repayment_rows([odd], REPAYMENT_LABELS, KIND_TEXT))
    assert "<img" not in html and 'class="repay-&#34;&gt;&lt;img src=x&gt;"' in html
    assert _cells(html)[0][1] == ("类型", '"><img src=x>')  # an unknown kind shows as it is


def test_rows_need_a_label_for_every_cell():
    with pytest.raises(ValueError, match="expected 7 column labels, got 6"):
        schedule_rows([], SCHEDULE_LABELS[:6], STATUS_TEXT)
    with pytest.raises(ValueError, match="expected 6 column labels, got 7"):
        repayment_rows([], SCHEDULE_LABELS, KIND_TEXT)
    assert schedule_rows([], SCHEDULE_LABELS, STATUS_TEXT) == ""


@pytest.mark.usefixtures("fixed_today")
@pytest.mark.parametrize("language", ["zh_CN", "en"])
def test_loan_page_rows_are_the_years_schedule_and_repayments(client, language):
    loan = loan_of_kind("current")
    login_depositor(client, loan.depositor)
    if language == "en":
        client.post("/lang", data={"lang": "en", "next": "/me/"})
    view = loans.loan_view(loan.depositor, loan.id, TODAY)
    year = loans.schedule_year(view, TODAY)
    for headers in ({}, {"HX-Request": "true"}):  # the page and the year picker's fragment
        page = soup(client.get(f"/me/loans/{loan.id}?year={year}", headers=headers))
        sched, paid = (
            page.select_one("#sched-h").find_parent("section"),
            page.select_one("#paid-h").find_parent("section"),
        )
        heads = [th.get_text() for th in sched.select("thead th")]
        expected = [
            [str(r.period), str(r.due_on), yuan(r.principal), yuan(r.interest),
             yuan(r.payment), yuan(r.remaining)]
            for r in view.schedule if r.due_on.year == year
        ]  # fmt: skip
        rows = [[td.get_text() for td in tr.select("td")] for tr in sched.select("tbody tr")]
        assert [row[:6] for row in rows] == expected and expected
        for tr in sched.select("tbody tr"):  # every cell says which column it is (phones)
            assert [td["data-label"] for td in tr.select("td")] == heads
        assert ("Repaid" if language == "en" else "已还") in {row[6] for row in rows}
        paid_heads = [th.get_text() for th in paid.select("thead th")]
        paid_rows = paid.select("tbody tr")
        this_year = [r for r in view.repayments if r.paid_on.year == year]
        assert [tr.select("td")[0].get_text() for tr in paid_rows] == [
            str(r.paid_on) for r in reversed(this_year)
        ]
        for tr in paid_rows:
            assert [td["data-label"] for td in tr.select("td")] == paid_heads


def test_templates_read_the_environments_globals_and_keep_their_own_apart(app):
    env = app.jinja_env
    assert env.get_template("base.html").globals is env.globals
    own = env.from_string("{{ only_here }} {{ _('退出') }}", globals={"only_here": "x"})
    assert own.globals is not env.globals and "only_here" not in env.globals
    with app.test_request_context("/"):
        assert own.render() == "x 退出"
        # an imported macro renders as before
        html = render_template_string(
            '{% from "_macros.html" import form_error %}{{ form_error("请求无效") }}'
        )
    assert '<div class="alert alert-error" role="alert">请求无效</div>' in html


def test_a_new_rate_applies_at_once_though_the_parsed_table_is_kept():
    loan = Loan(
        disbursed_on=date(2025, 3, 1), term_months=240, first_home=True,
        annual_rate=Decimal("0.0285"),
    )  # fmt: skip
    on = date(2027, 1, 1)
    before = loans.current_rate(loan, on)
    assert loans.rate_table() is loans.rate_table()  # the same rows: parsed once
    Setting.create(
        key="loan_rates",
        value='{"first_le5": "0.0211", "first_gt5": "0.0222", '
        '"second_le5": "0.0311", "second_gt5": "0.0322"}',
        effective_from=date(2026, 6, 1),
    )
    assert loans.current_rate(loan, on) == Decimal("0.0222") != before
    with pytest.raises(TypeError):  # the kept table cannot be changed by a caller
        loans.rate_table()[-1][1]["first_gt5"] = Decimal("0.5")


def test_yuan_formats_every_kind_of_amount_as_before():
    assert yuan(Decimal("1234567.891")) == "1,234,567.89"
    assert yuan(Decimal("-0.5")) == "-0.50"
    assert yuan(Decimal("2.345")) == f"{Decimal('2.345'):,.2f}"  # the context's rounding
    assert (yuan(None), yuan(3), yuan("12.5")) == ("—", "3.00", "12.50")
    with pytest.raises(TypeError, match="Decimal"):
        yuan(1.5)


@pytest.mark.parametrize("kind", ["current", "overdue", "settled"])
def test_remaining_periods_are_the_rows_not_paid(kind):
    loan = loan_of_kind(kind)
    view = loans.loan_view(loan.depositor, loan.id, TODAY)
    assert view.remaining_periods == sum(1 for row in view.schedule if row.status != "paid")
    assert view.schedule[: view.paid_rows] == [r for r in view.schedule if r.status == "paid"]


def test_year_options_mark_the_year_shown():
    html = year_options([2025, 2026, 2027], 2026)
    assert html == (
        '<option value="2025">2025</option><option value="2026" selected>2026</option>'
        '<option value="2027">2027</option>'
    )
    assert year_options([2025], None) == '<option value="2025">2025</option>'
    assert year_options([], 2026) == ""
    with pytest.raises(ValueError):  # years only: nothing else reaches the page unescaped
        year_options(["<b>"], None)


def test_fact_writes_what_the_macro_wrote(app):
    """``fact`` was a macro in hall/_hall_macros.html; the function gives the same HTML,
    label, value and class escaped, whatever the value is."""
    macro = app.jinja_env.from_string(
        "{% macro m(label, value, cls='') -%}"
        "<div><dt>{{ label }}</dt>"
        '<dd{% if cls %} class="{{ cls }}"{% endif %}>{{ value }}</dd></div>'
        "{%- endmacro %}{{ m(a, b, c) }}"
    )
    function = app.jinja_env.from_string("{{ fact(a, b, c) }}")
    evil = '<script>"x"</script>'
    values = [
        ("贷款账号", "15290080", "mono"),
        (evil, evil, evil),
        ("放款日期", date(2026, 3, 4), ""),
        ("逾期期数", 0, ""),
        ("结清日期", None, ""),
        (Markup("<b>已还</b>"), Markup("<i>1</i>"), "strong"),
    ]
    with app.test_request_context("/"):
        for a, b, c in values:
            assert function.render(a=a, b=b, c=c) == macro.render(a=a, b=b, c=c)
        assert "<script>" not in function.render(a=evil, b=evil, c=evil)
        # the templates call it directly (portal.PortalCodeGenerator), not through Jinja
        assert "context.call(" not in app.jinja_env.compile("{{ fact(a, b) }}", raw=True)
    assert fact("a", "b") == "<div><dt>a</dt><dd>b</dd></div>"


def test_the_kept_unpaid_rows_are_marked_for_each_day_anew():
    """A loan's unpaid instalments are kept between views (``_unpaid_rows``); which are overdue
    and which is next is each view's own: a late view does not leak into an earlier day's."""
    loan = loan_of_kind("current")
    today_view = loans.loan_view(loan.depositor, loan.id, TODAY)
    assert not today_view.overdue and today_view.next_due.status == "due"
    later = TODAY.replace(year=TODAY.year + 1)
    late_view = loans.loan_view(loan.depositor, loan.id, later)
    assert len(late_view.overdue) >= 12
    assert all(row.status == "overdue" for row in late_view.overdue)
    assert late_view.next_due.due_on >= later > late_view.overdue[-1].due_on
    again = loans.loan_view(loan.depositor, loan.id, TODAY)
    assert again.schedule == today_view.schedule  # the same rows, the same statuses
    assert not again.overdue and again.next_due == today_view.next_due
    statuses = [row.status for row in again.schedule]
    assert statuses.count("due") == 1 and "overdue" not in statuses
    with pytest.raises(AttributeError):  # a kept row cannot be changed by a caller
        again.schedule[-1].status = "paid"
