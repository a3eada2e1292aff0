"""The rows of the loan page's two tables (issue 10), formatted here rather than cell by cell.

A year of the repayment schedule and of the repayments is 24 rows of six or seven cells. In
Jinja every cell is an attribute lookup, a filter, an escape and a piece of the output: about
0.37 ms for the two tables, the largest single part of the loan page. Here a row is one
format string. What it holds is either formatted by the portal itself (periods, ISO dates and
amounts from ``yuan``: digits, commas, dots and dashes, nothing to escape) or text, which is
escaped: the column labels and the status or kind texts once per table, a repayment's kind
(read from the database) per row.

The tables themselves (headers, captions, wrappers) stay in ``templates/hall/_loan_years.html``,
which translates the labels and texts and passes them here, so a row's cells say what its
header says in the visitor's language.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from markupsafe import Markup, escape

from portal.filters import yuan

_SCHEDULE_ROW = (
    '<tr class="row-%s"><td data-label="{h0}">%s</td>'
    '<td data-label="{h1}" class="nowrap">%s</td>'
    '<td data-label="{h2}" class="num">%s</td>'
    '<td data-label="{h3}" class="num">%s</td>'
    '<td data-label="{h4}" class="num">%s</td>'
    '<td data-label="{h5}" class="num">%s</td>'
    '<td data-label="{h6}">%s</td></tr>\n'
)

_REPAYMENT_ROW = (
    '<tr class="repay-%s"><td data-label="{h0}" class="nowrap">%s</td>'
    '<td data-label="{h1}">%s</td>'
    '<td data-label="{h2}">%s</td>'
    '<td data-label="{h3}" class="num">%s</td>'
    '<td data-label="{h4}" class="num">%s</td>'
    '<td data-label="{h5}" class="num">%s</td></tr>\n'
)


def _rows(row: str, labels: Sequence[str], texts: Mapping[str, str], items: Iterable, key, cells):
    """Each item's ``row``: ``cells(item, css, text)`` gives its %-values, where ``css`` and
    ``text`` are the escaped class and text of the item's ``key`` (``texts``; a key without a
    text shows as it is). The labels fill the row's ``{h0}``, ``{h1}`` … once for all."""
    count = row.count("{h")
    if len(labels) != count:
        raise ValueError(f"expected {count} column labels, got {len(labels)}")
    # str.replace on the escaped text: Markup's own would escape its arguments again
    escaped = {f"h{i}": str.replace(escape(label), "%", "%%") for i, label in enumerate(labels)}
    fmt = row.format(**escaped)
    known = {k: (escape(k), escape(text)) for k, text in texts.items()}
    html = []
    for item in items:
        k = key(item)
        css, text = known.get(k) or (escape(k), escape(k))
        html.append(fmt % cells(item, css, text))
    return Markup("".join(html))  # noqa: S704  # nosec B704 - formatted and escaped as above


def schedule_rows(rows: Iterable, labels: Sequence[str], status_text: Mapping[str, str]) -> Markup:
    """The ``<tr>`` of each schedule row (``services.loans.ScheduleRow``): period, due date,
    principal, interest, payment, principal remaining and status, under ``labels``."""
    return _rows(
        _SCHEDULE_ROW,
        labels,
        status_text,
        rows,
        lambda row: row.status,
        lambda row, css, text: (
            css,
            int(row.period),
            row.due_on.isoformat(),
            yuan(row.principal),
            yuan(row.interest),
            yuan(row.payment),
            yuan(row.remaining),
            text,
        ),
    )


def repayment_rows(
    repayments: Iterable, labels: Sequence[str], kind_text: Mapping[str, str]
) -> Markup:
    """The ``<tr>`` of each repayment (``services.loans.Repayment``): date, kind, period (or a
    dash for one outside the schedule), principal, interest and amount, under ``labels``."""
    return _rows(
        _REPAYMENT_ROW,
        labels,
        kind_text,
        repayments,
        lambda r: r.kind,
        lambda r, css, text: (
            css,
            r.paid_on.isoformat(),
            text,
            int(r.period) if r.period else "—",
            yuan(r.principal),
            yuan(r.interest),
            yuan(r.amount),
        ),
    )


def year_options(years: Iterable[int], selected: int | None) -> Markup:
    """The year picker's ``<option>``s (years are numbers: nothing to escape)."""
    return Markup(  # noqa: S704  # nosec B704 - integers only
        "".join(
            f'<option value="{y:d}"{" selected" if y == selected else ""}>{y:d}</option>'
            for y in years
        )
    )


# always Markup: the templates write them as they are (portal.PortalCodeGenerator)
for _writer in (schedule_rows, repayment_rows, year_options):
    _writer.markup_under_autoescape = True
del _writer
