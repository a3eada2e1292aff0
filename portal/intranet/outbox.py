"""平台交换: the liaison's view of the outbox — messages waiting for a peer, messages that
failed, what was delivered lately — with a retry by hand (``portal.platform.outbox``)."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from portal import htmx
from portal.access import guard_kind
from portal.forms import EmptyForm
from portal.intranet.common import NavLink
from portal.platform import outbox

bp = Blueprint("outbox", __name__, url_prefix="/staff/outbox")
bp.before_request(guard_kind("staff", ("liaison",)))


@bp.app_template_global("staff_exchange_links")
def staff_exchange_links() -> list[NavLink]:
    """平台交换 (liaison) and 亮码查询 (clerks and handlers) in the staff navigation."""
    from portal.services.ecode import LOOKUP_ROLES

    if not current_user.is_authenticated or current_user.kind != "staff":
        return []
    links = []
    if current_user.role == "liaison":
        links.append(NavLink("outbox", "平台交换", url_for("outbox.index")))
    if current_user.role in LOOKUP_ROLES:
        links.append(NavLink("ecode", "亮码查询", url_for("ecode_counter.index")))
    return links


def _render(status: int = 200, notice: str = "", notice_kind: str = "success"):
    return htmx.render(
        "intranet/outbox.html",
        "intranet/_outbox.html",
        status=status,
        view=outbox.overview(),
        form=EmptyForm(formdata=None),
        notice=notice,
        notice_kind=notice_kind,
    )


@bp.get("/")
def index():
    return _render()


@bp.post("/<int:outbox_id>/retry")
def retry(outbox_id: int):
    if not EmptyForm().validate_on_submit():
        abort(400)
    try:
        row = outbox.retry(current_user.actor, outbox_id)
    except outbox.NotFound:
        abort(404)
    except outbox.Refused as exc:
        if htmx.is_htmx():
            return _render(409, str(exc), "warning")
        flash(str(exc), "warning")
        return redirect(url_for(".index"), 303)
    text = _("报文 %(id)s 已重新排队，将在几秒内发送。", id=row.message_id[:8])
    if htmx.is_htmx():
        return _render(notice=text)
    flash(text, "success")
    return redirect(url_for(".index"), 303)


@bp.after_request
def no_store(response):
    if request.method == "GET":
        response.headers["Cache-Control"] = "no-store"
    return response
