"""The navigation bars kept per worker and the URLs kept per worker (issue 10):
``portal.navigation.nav_bar`` and ``portal.Portal.url_for`` give what rendering and building
anew give, under keys that hold everything they depend on."""

from __future__ import annotations

import pytest
from bs4 import BeautifulSoup
from flask import url_for

from portal import navigation
from tests.conftest import login_depositor, login_operator, login_staff
from tests.fragment_helpers import kept_cache, steady_page, uncached


@pytest.fixture
def kept(app):
    with kept_cache(app, navigation._bars) as cache:
        yield cache


def nav(html: str):
    return BeautifulSoup(html, "html.parser").select_one("nav.nav")


def links(html: str) -> list[tuple[str, str, bool]]:
    return [
        (a.get_text(strip=True), a["href"], a.get("aria-current") == "page")
        for a in nav(html).select("a")
    ]


# --- the bars ---------------------------------------------------------------------------------


def test_the_hall_bar_marks_the_page_and_is_kept(app, client, depositor, kept):
    login_depositor(client, depositor)
    account = steady_page(client, "/me/")
    assert links(account)[:3] == [
        ("我的账户", "/me/", True),
        ("缴存明细", "/me/deposits", False),
        ("贷款", "/me/loans", False),
    ]
    assert nav(account)["aria-label"] == "个人业务" and len(links(account)) == 7
    loans = steady_page(client, "/me/loans")
    assert [text for text, _, current in links(loans) if current] == ["贷款"]
    assert len(kept) == 2  # one per marked link
    assert steady_page(client, "/me/loans") == loans  # from the cache
    assert len(kept) == 2
    with uncached(app):
        assert steady_page(client, "/me/loans") == loans


def test_a_page_that_marks_no_link(client, depositor, kept):
    login_depositor(client, depositor)
    html = steady_page(client, "/me/inbox/")
    assert links(html) and not any(current for _, _, current in links(html))


def test_the_employer_bar(app, client, operator, kept):
    login_operator(client, operator)
    html = steady_page(client, "/employer/roster")
    bar = nav(html)
    assert bar["aria-label"] == "单位业务" and "emp-nav" in bar.select_one("div")["class"]
    assert ("职工名册", "/employer/roster", True) in links(html)
    with uncached(app):
        assert steady_page(client, "/employer/roster") == html


def test_staff_bars_follow_the_role(app, kept):
    seen = {}
    for role in ("liaison", "handler", "auditor"):
        client = app.test_client()
        login_staff(client, role)
        seen[role] = links(steady_page(client, "/staff/"))
        assert seen[role][0] == ("工作台", "/staff/", True)
    assert ("平台交换", "/staff/outbox/", False) in seen["liaison"]
    assert not any(href == "/staff/outbox/" for _, href, _ in seen["handler"])
    assert ("结清证明", "/staff/officials/certificates", False) in seen["auditor"]
    assert len(kept) == 3  # a bar per role's links


def test_a_count_in_a_staff_link_shows_at_once(client, kept, monkeypatch):
    from portal.services import processing

    login_staff(client, "handler")
    monkeypatch.setattr(processing, "approvals_count", lambda user: 0)
    assert ("待复核", "/staff/processing/approvals", False) in links(steady_page(client, "/staff/"))
    monkeypatch.setattr(processing, "approvals_count", lambda user: 3)
    assert ("待复核（3）", "/staff/processing/approvals", False) in links(
        steady_page(client, "/staff/")
    )


def test_the_language_and_the_mount_point_are_in_the_key(app, client, depositor, kept):
    login_depositor(client, depositor)
    zh = steady_page(client, "/me/")
    client.set_cookie("hpf_lang", "en")
    en = steady_page(client, "/me/")
    assert links(en)[0] == ("My account", "/me/", True) and links(zh)[0][0] == "我的账户"
    mounted = steady_page(client, "/me/", base_url="http://localhost/hpf")
    assert links(mounted)[0] == ("My account", "/hpf/me/", True)
    assert len(kept) == 3
    with uncached(app):
        assert steady_page(client, "/me/") == en


def test_an_unknown_bar_is_an_error(app):
    with app.test_request_context("/"), pytest.raises(ValueError):
        navigation.nav_bar(app.jinja_env.from_string("").new_context(), "sidebar")


# --- the URLs -----------------------------------------------------------------------------------


@pytest.fixture
def urls(app):
    app._urls.clear()
    yield app._urls
    app._urls.clear()


def built(app, endpoint, **values):
    """What Flask builds, without the kept URLs."""
    return super(type(app), app).url_for(endpoint, **values)


def test_kept_urls_are_what_flask_builds(app, urls):
    cases = [
        ("static", {"filename": "css/portal.css"}),
        ("hall.loan_detail", {"loan_id": 7}),
        ("hall.loan_detail", {"loan_id": 7, "year": 2030}),
        ("board.board", {"direction": "outbound", "q": "张 三&x=1", "item": "A01"}),
        ("board.board", {"direction": "outbound", "item": "A01", "q": "张 三&x=1"}),
        ("hall.account", {"_anchor": "loans"}),
    ]
    with app.test_request_context("/me/"):
        for endpoint, values in cases:
            first = url_for(endpoint, **values)
            assert first == built(app, endpoint, **values)
            assert url_for(endpoint, **values) == first  # kept
        assert len(urls) == len(cases)  # the order of query values is part of the key
    with app.test_request_context("/me/", base_url="http://localhost/hpf"):
        assert url_for("hall.loan_detail", loan_id=7) == "/hpf/me/loans/7"
    with app.test_request_context("/staff/board/outbound"):
        assert url_for(".board", direction="inbound") == "/staff/board/inbound"
        assert url_for(".index") == "/staff/board/"
    with app.test_request_context("/staff/ledger/"):
        assert url_for(".index") == "/staff/ledger/"  # a relative endpoint, per blueprint


def test_what_is_not_kept(app, urls):
    with app.test_request_context("/me/", base_url="https://portal.example"):
        assert url_for("hall.account", _external=True) == "https://portal.example/me/"
        ids = ["1", "2"]
        assert url_for("hall.account", id=ids) == "/me/?id=1&id=2"  # a list is no key
        assert len(urls) == 0
    app.config["SERVER_NAME"] = "portal.example"
    try:
        with app.app_context():  # no request: Flask's own path (external URLs)
            assert url_for("hall.account") == "http://portal.example/me/"
    finally:
        app.config["SERVER_NAME"] = None
    assert len(urls) == 0


def test_a_url_that_cannot_be_built_still_fails(app, urls):
    from werkzeug.routing import BuildError

    with app.test_request_context("/"), pytest.raises(BuildError):
        url_for("hall.loan_detail")  # no loan_id
    assert len(urls) == 0


def test_kept_urls_are_bounded(app, urls, monkeypatch):
    monkeypatch.setattr(urls, "size", 3)
    with app.test_request_context("/staff/board/outbound"):
        for n in range(10):
            assert url_for("board.board", direction="outbound", q=str(n)).endswith(f"q={n}")
    assert len(urls) == 3
