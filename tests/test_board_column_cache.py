"""A board column's and the filter form's HTML kept per worker (issue 10,
``board.column_html``, ``board.board_filters_html``): what the templates render, under keys
that hold everything they show, with each session's own CSRF token in the cards' forms."""

from __future__ import annotations

from datetime import timedelta

import pytest
from bs4 import BeautifulSoup

from portal.intranet import board as board_views
from portal.models import Department, ProxyCase
from portal.rules import casestates as cs
from portal.services import cases
from tests.board_helpers import HX, make_case, staff
from tests.conftest import TODAY, login_staff
from tests.fragment_helpers import assert_own_csrf_tokens, kept_cache, steady_page, uncached

BOARD = "/staff/board/outbound"


@pytest.fixture
def kept(app):
    """Empty column, filter and card caches, on (the default); afterwards as they were."""
    with kept_cache(
        app, board_views._column_cache, board_views._filters_cache, board_views._card_cache
    ) as cache:
        yield cache


def page(client, path=BOARD, **kwargs) -> str:
    return steady_page(client, path, **kwargs)


def soup(html: str) -> BeautifulSoup:
    return BeautifulSoup(html, "html.parser")


def some_cases() -> list[ProxyCase]:
    return [
        make_case(cs.OUTBOUND, "accepted", name="张三", start=TODAY - timedelta(days=30)),
        make_case(cs.OUTBOUND, "accepted", name="<b>李四</b>"),
        make_case(cs.OUTBOUND, "verifying", assignee="liaison", tracking_no="SF1234567890"),
        make_case(cs.OUTBOUND, "archived"),
    ]


def test_kept_columns_are_what_the_templates_render(app, client, kept):
    some_cases()
    login_staff(client, "clerk")  # a mover: every card has its move form
    for n, headers in enumerate(({}, HX), start=1):
        first = page(client, headers=headers)  # fills the caches
        assert len(kept) == n * len(cs.COLUMNS[cs.OUTBOUND])  # page and fragment differ
        second = page(client, headers=headers)  # from them
        with uncached(app):
            rendered = page(client, headers=headers)
        assert first == second == rendered
        assert "&lt;b&gt;李四&lt;/b&gt;" in first and "<b>李四</b>" not in first


def test_a_poll_answer_is_what_the_templates_render(app, client, kept):
    (case, *_rest) = some_cases()
    login_staff(client, "liaison")
    tokens = {
        i["name"]: i["value"] for i in soup(page(client)).select("input.col-meta[name^='v_']")
    }
    clerk = app.test_client()
    login_staff(clerk, "clerk")
    r = clerk.post(
        f"/staff/board/case/{case.id}/move",
        data={"target": "verifying", "version": case.version, "from_state": "accepted"},
        headers=HX,
    )
    assert r.status_code == 200
    poll = {**HX, "X-Portal-Poll": "1"}
    answers = [
        client.get(f"{BOARD}/poll", query_string=tokens, headers=poll).get_data(as_text=True)
        for _ in range(2)
    ]
    with uncached(app):
        answers.append(
            client.get(f"{BOARD}/poll", query_string=tokens, headers=poll).get_data(as_text=True)
        )
    assert answers[0] == answers[1] == answers[2]
    swapped = soup(answers[0])
    assert swapped.select_one(f"#cards-verifying #case-{case.id}")
    assert all(s.has_attr("hx-preserve") for s in swapped.select(".kcard-slot"))


def test_each_session_gets_its_own_csrf_token_in_kept_columns(app, kept):
    some_cases()
    assert_own_csrf_tokens(app, BOARD)  # the same columns for both sessions


def test_what_a_column_shows_changes_at_once(client, kept):
    """Names from other rows, a column limit, the day: no card's version changes."""
    case = make_case(cs.OUTBOUND, "accepted", name="张三")
    login_staff(client, "liaison")
    before = soup(page(client))
    assert "张三" in before.select_one(f"#case-{case.id}").get_text()
    limit = cases.wip_limits(cs.OUTBOUND, TODAY).get("accepted") or 0
    assert (f"上限 {limit}" in before.select_one("#head-accepted").get_text()) == bool(limit)
    ProxyCase.update(applicant_name="王五").where(ProxyCase.id == case.id).execute()
    Department.update(name="改名后的管理部").where(Department.code == "AZQ").execute()
    cases.set_wip_limits(staff("admin"), {(cs.OUTBOUND, "accepted"): limit + 1}, TODAY)
    after = soup(page(client))
    card = after.select_one(f"#case-{case.id}").get_text()
    assert "王五" in card and "张三" not in card and "改名后的管理部" in card
    assert f"上限 {limit + 1}" in after.select_one("#head-accepted").get_text()


def test_the_filters_are_in_the_key(client, kept):
    """Two filters that give the same column (the same cards, counts and token) still give
    their own 加载更多 link."""
    from portal import items

    taken = {
        row.item
        for row in ProxyCase.select(ProxyCase.item).where(
            (ProxyCase.direction == cs.OUTBOUND) & (ProxyCase.state == "feedback")
        )
    }
    item = next(i.code for i in items.ITEMS if i.code not in taken)
    for _ in range(cases.PAGE + 1):
        make_case(cs.OUTBOUND, "feedback", item=item, name="甲乙丙")
    login_staff(client, "liaison")
    links = []
    for args in ({"item": item}, {"item": item, "q": "甲乙丙"}):
        column = soup(page(client, query_string=args)).select_one("#col-feedback")
        assert len(column.select("li.kcard")) == cases.PAGE
        links.append(column.select_one("#more-feedback a")["href"])
    assert "q=" not in links[0] and "q=%E7%94%B2%E4%B9%99%E4%B8%99" in links[1]


def test_a_column_with_an_inline_form_open_is_never_kept(client, kept):
    case = make_case(cs.OUTBOUND, "accepted")
    login_staff(client, "clerk")
    page(client)
    kept.clear()
    r = client.post(
        f"/staff/board/case/{case.id}/move",
        data={"target": "rejected", "version": case.version, "from_state": "accepted"},
        headers=HX,
    )
    assert r.status_code == 200
    assert soup(r.get_data(as_text=True)).select_one(f"#slot-{case.id} form.kcard-form")
    html = soup(page(client))  # the next board: no form
    assert html.select_one(f"#case-{case.id}") and not html.select_one(f"#slot-{case.id} form")


def test_language_and_mount_point_are_in_the_key(app, client, kept):
    case = make_case(cs.OUTBOUND, "accepted")
    login_staff(client, "liaison")
    zh = soup(page(client))
    assert zh.select_one("#title-accepted").get_text() == cs.label(cs.OUTBOUND, "accepted")
    client.set_cookie("hpf_lang", "en")
    english = page(client)
    assert (
        soup(english).select_one("#title-accepted").get_text()
        != zh.select_one("#title-accepted").get_text()
    )
    assert soup(english).select_one("#f-item option").get_text() == "All items"
    with uncached(app):
        assert page(client) == english
    mounted = soup(page(client, base_url="http://localhost/hpf"))
    assert mounted.select_one(f"#case-{case.id}-no")["href"] == f"/hpf/staff/board/case/{case.id}"
    assert mounted.select_one("#board-filters")["action"] == "/hpf/staff/board/outbound"


def test_the_filter_form_shows_the_chosen_values(app, client, kept):
    login_staff(client, "liaison")
    plain = soup(page(client))
    assert plain.select_one("#f-item option[selected]")["value"] == ""
    args = {"item": "purchase_withdrawal", "q": "张<三>", "overdue": "1"}
    for _ in range(2):
        chosen = page(client, query_string=args)
        form = soup(chosen).select_one("#board-filters")
        assert form.select_one("#f-item option[selected]")["value"] == "purchase_withdrawal"
        assert form.select_one("#f-q")["value"] == "张<三>" and "张<三>" not in chosen
        assert form.select_one("#f-overdue").has_attr("checked")
        assert form.select_one("a.btn-link")  # 清除筛选
    with uncached(app):
        assert page(client, query_string=args) == chosen
    Department.update(name="新名字管理部").where(Department.code == "AZQ").execute()
    options = [o.get_text() for o in soup(page(client)).select("#f-dept option")]
    assert "新名字管理部" in options


def test_the_caches_are_bounded(client, kept, monkeypatch):
    monkeypatch.setattr(board_views._column_cache, "size", 2)
    some_cases()
    login_staff(client, "liaison")
    html = page(client)
    assert len(kept) == 2
    assert page(client) == html
