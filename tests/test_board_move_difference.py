"""A move answers with only what changed in the affected columns when the client says what it
shows (issue 10: a card move's answer stays a few KB on a busy board). Applying the answer the
way htmx does must give exactly the columns the board itself shows afterwards."""

from __future__ import annotations

import re

from bs4 import BeautifulSoup

from portal.rules import casestates as cs
from tests.board_helpers import make_case
from tests.conftest import TODAY, login_staff

BOARD = "/staff/board"
HX = {"HX-Request": "true"}


def columns(html: str) -> dict[str, list[str]]:
    page = BeautifulSoup(html, "html.parser")
    return {
        ol["id"][len("cards-") :]: [li["id"] for li in ol.select(":scope > li.kcard")]
        for ol in page.select("ol.cards")
    }


def seen(shown: dict[str, list[str]]) -> dict[str, str]:
    """What board.js adds to a move (the ids each column shows)."""
    return {f"seen_{s}": ",".join(i[len("case-") :] for i in ids) for s, ids in shown.items()}


def apply(shown: dict[str, list[str]], html: str) -> dict[str, list[str]]:
    """The answer's out-of-band swaps, in order, as htmx applies them."""
    shown = {s: list(ids) for s, ids in shown.items()}
    page = BeautifulSoup(html, "html.parser")
    for el in page.find_all(attrs={"hx-swap-oob": True}, recursive=False):
        how = el["hx-swap-oob"]
        if el.name == "ol" and how == "innerHTML":
            shown[el["id"][len("cards-") :]] = [li["id"] for li in el.select("li.kcard")]
        elif how == "delete":
            for ids in shown.values():
                if el["id"] in ids:
                    ids.remove(el["id"])
        elif how.startswith(("beforebegin:", "beforeend:")):
            style, target = how.split(":#", 1)
            new = [li["id"] for li in el.find_all("li", recursive=False)]
            if style == "beforeend":
                shown[target[len("cards-") :]].extend(new)
            else:
                ids = next(ids for ids in shown.values() if target in ids)
                ids[ids.index(target) : ids.index(target)] = new
    return shown


def board(client) -> str:
    return client.get(f"{BOARD}/outbound").get_data(as_text=True)


def move(client, case, target, shown, **extra):
    data = {"target": target, "version": case.version, "from_state": case.state}
    return client.post(f"{BOARD}/case/{case.id}/move", data=data | seen(shown) | extra, headers=HX)


def crowd(n: int = 8) -> list:
    """Columns with more cards than a board shows at first."""
    made = []
    for k in range(n):
        for state in ("accepted", "verifying"):
            made.append(make_case(cs.OUTBOUND, state, start=TODAY.replace(day=1 + k % 20)))
    return made


def test_a_move_answers_with_the_difference_only(client):
    crowd()
    login_staff(client, "clerk")
    shown = columns(board(client))
    case = make_case(cs.OUTBOUND, "accepted", start=TODAY.replace(day=1))  # most urgent
    shown = columns(board(client))
    assert f"case-{case.id}" in shown["accepted"]
    r = move(client, case, "verifying", shown)
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert len(r.get_data()) <= 6 * 1024
    answer = BeautifulSoup(html, "html.parser")
    assert not answer.select("ol[hx-swap-oob]")  # no whole columns
    assert answer.select_one(f'li#case-{case.id}[hx-swap-oob="delete"]')
    assert answer.select_one('header#head-accepted[hx-swap-oob="true"]')
    assert answer.select_one('header#head-verifying[hx-swap-oob="true"]')
    assert answer.select_one('#more-verifying[hx-swap-oob="true"]')
    assert "移至" in answer.select_one("#board-live").get_text()
    after = apply(shown, html)
    fresh = columns(board(client))
    for state in ("accepted", "verifying"):
        assert after[state] == fresh[state], state
    assert f"case-{case.id}" in after["verifying"]


def test_what_others_changed_in_those_columns_comes_along(client):
    crowd()
    login_staff(client, "clerk")
    mine = make_case(cs.OUTBOUND, "accepted", start=TODAY.replace(day=2))
    theirs = make_case(cs.OUTBOUND, "accepted", start=TODAY.replace(day=1))
    shown = columns(board(client))
    other = client.application.test_client()
    login_staff(other, "handler")
    assert move(other, theirs, "verifying", columns(board(other))).status_code == 200
    r = move(client, mine, "verifying", shown)  # this tab has not seen the other move
    assert r.status_code == 200
    after = apply(shown, r.get_data(as_text=True))
    fresh = columns(board(client))
    for state in ("accepted", "verifying"):
        assert after[state] == fresh[state], state


def test_a_refused_move_puts_the_card_back_where_it_is(client):
    login_staff(client, "clerk")
    case = make_case(cs.OUTBOUND, "accepted", start=TODAY.replace(day=1))
    shown = columns(board(client))
    dragged = {s: list(ids) for s, ids in shown.items()}  # Sortable moved it already
    dragged["accepted"].remove(f"case-{case.id}")
    dragged["archived"].insert(0, f"case-{case.id}")
    r = move(client, case, "archived", dragged)
    assert r.status_code == 409
    after = apply(dragged, r.get_data(as_text=True))
    fresh = columns(board(client))
    assert after["accepted"] == fresh["accepted"] and f"case-{case.id}" in after["accepted"]
    assert after["archived"] == fresh["archived"]


def test_without_what_the_client_shows_whole_columns_come_back(client):
    login_staff(client, "clerk")
    case = make_case(cs.OUTBOUND, "accepted")
    r = client.post(
        f"{BOARD}/case/{case.id}/move",
        data={"target": "verifying", "version": case.version, "from_state": "accepted"},
        headers=HX,
    )
    assert r.status_code == 200
    lists = BeautifulSoup(r.get_data(as_text=True), "html.parser").select(
        'ol[hx-swap-oob="innerHTML"]'
    )
    assert {ol["id"] for ol in lists} == {"cards-accepted", "cards-verifying"}


def test_a_malformed_list_is_ignored(client):
    login_staff(client, "clerk")
    case = make_case(cs.OUTBOUND, "accepted")
    shown = columns(board(client))
    r = move(client, case, "verifying", shown, seen_verifying="1,x,<b>")
    assert r.status_code == 200
    assert re.search(r'<ol id="cards-verifying" hx-swap-oob="innerHTML">', r.get_data(as_text=True))


def test_fragment_cards_leave_the_csrf_field_to_htmx_header(app, client):
    """The page's cards carry the CSRF field (their forms work without JavaScript); an htmx
    answer's cards do not (htmx sends the token as a header, base.html's hx-headers), which
    keeps a move's answer small. With CSRF on, a move with the header alone is accepted and one
    with neither is refused."""
    crowd(2)
    login_staff(client, "clerk")
    app.config["WTF_CSRF_ENABLED"] = True
    try:
        page = BeautifulSoup(board(client), "html.parser")
        token = re.search(r'"X-CSRFToken": "([^"]+)"', page.body["hx-headers"]).group(1)
        forms = page.select("li.kcard form.kcard-move")
        assert forms and all(f.select_one('input[name="csrf_token"]') for f in forms)
        shown = columns(str(page))
        case = make_case(cs.OUTBOUND, "accepted", start=TODAY.replace(day=1))
        data = {"target": "verifying", "version": case.version, "from_state": "accepted"}
        url = f"{BOARD}/case/{case.id}/move"
        refused = client.post(url, data=data | seen(shown), headers=HX)
        assert refused.status_code == 400
        r = client.post(url, data=data | seen(shown), headers=HX | {"X-CSRFToken": token})
        assert r.status_code == 200
        answer = BeautifulSoup(r.get_data(as_text=True), "html.parser")
        assert answer.select("li.kcard form.kcard-move")  # the moved card, with its menu
        assert not answer.select('input[name="csrf_token"]')
    finally:
        app.config["WTF_CSRF_ENABLED"] = False
