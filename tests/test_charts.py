"""The dashboard's SVG bar charts fit their labels and values (portal/charts.py): a label,
bar or value never runs past the chart's edge, in Chinese or English, however large the
numbers."""

from __future__ import annotations

import re

import pytest
from bs4 import BeautifulSoup

from portal import charts
from portal.charts import BAR, SHORTEST, WIDTH, bar_layout, text_width
from tests.conftest import login_staff


def test_text_width_counts_cjk_as_one_em_and_latin_narrower():
    assert text_width("购房提取", 14) == 4 * 14
    assert text_width("8333 / 8333", 14) == pytest.approx(11 * 0.62 * 14)
    assert text_width("", 14) == 0


def test_short_labels_get_the_longest_bars_and_the_usual_width():
    lay = bar_layout(["窗口受理", "归档"], ["899", "20259"])
    assert lay.bar == BAR
    assert lay.label_end == pytest.approx(6 + text_width("窗口受理"))
    assert lay.width <= WIDTH


def test_long_labels_shorten_the_bars_before_the_chart_widens():
    label = "Employer registration and account opening"
    lay = bar_layout([label], ["8333 / 8333"])
    assert lay.label_end - text_width(label) >= 0  # the label starts inside the chart
    assert SHORTEST <= lay.bar < BAR
    ends = lay.bar_start + lay.bar + 8 + text_width("8333 / 8333")
    assert ends <= lay.width
    longer = bar_layout([label * 2], ["8333 / 8333"])
    assert longer.bar == SHORTEST and longer.width > WIDTH  # only then wider


def test_a_legend_widens_the_chart_when_it_needs_to():
    lay = bar_layout(["退休提取"], ["1 / 0"], least=900)
    assert lay.width >= 6 + 900 + 6


def test_bar_lengths_scale_to_the_largest_and_survive_zero():
    lay = bar_layout(["a"], ["1"])
    assert lay.length(50, 100) == pytest.approx(lay.bar / 2, abs=0.1)
    assert lay.length(0, 0) == 0


@pytest.mark.parametrize("language", ["zh", "en"])
def test_dashboard_charts_keep_every_text_inside(client, language):
    login_staff(client, "official")
    if language == "en":
        client.set_cookie("hpf_lang", "en")
    page = BeautifulSoup(client.get("/staff/dashboard/").get_data(as_text=True), "html.parser")
    svgs = page.select("svg.chart")
    assert svgs
    for svg in svgs:
        width = float(svg["viewbox"].split()[2])
        assert float(svg["width"]) == width
        for text in svg.select("text"):
            x, content = float(text["x"]), text.get_text()
            size = float(text.get("font-size", 14))
            w = charts.text_width(content, size)
            anchor = text.get("text-anchor", "start")
            left = {"end": x - w, "middle": x - w / 2}.get(anchor, x)
            assert left >= 0 and left + w <= width + 0.5, (language, content, x, width)
            if language == "en" and anchor == "end":
                assert not re.search(r"[\u4e00-\u9fff]", content), content  # labels translated


@pytest.mark.parametrize("language", ["zh", "en"])
def test_every_chart_gives_its_data_as_a_table(client, language):
    """Screen readers get a chart as one image, and a phone scales a wide chart down with its
    text: each chart's figures are also a table under "查看数据", the same labels and numbers
    the chart prints, titled like the chart."""
    login_staff(client, "admin")
    if language == "en":
        client.set_cookie("hpf_lang", "en")
    page = BeautifulSoup(client.get("/staff/dashboard/").get_data(as_text=True), "html.parser")
    svgs = page.select("svg.chart")
    assert len(svgs) >= 5
    for svg in svgs:
        data = svg.find_next_sibling("details", class_="chart-data")
        assert data is not None, svg["aria-label"]
        assert data.summary.get_text() == ("Show the data" if language == "en" else "查看数据")
        table = data.table
        assert table.caption.get_text() == svg["aria-label"]
        assert all(th["scope"] == "col" for th in table.thead.select("th"))
        rows = [[c.get_text() for c in tr.select("th, td")] for tr in table.tbody.select("tr")]
        printed = [t.get_text() for t in svg.select("text")]
        for label, *values in rows:
            assert label in printed, (label, printed)
            if len(values) == 1:
                assert values[0] in printed or values[0] == "0"  # a column of 0 has no text
            else:
                assert " / ".join(values) in printed  # outbound / inbound
        if language == "en":  # the caption may hold a center's name, a proper name
            text = table.thead.get_text() + table.tbody.get_text()
            assert not re.search(r"[\u4e00-\u9fff]", text), text


def test_a_chart_with_nothing_to_show_says_so(app, client):
    """Twelve months of 0 (no case done online yet): a line of text, not an empty axis."""
    from flask import render_template_string

    from portal.services.dashboard import Bar

    with app.test_request_context("/"):
        html = render_template_string(
            '{% from "_charts.html" import columns %}{{ columns(bars, "t") }}',
            bars=[Bar(f"26-{m:02d}", 0) for m in range(1, 13)],
        )
        page = BeautifulSoup(html, "html.parser")
        assert page.select_one("p.chart-empty").get_text() == "暂无办件"
        assert not page.select("svg, table")
        html = render_template_string(
            '{% from "_charts.html" import columns %}{{ columns(bars, "t") }}',
            bars=[Bar("26-11", 0), Bar("26-12", 3)],
        )
        page = BeautifulSoup(html, "html.parser")
        assert page.select_one("svg.chart") and not page.select("p.chart-empty")
