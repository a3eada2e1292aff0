"""The board's column tokens (what polling compares): the count of the column and the cards it
shows, in order, with their versions; the same from the board and from the polling query
(issue 10: counts alone, not aggregates over every case a direction ever had)."""

from __future__ import annotations

from datetime import timedelta

from portal.models import ProxyCase
from portal.rules import casestates as cs
from portal.services import cases
from portal.services.cases import Filters
from tests.board_helpers import make_case, staff
from tests.conftest import TODAY

NONE = Filters()


def tokens(user, filters=NONE, shown=None) -> dict[str, str]:
    return cases.board_tokens(user, cs.OUTBOUND, filters, TODAY, shown)


def board_tokens(user, filters=NONE, shown=None) -> dict[str, str]:
    board = cases.board(user, cs.OUTBOUND, filters, TODAY, shown=shown)
    return {c.state: c.token for c in board.columns}


def touch(case: ProxyCase) -> None:
    """A change that keeps the case in its column (a new version, as every write makes)."""
    ProxyCase.update(
        version=ProxyCase.version + 1, updated_at=case.updated_at + timedelta(seconds=1)
    ).where(ProxyCase.id == case.id).execute()


def test_the_board_and_polling_agree_for_every_viewer_and_filter():
    make_case(cs.OUTBOUND, "accepted", item="settlement_certificate")
    make_case(cs.OUTBOUND, "archived")
    for name in ("liaison", "auditor", "clerk", "handler"):
        user = staff(name)
        assert tokens(user) == board_tokens(user), name
        item = Filters(item="settlement_certificate")
        assert tokens(user, item) == board_tokens(user, item), name
        more = {"accepted": 36}
        assert tokens(user, shown=more) == board_tokens(user, shown=more), name


def test_a_shown_card_that_changes_changes_its_column_only():
    case = make_case(cs.OUTBOUND, "accepted", start=TODAY - timedelta(days=20))  # most urgent
    liaison = staff("liaison")
    before = tokens(liaison)
    touch(case)
    after = tokens(liaison)
    assert after["accepted"] != before["accepted"]
    assert {s: t for s, t in after.items() if s != "accepted"} == {
        s: t for s, t in before.items() if s != "accepted"
    }
    assert after == board_tokens(liaison)


def test_a_card_entering_or_leaving_changes_the_token_even_beyond_the_shown_ones():
    liaison = staff("liaison")
    for k in range(cases.PAGE + 2):
        make_case(cs.OUTBOUND, "verifying", start=TODAY - timedelta(days=30 - k))
    before = tokens(liaison)
    last = make_case(cs.OUTBOUND, "verifying", start=TODAY)  # not among the shown cards
    assert tokens(liaison)["verifying"] != before["verifying"]  # the count says so
    with_it = tokens(liaison)
    touch(last)  # a change no one sees on the board: no refresh for it
    assert tokens(liaison)["verifying"] == with_it["verifying"]
    more = {"verifying": 36}  # the tab loaded more: now it shows that card
    shown_before = tokens(liaison, shown=more)["verifying"]
    touch(ProxyCase.get_by_id(last.id))
    assert tokens(liaison, shown=more)["verifying"] != shown_before


def test_a_new_day_changes_every_token():
    liaison = staff("liaison")
    today = cases.board_tokens(liaison, cs.OUTBOUND, NONE, TODAY)
    tomorrow = cases.board_tokens(liaison, cs.OUTBOUND, NONE, TODAY + timedelta(days=1))
    assert all(today[s] != tomorrow[s] for s in today)


def test_finished_columns_count_up_to_a_cap_open_ones_exactly(client, monkeypatch):
    """A finished column's count stops at COUNT_CAP ("8+"): it would otherwise count every case
    ever closed on each board view. Open columns, their WIP totals and polling are exact."""
    from tests.conftest import login_staff

    monkeypatch.setattr(cases, "COUNT_CAP", 8)
    for k in range(10):
        make_case(cs.OUTBOUND, "archived", start=TODAY - timedelta(days=40 + k))
        make_case(cs.OUTBOUND, "verifying", start=TODAY - timedelta(days=40 + k))
    liaison = staff("liaison")
    board = cases.board(liaison, cs.OUTBOUND, NONE, TODAY)
    archived, verifying = board.column("archived"), board.column("verifying")
    assert archived.capped and archived.count == 9 and archived.count_text == "8+"
    assert archived.remaining_text == f"{8 - cases.PAGE}+"
    exact = ProxyCase.select().where(
        (ProxyCase.direction == cs.OUTBOUND) & (ProxyCase.state == "verifying")
    )
    assert not verifying.capped and verifying.count == exact.count() > 8
    assert verifying.count_text == str(exact.count())
    assert tokens(liaison) == board_tokens(liaison)
    filtered = Filters(item="purchase_withdrawal")
    assert cases.board(liaison, cs.OUTBOUND, filtered, TODAY).column("archived").count == 9

    login_staff(client, "liaison")
    page = client.get("/staff/board/outbound").get_data(as_text=True)
    assert '<span class="visually-hidden">办件数</span>8+' in page
    assert f"加载更多（还有 {8 - cases.PAGE}+ 件）" in page
    more = client.get(
        "/staff/board/outbound/column/archived",
        query_string={"offset": cases.PAGE},
        headers={"HX-Request": "true"},
    ).get_data(as_text=True)
    assert more.count('class="kcard') >= 4  # the rest of the cards still come


def test_card_urls_are_url_for_from_a_pattern(app):
    """A card's links come from a pattern built once per request; they are url_for's, under a
    mount point too."""
    from flask import url_for

    from portal.intranet.board import case_url

    for root in ("", "/hpf"):
        with app.test_request_context("/staff/board/outbound", base_url=f"http://localhost{root}"):
            for endpoint in ("board.case_detail", "board.move", "board.take"):
                for case_id in (1, 42, 987654321, 10**12):
                    assert case_url(endpoint, case_id) == url_for(endpoint, case_id=case_id)
            assert case_url("board.move", 7).startswith(root + "/staff/board/")
