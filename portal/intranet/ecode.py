"""亮码查询 at the counter (/staff/ecode): the clerk enters the e-code another center's
depositor shows, and gets that center's information table through the exchange instead of a
paper certificate (``services.ecode.lookup``)."""

from __future__ import annotations

from flask import Blueprint, abort, redirect, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import DataRequired, Length

from portal import htmx
from portal.access import guard_kind
from portal.services import ecode

bp = Blueprint("ecode_counter", __name__, url_prefix="/staff/ecode")
bp.before_request(guard_kind("staff", ecode.LOOKUP_ROLES))


class LookupForm(FlaskForm):
    code = StringField(
        _l("业务码"),
        [DataRequired(message=_l("请输入申请人出示的业务码")), Length(max=40)],
        render_kw={"inputmode": "numeric", "autocomplete": "off", "spellcheck": "false"},
    )


def _page(form, status=200, found=None):
    return htmx.render(
        "intranet/ecode.html",
        "intranet/_ecode_panel.html",
        status=status,
        form=form,
        found=found,
        recent=ecode.recent_lookups(current_user.obj),
    )


@bp.get("/")
def index():
    return _page(LookupForm(formdata=None))


@bp.post("/")
def lookup():
    form = LookupForm()
    if not form.validate_on_submit():
        return _page(form, 422)
    try:
        found = ecode.lookup(current_user.obj, current_user.actor, form.code.data)
    except ecode.Refused as exc:
        form.code.errors = [str(exc)]
        return _page(form, 422)
    if found.outcome != "ok":
        form.code.errors = [f"{found.center.name}：{found.reason}"]
        return _page(form, 422)
    target = url_for(".show", lookup_id=found.id)
    if htmx.is_htmx():  # the table at once; the address bar names it (reload shows it again)
        response = _page(LookupForm(formdata=None), found=found)
        response.headers["HX-Push-Url"] = target
        return response
    return redirect(target, 303)


@bp.get("/<int:lookup_id>")
def show(lookup_id: int):
    try:
        found = ecode.own_lookup(current_user.obj, lookup_id)
    except ecode.NotFound:
        abort(404)
    return _page(LookupForm(formdata=None), found=found)
