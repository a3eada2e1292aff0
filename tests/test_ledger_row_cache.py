"""A ledger row's HTML kept per worker (issue 10, ``ledger.ledger_row_html``): the same HTML
its template renders, under the row's value, the template, the language and the mount point."""

from __future__ import annotations

from datetime import timedelta

import pytest
from bs4 import BeautifulSoup

from portal.intranet import ledger as ledger_views
from portal.models import Department, ProxyCase
from portal.rules import casestates as cs
from tests.board_helpers import HX, make_case
from tests.conftest import TODAY, login_staff
from tests.fragment_helpers import kept_cache, steady_page, uncached

LEDGER = "/staff/ledger/"


@pytest.fixture
def kept(app):
    """An empty cache, on (the default); afterwards as it was."""
    with kept_cache(app, ledger_views._row_cache) as cache:
        yield cache


def page(client, path=LEDGER, **kwargs) -> str:
    return steady_page(client, path, **kwargs)


def some_cases():
    return [
        make_case(cs.OUTBOUND, "accepted", name="王五", start=TODAY - timedelta(days=2)),
        make_case(cs.INBOUND, "received", name="赵六", dept=None),
        make_case(cs.OUTBOUND, "archived", name="<b>钱七</b>"),
    ]


def rows(html: str) -> list[str]:
    return [
        tr.decode() for tr in BeautifulSoup(html, "html.parser").select("#ledger-results tbody tr")
    ]


def test_kept_rows_are_what_the_template_renders(app, client, kept):
    some_cases()
    login_staff(client, "liaison")
    for headers in ({}, HX):
        first = page(client, headers=headers)  # fills the cache
        assert len(kept) == len(rows(first)) > 3
        second = page(client, headers=headers)  # from it
        with uncached(app):
            rendered = page(client, headers=headers)
        assert first == second == rendered
    assert "&lt;b&gt;钱七&lt;/b&gt;" in first and "<b>钱七</b>" not in first  # still escaped


def test_rows_are_shared_between_people_and_filters(app, client, kept):
    """What a row shows does not depend on who looks or how they filtered: one entry each."""
    cases = some_cases()
    login_staff(client, "liaison")
    everything = set(rows(page(client)))
    assert len(kept) == len(everything)
    outbound = set(rows(page(client, query_string={"direction": "outbound"})))
    assert everything & outbound  # the rows both pages show are kept once
    assert len(kept) == len(everything | outbound)
    auditor = app.test_client()
    login_staff(auditor, "auditor")
    assert set(rows(page(auditor))) == everything
    assert len(kept) == len(everything | outbound)
    assert any(key[0].case_no == cases[0].case_no for key in kept)


def test_a_changed_row_shows_at_once(client, kept):
    case = make_case(cs.OUTBOUND, "accepted", name="张三")
    login_staff(client, "liaison")
    assert "张三" in page(client)
    ProxyCase.update(applicant_name="李四", state="verifying").where(
        ProxyCase.id == case.id
    ).execute()
    Department.update(name="改名后的管理部").where(Department.code == "AZQ").execute()
    (row,) = [r for r in rows(page(client)) if case.case_no in r]
    assert "李四" in row and "张三" not in row
    assert "改名后的管理部" in row and cs.label(cs.OUTBOUND, "verifying") in row


def test_the_language_is_part_of_the_key(app, client, kept):
    case = make_case(cs.INBOUND, "received", dept=None)
    login_staff(client, "liaison")
    (zh,) = [r for r in rows(page(client)) if case.case_no in r]
    assert 'data-label="办件编号"' in zh and "本地" in zh
    client.set_cookie("hpf_lang", "en")
    english = page(client)
    (en,) = [r for r in rows(english) if case.case_no in r]
    assert 'data-label="办件编号"' not in en and "本地" not in en
    assert len([key for key in kept if key[0].case_no == case.case_no]) == 2
    with uncached(app):
        assert page(client) == english


def test_the_mount_point_is_part_of_the_key(client, kept):
    case = make_case(cs.OUTBOUND, "accepted")
    login_staff(client, "liaison")
    plain = page(client)
    mounted = page(client, base_url="http://localhost/hpf")
    link = f"/staff/counter/cases/{case.case_no}"
    assert f'href="{link}"' in plain
    assert f'href="/hpf{link}"' in mounted and f'href="{link}"' not in mounted


def test_the_cache_is_bounded(client, kept, monkeypatch):
    monkeypatch.setattr(ledger_views._row_cache, "size", 2)
    some_cases()
    login_staff(client, "liaison")
    html = page(client)
    assert len(kept) == 2
    assert page(client) == html
