"""The boards over HTTP: pages and fragments, moves by menu and by drop, inline data forms,
conflicts, polling, filters, limits, the case detail, and who may reach what."""

from __future__ import annotations

import re

import pytest

from portal.filters import local_today
from portal.models import CaseComment, CaseEvent, ProxyCase, Setting, WebSession
from portal.rules import casestates as cs
from portal.services import cases
from tests.board_helpers import APPLICANT_ID, HX, form_data, fresh, make_case, soup, staff
from tests.conftest import TODAY, login_staff

BOARD = "/staff/board"


def move(client, case, target, headers=HX, **extra):
    return client.post(
        f"{BOARD}/case/{case.id}/move", data=form_data(case, target, **extra), headers=headers
    )


def board_tokens(page) -> dict[str, str]:
    return {i["name"]: i["value"] for i in page.select("input.col-meta")}


# --- pages, fragments, access -------------------------------------------------------------


def test_board_page_and_fragment(client):
    login_staff(client, "liaison")
    r = client.get(f"{BOARD}/outbound")
    assert r.status_code == 200 and "HX-Request" in r.headers["Vary"]
    page = soup(r)
    assert page.select_one("h1").get_text(strip=True) == "外地业务看板"
    titles = [h.get_text(strip=True) for h in page.select(".kcol-title")]
    assert titles == ["窗口受理", "材料核实", "已传递", "已反馈", "归档", "待补正", "退回"]
    assert page.select_one("#board-filters") and page.select_one("#board-live[aria-live]")
    assert page.select_one('script[src$="Sortable.min.js"]')
    assert page.select_one('script[src$="board.js"]')
    nav = [a.get_text(strip=True) for a in page.select("nav.nav a")]
    assert nav[:3] == ["工作台", "外地业务看板", "本地业务看板"]
    assert page.select_one('nav.nav a[aria-current="page"]').get_text() == "外地业务看板"
    poll = page.select_one("#board-poll")
    assert poll["hx-trigger"] == "every 5s" and '"X-Portal-Poll": "1"' in poll["hx-headers"]

    r = client.get(f"{BOARD}/outbound", headers=HX)
    assert r.status_code == 200
    fragment = soup(r)
    assert fragment.select_one("html") is None and fragment.select_one("#board .kcol")
    restore = client.get(f"{BOARD}/outbound", headers={**HX, "HX-History-Restore-Request": "true"})
    assert soup(restore).select_one("html")


def test_no_inline_script_or_style(client):
    login_staff(client, "liaison")
    html = client.get(f"{BOARD}/inbound").get_data(as_text=True)
    page = soup(client.get(f"{BOARD}/inbound"))
    assert all(s.get("src") for s in page.select("script"))
    assert not page.select("[style]")
    assert not re.search(r"\son[a-z]+=", html)


@pytest.mark.parametrize(
    "username, path, status",
    [
        ("clerk", "/outbound", 200),
        ("clerk", "/inbound", 403),
        ("liaison", "/inbound", 200),
        ("handler", "/inbound", 200),
        ("handler2", "/outbound", 200),
        ("auditor", "/inbound", 200),
        ("official", "/outbound", 403),
        ("admin", "/inbound", 403),
        ("admin", "/limits", 200),
        ("liaison", "/limits", 403),
    ],
)
def test_who_opens_which_board(client, username, path, status):
    login_staff(client, username)
    assert client.get(f"{BOARD}{path}").status_code == status


def test_anonymous_is_sent_to_login_and_htmx_gets_401(client):
    r = client.get(f"{BOARD}/outbound")
    assert r.status_code == 302 and "/staff/login" in r.headers["Location"]
    assert client.get(f"{BOARD}/outbound/poll", headers=HX).status_code == 401


def test_board_index_redirects_to_the_first_board(client):
    login_staff(client, "clerk")
    assert client.get(f"{BOARD}/").headers["Location"].endswith("/staff/board/outbound")


def test_staff_nav_on_home_follows_the_role(client):
    login_staff(client, "clerk")
    links = [a.get_text(strip=True) for a in soup(client.get("/staff/")).select("nav.nav a")]
    assert "外地业务看板" in links and "本地业务看板" not in links


def test_handlers_see_only_their_department(client):
    mine = make_case(cs.INBOUND, "distributed")
    theirs = make_case(cs.INBOUND, "distributed", dept="AYQ")
    login_staff(client, "handler")
    page = soup(client.get(f"{BOARD}/inbound"))
    assert page.select_one(f"#case-{mine.id}") and not page.select_one(f"#case-{theirs.id}")
    for url in (f"/case/{theirs.id}", f"/case/{theirs.id}/card"):
        assert client.get(f"{BOARD}{url}", headers=HX).status_code == 404
        assert client.get(f"{BOARD}{url}").status_code == 404
    assert move(client, theirs, "processing").status_code == 404
    assert client.post(f"{BOARD}/case/{theirs.id}/take", data={"version": 1}).status_code == 404
    assert client.post(f"{BOARD}/case/{theirs.id}/comments", data={"body": "x"}).status_code == 404
    assert fresh(theirs).state == "distributed"


def test_auditor_reads_but_cannot_move(client):
    case = make_case(cs.OUTBOUND, "verifying")
    login_staff(client, "auditor")
    page = soup(client.get(f"{BOARD}/outbound"))
    assert page.select_one("#board.board-readonly")
    assert not page.select(".kcard-move") and not page.select(".kcard[data-movable]")
    assert not page.select(".kcard-take")
    detail = soup(client.get(f"{BOARD}/case/{case.id}"))
    assert detail.select_one(".history") and not detail.select("form.cd-form")
    assert move(client, case, "transmitted").status_code == 403
    assert client.post(f"{BOARD}/case/{case.id}/comments", data={"body": "x"}).status_code == 403
    assert fresh(case).state == "verifying"


# --- moving -------------------------------------------------------------------------------


def test_menu_move_without_htmx_redirects_with_a_message(client):
    case = make_case(cs.OUTBOUND, "accepted")
    login_staff(client, "clerk")
    r = move(client, case, "verifying", headers={})
    assert r.status_code == 303 and r.headers["Location"].endswith("/staff/board/outbound")
    assert fresh(case).state == "verifying"
    flash = soup(client.get(r.headers["Location"])).select_one(".flash")
    assert "已将" in flash.get_text() and "材料核实" in flash.get_text()


def test_htmx_move_answers_with_both_columns_out_of_band(client):
    case = make_case(cs.OUTBOUND, "accepted")
    login_staff(client, "clerk")
    r = move(client, case, "verifying")
    assert r.status_code == 200
    page = soup(r)
    heads = {h["id"]: h for h in page.select("header.kcol-head[hx-swap-oob]")}
    assert set(heads) == {"head-accepted", "head-verifying"}
    lists = {ol["id"]: ol for ol in page.select('ol[hx-swap-oob="innerHTML"]')}
    assert lists["cards-verifying"].select_one(f"#case-{case.id}")
    assert not lists["cards-accepted"].select_one(f"#case-{case.id}")
    count = int(heads["head-verifying"].select_one(".kcol-count").get_text(strip=True)[-1:])
    assert count >= 1
    live = page.select_one('#board-live[hx-swap-oob="innerHTML"]')
    assert "移至“材料核实”" in live.get_text()
    # the moved card is fresh: no hx-preserve on its slot; the others keep their open forms
    assert not page.select_one(f"#slot-{case.id}").has_attr("hx-preserve")
    others = [s for s in page.select(".kcard-slot") if s["id"] != f"slot-{case.id}"]
    assert all(s.has_attr("hx-preserve") for s in others)
    assert fresh(case).state == "verifying"


def test_a_move_answers_under_the_boards_filters(client, monkeypatch):
    """A move's answer shows its columns as the tab shows them: filtered when the tab's filters
    come with the move, and without them no filter form or choices are made at all."""
    from portal.intranet import board_forms

    shown = make_case(cs.OUTBOUND, "accepted", item="purchase_withdrawal")
    login_staff(client, "clerk")
    r = move(client, shown, "verifying", item="settlement_certificate")
    assert r.status_code == 200 and fresh(shown).state == "verifying"
    lists = {ol["id"]: ol for ol in soup(r).select('ol[hx-swap-oob="innerHTML"]')}
    assert not lists["cards-verifying"].select_one(f"#case-{shown.id}")  # filtered out
    other = make_case(cs.OUTBOUND, "accepted", item="purchase_withdrawal")
    r = move(client, other, "verifying", item="purchase_withdrawal")
    lists = {ol["id"]: ol for ol in soup(r).select('ol[hx-swap-oob="innerHTML"]')}
    assert lists["cards-verifying"].select_one(f"#case-{other.id}")

    def no_form(*args, **kwargs):
        raise AssertionError("no filter form without filters")

    monkeypatch.setattr(board_forms, "filter_form", no_form)
    third = make_case(cs.OUTBOUND, "accepted")
    r = move(client, third, "verifying")
    lists = {ol["id"]: ol for ol in soup(r).select('ol[hx-swap-oob="innerHTML"]')}
    assert r.status_code == 200 and lists["cards-verifying"].select_one(f"#case-{third.id}")
    with pytest.raises(AssertionError, match="no filter form"):  # with one, as before
        move(client, make_case(cs.OUTBOUND, "accepted"), "verifying", q="x")


def test_the_filter_fields_are_the_filter_forms(app):
    from portal.intranet import board_forms

    with app.test_request_context("/"):
        form = board_forms.FilterForm()
    assert set(board_forms.FILTER_FIELDS) == set(form._fields)
    every = cases.Filters(item="query", department=1, assignee="me", overdue=True, q="x")
    assert set(every.args()) == set(board_forms.FILTER_FIELDS)


def test_a_drop_on_a_refused_column_snaps_back_with_the_reason(client):
    case = make_case(cs.OUTBOUND, "accepted")
    login_staff(client, "clerk")
    events = CaseEvent.select().where(CaseEvent.case == case.id).count()
    r = move(client, case, "archived")
    assert r.status_code == 409
    page = soup(r)
    lists = {ol["id"]: ol for ol in page.select('ol[hx-swap-oob="innerHTML"]')}
    assert lists["cards-accepted"].select_one(f"#case-{case.id}")  # back where it was
    assert not lists["cards-archived"].select_one(f"#case-{case.id}")
    live = page.select_one("#board-live").get_text()
    assert "不能从“窗口受理”直接移至“归档”" in live
    assert fresh(case).version == case.version
    assert CaseEvent.select().where(CaseEvent.case == case.id).count() == events


def test_the_wrong_role_is_refused_with_who_may(client):
    case = make_case(cs.OUTBOUND, "verifying")
    login_staff(client, "clerk")
    r = move(client, case, "transmitted")
    assert r.status_code == 409 and "须由联络人操作" in soup(r).select_one("#board-live").get_text()
    assert fresh(case).state == "verifying"


def test_an_unknown_column_or_missing_version_changes_nothing(client):
    case = make_case(cs.OUTBOUND, "accepted")
    login_staff(client, "clerk")
    r = move(client, case, "nowhere")
    assert r.status_code == 409 and "没有这一列" in r.get_data(as_text=True)
    r = client.post(f"{BOARD}/case/{case.id}/move", data={"target": "verifying"}, headers=HX)
    assert r.status_code == 422 and "页面已过期" in r.get_data(as_text=True)
    assert fresh(case).state == "accepted"


def test_a_move_that_needs_a_reason_asks_inline_first(client):
    case = make_case(cs.OUTBOUND, "accepted")
    login_staff(client, "clerk")
    r = move(client, case, "rejected")
    assert r.status_code == 200
    page = soup(r)
    card = page.select_one(f"ol[hx-swap-oob] #case-{case.id}")
    assert card.find_parent("ol")["id"] == "cards-accepted"
    form = card.select_one(f"#slot-{case.id} form.kcard-form")
    assert form.select_one('input[name="target"]')["value"] == "rejected"
    assert form.select_one('input[name="with_data"]')["value"] == "1"
    assert form.select_one(f'textarea[name="c{case.id}-reason"]')
    assert "请填写退回原因" in page.select_one("#board-live").get_text()
    assert fresh(case).state == "accepted"

    r = move(client, case, "rejected", with_data="1", **{f"c{case.id}-reason": "  "})
    assert r.status_code == 422
    error = soup(r).select_one(f"#c{case.id}-reason-error")
    assert "请填写退回原因" in error.get_text()
    assert fresh(case).state == "accepted"

    r = move(client, case, "rejected", with_data="1", **{f"c{case.id}-reason": "证件过期"})
    assert r.status_code == 200
    after = fresh(case)
    assert (after.state, after.rejection_reason) == ("rejected", "证件过期")
    event = CaseEvent.get((CaseEvent.case == case.id) & (CaseEvent.to_state == "rejected"))
    assert event.data == {"reason": "证件过期"}


def test_missing_materials_are_checked_and_written_in(client):
    case = make_case(cs.OUTBOUND, "accepted")
    login_staff(client, "clerk")
    page = soup(move(client, case, cs.PAUSED))
    boxes = page.select(f'input[type="checkbox"][name="c{case.id}-missing"]')
    assert len(boxes) == 6
    r = move(client, case, cs.PAUSED, with_data="1")
    assert r.status_code == 422 and "一次性告知" in r.get_data(as_text=True)
    r = client.post(
        f"{BOARD}/case/{case.id}/move",
        data={
            **form_data(case, cs.PAUSED, with_data="1"),
            f"c{case.id}-missing": ["购房合同或不动产权证书", "本人银行借记卡", "伪造的选项"],
            f"c{case.id}-other": "户口簿、 结婚证",
        },
        headers=HX,
    )
    assert r.status_code == 200
    after = fresh(case)
    assert after.state == cs.PAUSED
    assert after.missing_materials == [
        "购房合同或不动产权证书",
        "本人银行借记卡",
        "户口簿",
        "结婚证",
    ]


def test_distribution_suggests_the_depositors_department(client):
    from portal.models import Depositor

    depositor = Depositor.select().where(Depositor.department.is_null(False)).first()
    case = make_case(cs.INBOUND, "received", dept=None, depositor=depositor)
    login_staff(client, "liaison")
    page = soup(move(client, case, "distributed"))
    select = page.select_one(f'select[name="c{case.id}-department"]')
    assert select.select_one("option[selected]")["value"] == str(depositor.department_id)
    r = move(client, case, "distributed", with_data="1", **{f"c{case.id}-department": ""})
    assert r.status_code == 422 and "请选择要分发的管理部" in r.get_data(as_text=True)
    r = move(
        client,
        case,
        "distributed",
        with_data="1",
        **{f"c{case.id}-department": str(depositor.department_id)},
    )
    assert r.status_code == 200 and fresh(case).department_id == depositor.department_id


def test_results_are_recorded_inline(client):
    case = make_case(cs.OUTBOUND, "transmitted")
    login_staff(client, "liaison")
    assert soup(move(client, case, "feedback")).select_one(f'select[name="c{case.id}-outcome"]')
    r = move(
        client,
        case,
        "feedback",
        with_data="1",
        **{f"c{case.id}-outcome": "办结", f"c{case.id}-note": "缴存地已办结"},
    )
    assert r.status_code == 200
    assert fresh(case).result == {"outcome": "办结", "note": "缴存地已办结"}


def test_data_form_without_htmx_is_a_page(client):
    case = make_case(cs.OUTBOUND, "accepted")
    login_staff(client, "clerk")
    r = move(client, case, "rejected", headers={})
    assert r.status_code == 200
    page = soup(r)
    assert page.select_one("h1").get_text(strip=True).startswith("将 ")
    assert page.select_one("form.kcard-form a.btn")  # 取消 goes back to the board
    r = move(client, case, "rejected", headers={}, with_data="1")
    assert r.status_code == 422 and soup(r).select_one(".error")
    r = move(client, case, "rejected", headers={}, with_data="1", **{f"c{case.id}-reason": "x"})
    assert r.status_code == 303 and fresh(case).state == "rejected"


def test_cancel_returns_the_plain_card(client):
    case = make_case(cs.OUTBOUND, "accepted")
    login_staff(client, "clerk")
    r = client.get(f"{BOARD}/case/{case.id}/card", headers=HX)
    card = soup(r).select_one(f"li#case-{case.id}")
    assert card and not card.select_one("form.kcard-form")
    assert client.get(f"{BOARD}/case/{case.id}/card").status_code == 302


def test_two_people_one_card_the_second_gets_the_fresh_card(client, app):
    case = make_case(cs.OUTBOUND, "accepted")
    other = app.test_client()
    login_staff(client, "clerk")
    login_staff(other, "handler")
    assert move(client, case, "verifying").status_code == 200
    r = move(other, case, "rejected", with_data="1", **{f"c{case.id}-reason": "重复"})
    assert r.status_code == 409
    page = soup(r)
    assert "王芳" in page.select_one("#board-live").get_text()
    assert page.select_one(f"#cards-verifying #case-{case.id}")  # where it really is now
    assert page.select_one(f"#case-{case.id}")["data-version"] == "2"
    assert fresh(case).state == "verifying"


# --- polling ------------------------------------------------------------------------------


def test_polling_answers_204_until_something_changes(client, app):
    login_staff(client, "liaison")
    page = soup(client.get(f"{BOARD}/outbound"))
    tokens = board_tokens(page)
    poll = {**HX, "X-Portal-Poll": "1"}
    r = client.get(f"{BOARD}/outbound/poll", query_string=tokens, headers=poll)
    assert r.status_code == 204 and r.get_data() == b""

    case = (
        ProxyCase.select()
        .where((ProxyCase.direction == "outbound") & (ProxyCase.state == "accepted"))
        .first()
    )
    clerk = app.test_client()
    login_staff(clerk, "clerk")
    assert move(clerk, case, "verifying").status_code == 200

    r = client.get(f"{BOARD}/outbound/poll", query_string=tokens, headers=poll)
    assert r.status_code == 200
    swapped = soup(r).select_one('#board[hx-swap-oob="innerHTML"]')
    assert swapped.select_one(f"#cards-verifying #case-{case.id}")
    assert all(s.has_attr("hx-preserve") for s in swapped.select(".kcard-slot"))
    fresh_tokens = board_tokens(swapped)
    assert fresh_tokens["v_verifying"] != tokens["v_verifying"]
    r = client.get(f"{BOARD}/outbound/poll", query_string=fresh_tokens, headers=poll)
    assert r.status_code == 204


def test_polling_follows_the_filters(client):
    login_staff(client, "liaison")
    args = {"item": "purchase_withdrawal"}
    page = soup(client.get(f"{BOARD}/outbound", query_string=args))
    tokens = {**board_tokens(page), **args}
    make_case(cs.OUTBOUND, "accepted", item="settlement_certificate")  # filtered out
    r = client.get(f"{BOARD}/outbound/poll", query_string=tokens, headers=HX)
    assert r.status_code == 204
    make_case(cs.OUTBOUND, "accepted", item="purchase_withdrawal")
    assert client.get(f"{BOARD}/outbound/poll", query_string=tokens, headers=HX).status_code == 200


def test_polling_does_not_keep_an_idle_session_alive(client):
    from datetime import timedelta

    login_staff(client, "clerk")
    sid = client.get_cookie("hpf_session").value
    old = WebSession.get(WebSession.sid == sid).last_seen - timedelta(minutes=10)
    WebSession.update(last_seen=old).where(WebSession.sid == sid).execute()
    poll = {**HX, "X-Portal-Poll": "1"}
    for _ in range(3):
        assert client.get(f"{BOARD}/outbound/poll", headers=poll).status_code in (200, 204)
    assert WebSession.get(WebSession.sid == sid).last_seen == old
    WebSession.update(last_seen=old - timedelta(minutes=6)).where(WebSession.sid == sid).execute()
    assert client.get(f"{BOARD}/outbound/poll", headers=poll).status_code == 401  # expired


def test_poll_without_htmx_goes_to_the_board(client):
    login_staff(client, "clerk")
    r = client.get(f"{BOARD}/outbound/poll?item=query")
    assert r.status_code == 302 and r.headers["Location"].endswith(
        "/staff/board/outbound?item=query"
    )


# --- filters, limits, load more -----------------------------------------------------------


def _card_ids(response) -> set[int]:
    return {int(li["id"].split("-")[1]) for li in soup(response).select("li.kcard")}


def test_filters_narrow_every_column(client, monkeypatch):
    # the cases' dates are the demo's: the board's day is pinned to it (overdue is relative)
    monkeypatch.setattr("portal.intranet.common.local_today", lambda: TODAY)
    a = make_case(cs.INBOUND, "processing", assignee="handler", name="欧阳娜娜")
    b = make_case(cs.INBOUND, "distributed", dept="AYQ", item="settlement_certificate")
    c = make_case(cs.INBOUND, "received", dept=None, start=TODAY.replace(day=2))
    login_staff(client, "liaison")
    get = lambda **q: client.get(f"{BOARD}/inbound", query_string=q, headers=HX)  # noqa: E731
    assert {a.id, b.id, c.id} <= _card_ids(get())
    assert _card_ids(get(q="欧阳")) == {a.id}
    assert a.case_no in soup(get(q=a.case_no)).get_text()
    assert b.id in _card_ids(get(item="settlement_certificate"))
    assert a.id not in _card_ids(get(item="settlement_certificate"))
    ayq = staff("handler2").department_id
    assert b.id in _card_ids(get(dept=ayq)) and a.id not in _card_ids(get(dept=ayq))
    assert a.id in _card_ids(get(assignee=staff("handler").id))
    assert b.id in _card_ids(get(assignee="none")) and a.id not in _card_ids(get(assignee="none"))
    overdue = _card_ids(get(overdue="1"))
    assert c.id in overdue and a.id not in overdue
    assert _card_ids(get(item="no-such-item")) >= {a.id, b.id}  # unknown values are dropped
    page = soup(get(q="欧阳"))
    assert "已筛选：共 1 件" in page.get_text()


def test_search_by_a_whole_number_or_by_a_part(client, monkeypatch):
    """A whole case or receipt number finds that case (by its unique index, issue 10), even
    when another case's number contains it; a part of a number or of a name still finds every
    case that contains it."""
    monkeypatch.setattr("portal.intranet.common.local_today", lambda: TODAY)
    a = make_case(cs.OUTBOUND, "accepted", name="司马懿")
    longer = make_case(cs.OUTBOUND, "verifying", case_no=a.case_no + "7", receipt_no="RX-LONGER")
    closed = make_case(cs.OUTBOUND, "archived", name="司马光")
    login_staff(client, "liaison")
    get = lambda **q: client.get(f"{BOARD}/outbound", query_string=q, headers=HX)  # noqa: E731
    assert _card_ids(get(q=a.case_no)) == {a.id}
    assert _card_ids(get(q=a.receipt_no)) == {a.id}
    assert _card_ids(get(q=a.case_no[:-1])) >= {a.id, longer.id}  # a part: both
    assert _card_ids(get(q=longer.case_no)) == {longer.id}
    assert _card_ids(get(q="司马")) == {a.id, closed.id}
    assert _card_ids(get(q="NO-SUCH-NUMBER")) == set()


def test_filter_form_fields_per_role(client, app):
    login_staff(client, "handler")
    page = soup(client.get(f"{BOARD}/inbound"))
    assert not page.select_one("#f-dept")
    assignee = [o["value"] for o in page.select("#f-assignee option")]
    assert assignee == ["", "me", "none"]
    liaison = app.test_client()
    login_staff(liaison, "liaison")
    page = soup(liaison.get(f"{BOARD}/inbound"))
    assert len(page.select("#f-dept option")) == 4


def test_wip_limit_is_shown_when_exceeded(client):
    Setting.create(key="wip:outbound:verifying", value="1", effective_from=TODAY.replace(day=1))
    make_case(cs.OUTBOUND, "verifying")
    make_case(cs.OUTBOUND, "verifying")
    login_staff(client, "liaison")
    head = soup(client.get(f"{BOARD}/outbound")).select_one("#head-verifying")
    assert "kcol-over" in head["class"]
    assert "超出上限 1" in head.select_one(".kcol-limit-over").get_text()
    assert not soup(client.get(f"{BOARD}/outbound")).select_one("#head-transmitted .kcol-limit")


def test_admin_sets_limits(client):
    login_staff(client, "admin")
    page = soup(client.get(f"{BOARD}/limits"))
    assert page.select_one('input[name="wip_inbound_received"]')
    r = client.post(f"{BOARD}/limits", data={"wip_outbound_verifying": "0"})
    assert r.status_code == 422 and "1–999" in r.get_data(as_text=True)
    r = client.post(f"{BOARD}/limits", data={"wip_outbound_verifying": "4"})
    assert r.status_code == 303
    today = local_today()  # the board's day (Asia/Shanghai)
    assert cases.wip_limits("outbound", today)["verifying"] == 4
    assert Setting.get(Setting.key == "wip:outbound:verifying").created_by_id == staff("admin").id
    r = client.post(f"{BOARD}/limits", data={"wip_outbound_verifying": ""})
    assert "verifying" not in cases.wip_limits("outbound", today)


def test_long_columns_load_more_most_urgent_first(client):
    made = [make_case(cs.OUTBOUND, "verifying", start=TODAY.replace(day=d)) for d in range(1, 26)]
    login_staff(client, "clerk")
    page = soup(client.get(f"{BOARD}/outbound"))
    cards = page.select("#cards-verifying li.kcard")
    assert len(cards) == cases.PAGE
    deadlines = [ProxyCase.get_by_id(int(li["id"][5:])).deadline for li in cards]
    assert deadlines == sorted(deadlines)
    more = page.select_one("#more-verifying a")
    assert "加载更多" in more.get_text() and more["hx-swap"] == "beforeend"
    total = (
        ProxyCase.select()
        .where((ProxyCase.direction == "outbound") & (ProxyCase.state == "verifying"))
        .count()
    )
    r = client.get(more["hx-get"], headers=HX)
    extra = soup(r)
    assert len(extra.select("li.kcard")) == total - cases.PAGE
    assert extra.select_one('#more-verifying[hx-swap-oob="true"] input')["value"] == str(total)
    assert not extra.select_one("#more-verifying a")
    r = client.get(more["href"])  # without JavaScript: the board shows more
    assert len(soup(r).select("#cards-verifying li.kcard")) == total
    assert made


# --- the case detail and its actions ------------------------------------------------------


def test_case_detail_inline_and_as_a_page(client):
    case = make_case(cs.OUTBOUND, "accepted")
    login_staff(client, "clerk")
    move(client, case, "verifying")
    r = client.get(f"{BOARD}/case/{case.id}", headers=HX)
    html = r.get_data(as_text=True)
    detail = soup(r)
    assert detail.select_one("html") is None and detail.select_one("article.case-detail")
    assert APPLICANT_ID not in html and "1101**********0016" in html
    assert "13800138000" not in html
    history = detail.select(".history li")
    assert "王芳" in history[-1].get_text() and "移至“材料核实”" in history[-1].get_text()
    assert [li.get_text(strip=True)[1:].strip() for li in detail.select(".checklist li")]
    page = soup(client.get(f"{BOARD}/case/{case.id}"))
    assert page.select_one("html") and page.select_one("#case-detail article")
    assert page.select_one(".back-link a")["href"].endswith("/staff/board/outbound")


def test_comments(client):
    case = make_case(cs.OUTBOUND, "accepted")
    login_staff(client, "clerk")
    url = f"{BOARD}/case/{case.id}/comments"
    r = client.post(url, data={"body": "  "}, headers={**HX, "HX-Target": "case-detail"})
    assert r.status_code == 422 and soup(r).select_one("#body-error")
    r = client.post(
        url, data={"body": "已通知申请人补正"}, headers={**HX, "HX-Target": "case-detail"}
    )
    assert r.status_code == 200
    assert "已通知申请人补正" in soup(r).select_one(".comments").get_text()
    assert CaseComment.select().where(CaseComment.case == case.id).count() == 1
    r = client.post(url, data={"body": "再次联系"})
    assert r.status_code == 303 and r.headers["Location"].endswith(f"/case/{case.id}")


def test_take_from_the_card(client):
    case = make_case(cs.INBOUND, "distributed")
    login_staff(client, "handler")
    page = soup(client.get(f"{BOARD}/inbound"))
    assert page.select_one(f"#case-{case.id} .kcard-take")
    r = client.post(
        f"{BOARD}/case/{case.id}/take",
        data={"version": "1"},
        headers={**HX, "HX-Target": f"case-{case.id}"},
    )
    assert r.status_code == 200
    card = soup(r).select_one(f"li#case-{case.id}")
    assert "赵敏" in card.get_text() and not card.select_one(".kcard-take")
    assert card.select_one(".kcard-slot").has_attr("hx-preserve")
    assert fresh(case).assignee_id == staff("handler").id
    r = client.post(
        f"{BOARD}/case/{case.id}/take",
        data={"version": "1"},
        headers={**HX, "HX-Target": f"case-{case.id}"},
    )
    assert r.status_code == 409 and "刚刚已被" in r.get_data(as_text=True)


def test_liaison_assigns_and_records_mailing(client):
    case = make_case(cs.INBOUND, "distributed")
    login_staff(client, "liaison")
    detail = soup(client.get(f"{BOARD}/case/{case.id}", headers=HX))
    options = [o.get_text() for o in detail.select('select[name="handler"] option')]
    assert options == ["请选择", "赵敏", "钱慧"]  # the handlers of 阿拉善左旗管理部
    target = {**HX, "HX-Target": "case-detail"}
    r = client.post(
        f"{BOARD}/case/{case.id}/assign",
        data={"handler": str(staff("handler2").id), "version": "1"},
        headers=target,
    )
    assert r.status_code == 422
    r = client.post(
        f"{BOARD}/case/{case.id}/assign",
        data={"handler": str(staff("handler").id), "version": "1"},
        headers=target,
    )
    assert r.status_code == 200 and "指派给赵敏" in soup(r).select_one("#board-live").get_text()
    assert fresh(case).assignee_id == staff("handler").id
    assert not soup(client.get(f"{BOARD}/case/{case.id}", headers=HX)).select_one(
        'input[name="tracking_no"]'
    )

    sent = make_case(cs.OUTBOUND, "transmitted")
    r = client.post(f"{BOARD}/case/{sent.id}/mail", data={"tracking_no": "1"}, headers=target)
    assert r.status_code == 422 and soup(r).select_one("#tracking_no-error")
    r = client.post(
        f"{BOARD}/case/{sent.id}/mail", data={"tracking_no": "sf1234567890"}, headers=target
    )
    assert r.status_code == 200 and fresh(sent).tracking_no == "SF1234567890"
    assert "SF1234567890" in soup(r).select_one(".cd-facts").get_text()


def test_clerks_cannot_assign_or_mail(client):
    case = make_case(cs.OUTBOUND, "transmitted")
    login_staff(client, "clerk")
    assert (
        client.post(f"{BOARD}/case/{case.id}/mail", data={"tracking_no": "SF12345678"}).status_code
        == 403
    )
    assert client.post(f"{BOARD}/case/{case.id}/assign", data={"handler": "1"}).status_code == 403


def test_actions_on_the_case_page_keep_the_page_layout(client):
    case = make_case(cs.OUTBOUND, "accepted")
    login_staff(client, "clerk")
    page_url = f"http://localhost{BOARD}/case/{case.id}"
    r = client.post(
        f"{BOARD}/case/{case.id}/comments",
        data={"body": "页面上的评论"},
        headers={**HX, "HX-Target": "case-detail", "HX-Current-URL": page_url},
    )
    assert r.status_code == 200
    assert soup(r).select_one("details.cd-wrap") is None
    r = client.post(
        f"{BOARD}/case/{case.id}/comments",
        data={"body": "看板上的评论"},
        headers={
            **HX,
            "HX-Target": "case-detail",
            "HX-Current-URL": "http://localhost/staff/board/outbound",
        },
    )
    assert soup(r).select_one("details.cd-wrap[open] article.case-detail")
