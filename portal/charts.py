"""Where the dashboard's server-drawn SVG bar charts put their labels, bars and values
(``templates/_charts.html``).

A chart is as wide as its longest label, the longest bar and its longest value need: labels
differ by language (four Chinese characters, or "Employer registration and account opening")
and values by size ("8333 / 8333"), and a fixed layout cut them off. The SVG carries that
width, so it is drawn at its own size and only scaled down where the page is narrower.
"""

from __future__ import annotations

from dataclasses import dataclass

FONT = 14  # px, the labels' and values' size
WIDTH = 600  # px, what a chart aims at: its bars shorten (down to SHORTEST) before it widens
BAR = 360  # px, the longest bar at most
SHORTEST = 160  # px, the longest bar at least
GAP = 8  # px between a label and its bar, and a bar and its value
EDGE = 6  # px at either side


def text_width(text: str, size: float = FONT) -> float:
    """An estimate on the wide side of ``text``'s width at ``size`` px: a CJK character (or
    full-width punctuation) is one em, any other character at most about 0.62 em (the widest
    digits of the usual sans-serif fonts are 0.64 em, most letters narrower)."""
    wide = sum(1 for ch in text if ord(ch) >= 0x2E80)
    return (wide + (len(text) - wide) * 0.62) * size


@dataclass(frozen=True)
class BarLayout:
    label_end: float  # labels are right-aligned here
    bar_start: float  # bars start here
    bar: float  # the longest bar's length
    width: int  # the chart's width (its viewBox)

    def length(self, value: float, top: float) -> float:
        """A bar's length for ``value`` when ``top`` is the largest."""
        return round(value / (top or 1) * self.bar, 1)


def bar_layout(labels, values, *, size: float = FONT, least: float = 0) -> BarLayout:
    """The layout of horizontal bars with these labels and the texts printed after them;
    ``least``: the width the chart needs below its bars (a legend, from the left edge).

    The bars take what ``WIDTH`` leaves (``SHORTEST`` to ``BAR``): long labels make them
    shorter first and the chart wider only then (a phone scales a wide chart down, and its
    text with it)."""
    label = max((text_width(str(t), size) for t in labels), default=0)
    value = max((text_width(str(t), size) for t in values), default=0)
    label_end = EDGE + label
    bar_start = label_end + GAP
    bar = min(BAR, max(SHORTEST, WIDTH - bar_start - GAP - value - EDGE))
    width = max(bar_start + bar + GAP + value + EDGE, EDGE + least + EDGE)
    return BarLayout(round(label_end, 1), round(bar_start, 1), bar, int(width + 0.999))


def hbar_layout(bars, unit: str = "") -> BarLayout:
    """The layout of ``hbar`` (bars with ``label`` and ``value``), labels in the visitor's
    language as the chart prints them."""
    from portal.i18n import tr

    return bar_layout([tr(b.label) for b in bars], [f"{b.value}{unit}" for b in bars])


def stacked_layout(rows, legend: tuple[str, str]) -> BarLayout:
    """The layout of ``stacked`` (rows of label, outbound, inbound) with its two-entry legend
    (a 14 px swatch, 6 px, the text at 13 px, then 24 px to the next entry)."""
    from portal.i18n import tr

    least = sum(14 + 6 + text_width(text, 13) + 24 for text in legend)
    return bar_layout(
        [tr(label) for label, _o, _i in rows], [f"{o} / {i}" for _l, o, i in rows], least=least
    )


def init_app(app) -> None:
    app.jinja_env.globals.update(
        hbar_layout=hbar_layout, stacked_layout=stacked_layout, text_width=text_width
    )
