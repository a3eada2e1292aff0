"""The public service guides are rendered from the same configuration as the counter and the
deadlines, so the two cannot disagree."""

from __future__ import annotations

import re

import pytest
from bs4 import BeautifulSoup

from portal import items


def soup(r):
    return BeautifulSoup(r.get_data(as_text=True), "html.parser")


def test_index_lists_every_item(client):
    page = soup(client.get("/guide/"))
    links = [a["href"] for a in page.select(".guide-list a")]
    assert links == [f"/guide/{item.code}" for item in items.ITEMS]


@pytest.mark.parametrize("item", items.ITEMS, ids=lambda i: i.code)
def test_guide_agrees_with_the_configuration(client, item):
    r = client.get(f"/guide/{item.code}")
    assert r.status_code == 200
    page = soup(r)
    assert page.select_one("h1").get_text(strip=True) == item.name
    listed = [li["data-code"] for li in page.select(".guide-materials li")]
    assert listed == [m.code for m in item.materials]
    mode = page.select_one(".guide-mode").get_text(strip=True)
    limit = page.select_one(".guide-limit").get_text(strip=True)
    if item.online:
        assert mode == "全程网办" and limit == "即时办结"
        channels = [li.get_text() for li in page.select(".guide-channels li")]
        assert channels == list(items.ONLINE_CHANNELS[item.code])
    else:
        assert mode.startswith("代收代办")
        numbers = [int(n) for n in re.findall(r"(\d+) 个工作日", limit)]
        assert numbers == [items.OUTBOUND_VERIFY_WORKDAYS, items.INBOUND_DONE_WORKDAYS]
    svg = page.select_one("svg.flow")
    assert svg is not None and svg.get("role") == "img"
    assert len(svg.select("rect")) == len(items.steps(item))
    assert "不收费" in page.get_text() and "12329" in page.get_text()


def test_every_item_has_eligibility_text():
    assert set(items.ELIGIBILITY) == set(items.BY_CODE)
    assert set(items.ONLINE_CHANNELS) == {i.code for i in items.ITEMS if i.online}


def test_unknown_item_is_404(client):
    assert client.get("/guide/nothing").status_code == 404


def test_home_links_to_the_guides(client):
    page = soup(client.get("/"))
    assert {a["href"] for a in page.select(".item-list a")} == {
        f"/guide/{i.code}" for i in items.ITEMS
    }
