"""The ledger (业务办理台账): every proxy case, filterable, exportable to Excel."""

from __future__ import annotations

from datetime import date

from flask import Blueprint, request
from flask_login import current_user
from jinja2 import pass_context
from markupsafe import Markup

from portal import fragments, htmx
from portal.access import guard_kind
from portal.filters import local_today
from portal.intranet import counter_forms as forms
from portal.intranet.common import download
from portal.services import counter
from portal.services.counter import LEDGER_ROLES, LedgerQuery

bp = Blueprint("ledger", __name__, url_prefix="/staff/ledger")
bp.before_request(guard_kind("staff", LEDGER_ROLES))

ROW_TEMPLATE = "intranet/_ledger_row.html"
# a ledger row's HTML per worker (portal/fragments.py): rows recur across pages, filters and
# staff (what a row shows does not depend on who looks), about 1 KB each
_row_cache: fragments.FragmentCache[str] = fragments.FragmentCache(4096)


@bp.app_template_global()
@pass_context
def ledger_row_html(ctx, row: counter.LedgerRow) -> Markup:
    """One row of the ledger's table (``intranet/_ledger_row.html``), kept per worker."""
    key = fragments.request_key(ctx.environment, ROW_TEMPLATE)

    def render() -> str:
        return key[0].render({**ctx.get_all(), "r": row})

    if not fragments.enabled():
        return Markup(render())  # noqa: S704  # nosec B704 - the row template's output
    return Markup(_row_cache.get((row, key), render))  # noqa: S704  # nosec B704 - as above


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _filters():
    """The filter form bound to the query string, and the query it describes (invalid
    filters are left out, and reported next to their field)."""
    form = forms.LedgerFilterForm(formdata=request.args, centers=counter.peer_centers())
    valid = form.validate()

    def day(field):
        if field.errors or not field.data:
            return None
        return date.fromisoformat(field.data)

    def choice(field):
        return "" if field.errors else (field.data or "")

    query = LedgerQuery(
        date_from=day(form.date_from),
        date_to=day(form.date_to),
        item=choice(form.item),
        direction=choice(form.direction),
        state=choice(form.state),
        center=choice(form.center),
    )
    return form, query, valid


def _page_number() -> int:
    raw = request.args.get("page", "1")
    return int(raw) if raw.isdigit() and 0 < len(raw) < 6 else 1


@bp.get("/")
def index():
    form, query, valid = _filters()
    ledger = counter.ledger_page(current_user.obj, query, _page_number())
    return htmx.render(
        "intranet/ledger.html",
        "intranet/_ledger_table.html",
        form=form,
        filter_errors=[] if valid else [e for f in form for e in f.errors],
        ledger=ledger,
        args=query.as_args(),
    )


@bp.get("/export.xlsx")
def export():
    _form, query, _valid = _filters()
    today = local_today()
    data = counter.ledger_xlsx(current_user.obj, current_user.actor, query, today)
    return download(data, f"业务办理台账-{today:%Y%m%d}.xlsx", XLSX)
