"""A card's HTML kept per worker (issue 10, ``board.card_html``): the same HTML the template
renders, under a key that holds everything a card shows (the card value, the language, the
mount point, fragment or page, an open inline form kept or not), with each session's own CSRF
token filled in."""

from __future__ import annotations

from datetime import timedelta

import pytest
from bs4 import BeautifulSoup

from portal.intranet import board as board_views
from portal.models import Department, ProxyCase
from portal.rules import casestates as cs
from tests.board_helpers import HX, make_case
from tests.conftest import TODAY, login_staff
from tests.fragment_helpers import assert_own_csrf_tokens, kept_cache, steady_page, uncached

BOARD = "/staff/board/outbound"


@pytest.fixture
def kept(app):
    """An empty cache, on (the default); afterwards as it was."""
    with kept_cache(app, board_views._card_cache) as cache:
        yield cache


def several_cases() -> list[ProxyCase]:
    return [
        make_case(cs.OUTBOUND, "accepted", start=TODAY - timedelta(days=30)),  # overdue
        make_case(cs.OUTBOUND, "accepted", start=TODAY),
        make_case(cs.OUTBOUND, cs.PAUSED, start=TODAY - timedelta(days=3)),
        make_case(cs.OUTBOUND, "verifying", assignee="liaison", tracking_no="SF1234567890"),
        make_case(cs.OUTBOUND, "archived"),
    ]


def page(client, path=BOARD, **kwargs) -> str:
    return steady_page(client, path, **kwargs)


def test_kept_cards_are_what_the_template_renders(app, client, kept):
    several_cases()
    login_staff(client, "liaison")
    for headers in ({}, HX):
        first = page(client, headers=headers)  # fills the cache
        assert kept
        second = page(client, headers=headers)  # from it
        with uncached(app):
            rendered = page(client, headers=headers)
        assert first == second == rendered
        assert rendered.count('class="kcard ') >= 5


def test_each_session_gets_its_own_csrf_token(app, kept):
    several_cases()
    assert_own_csrf_tokens(app, BOARD)  # the same person in two browsers: the same cards


def test_what_a_card_shows_changes_without_a_new_version(client, kept):
    case = make_case(cs.OUTBOUND, "accepted", name="张三")
    login_staff(client, "liaison")
    assert "张三" in page(client)
    # names come from other rows (or a correction by hand): the case keeps its version
    ProxyCase.update(applicant_name="李四").where(ProxyCase.id == case.id).execute()
    Department.update(name="改名后的管理部").where(Department.code == "AZQ").execute()
    html = page(client)
    assert "李四" in html and "张三" not in html
    assert "改名后的管理部" in html


def test_the_language_is_part_of_the_key(app, client, kept):
    case = make_case(cs.OUTBOUND, "accepted", start=TODAY - timedelta(days=30))
    login_staff(client, "clerk")
    zh = BeautifulSoup(page(client), "html.parser").select_one(f"#case-{case.id}")
    assert "超期" in zh.get_text() and zh.select_one(f"#move-btn-{case.id}").get_text() == "移动"
    client.set_cookie("hpf_lang", "en")
    english = page(client)  # the Chinese cards are kept: the English ones are others
    en = BeautifulSoup(english, "html.parser").select_one(f"#case-{case.id}")
    assert "超期" not in en.get_text() and "overdue" in en.get_text().lower()
    assert en.select_one(f"#move-btn-{case.id}").get_text() == "Move"
    assert len([key for key in kept if key[0].id == case.id]) == 2  # one per language
    with uncached(app):  # the English page with every card from the template
        assert page(client) == english


def test_the_mount_point_is_part_of_the_key(client, kept):
    case = make_case(cs.OUTBOUND, "accepted")
    login_staff(client, "liaison")
    at_root = BeautifulSoup(page(client), "html.parser").select_one(f"#case-{case.id}-no")
    assert at_root["href"] == f"/staff/board/case/{case.id}"
    mounted = page(client, base_url="http://localhost/hpf")
    link = BeautifulSoup(mounted, "html.parser").select_one(f"#case-{case.id}-no")
    assert link["href"] == f"/hpf/staff/board/case/{case.id}"


def test_a_card_with_its_inline_form_open_is_never_kept(client, kept):
    case = make_case(cs.OUTBOUND, "accepted")
    login_staff(client, "clerk")
    page(client)
    r = client.post(
        f"/staff/board/case/{case.id}/move",
        data={"target": "rejected", "version": case.version, "from_state": "accepted"},
        headers=HX,
    )
    assert r.status_code == 200
    asked = BeautifulSoup(r.get_data(as_text=True), "html.parser")
    assert asked.select_one(f"#slot-{case.id} form.kcard-form")
    for headers in ({}, HX):  # the next board shows the card without the form
        html = BeautifulSoup(page(client, headers=headers), "html.parser")
        assert html.select_one(f"#case-{case.id}")
        assert not html.select_one(f"#slot-{case.id} form")


def test_the_cache_is_bounded(client, kept, monkeypatch):
    monkeypatch.setattr(board_views._card_cache, "size", 3)
    cases = several_cases()
    login_staff(client, "liaison")
    html = page(client)
    assert len(kept) == 3
    assert all(f'id="case-{c.id}"' in html for c in cases)
    assert page(client) == html


def test_an_edited_card_template_is_rendered_anew(app, client, kept):
    """Where templates reload (development), an edited card template is a new template object:
    its cards are not taken from the cache of the old one."""
    case = make_case(cs.OUTBOUND, "accepted")
    login_staff(client, "liaison")
    before = page(client)
    ours = [key for key in kept if key[0].id == case.id]
    assert len(ours) == 1
    app.jinja_env.cache.clear()  # what a reload does when the file changed: a new template
    assert page(client) == before
    assert len([key for key in kept if key[0].id == case.id]) == 2
