"""亮码可办 in the depositor hall (/me/ecode): show today's business e-code at another center's
counter instead of a paper certificate, see who used it, void an unused one."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import BooleanField
from wtforms.validators import DataRequired

from portal import htmx
from portal.access import guard_kind
from portal.filters import local_today
from portal.forms import EmptyForm
from portal.services import ecode

bp = Blueprint("ecode", __name__, url_prefix="/me/ecode")
bp.before_request(guard_kind("depositor"))


class IssueForm(FlaskForm):
    consent = BooleanField(
        _l("本人授权出示本码的住房公积金中心查询本人的缴存、贷款信息（一次有效，当日 24:00 前）"),
        [DataRequired(message=_l("请先勾选授权"))],
    )


def _me():
    return current_user.obj


def _render(form=None, status: int = 200, error: str = ""):
    return htmx.render(
        "hall/ecode.html",
        "hall/_ecode.html",
        status=status,
        view=ecode.overview(_me()),
        form=form or IssueForm(formdata=None),
        action=EmptyForm(formdata=None),
        error=error,
    )


@bp.get("/")
def index():
    return _render()


@bp.post("/")
def issue():
    form = IssueForm()
    if ecode.current(_me()) is not None:  # a valid code is shown again; nothing to consent to
        if not EmptyForm().validate_on_submit():
            abort(400)
        return _render() if htmx.is_htmx() else redirect(url_for(".index"), 303)
    if not form.validate_on_submit():
        return _render(form, 422)
    try:
        ecode.issue(_me(), current_user.actor, local_today())
    except ecode.Refused as exc:
        form.consent.errors = [str(exc)]
        return _render(form, 422)
    if htmx.is_htmx():
        return _render()
    flash(_("业务码已生成，当日 24:00 前有效，仅可使用一次。"), "success")
    return redirect(url_for(".index"), 303)


@bp.post("/<int:ecode_id>/revoke")
def revoke(ecode_id: int):
    if not EmptyForm().validate_on_submit():
        abort(400)
    try:
        ecode.revoke(_me(), current_user.actor, ecode_id)
    except ecode.NotFound:
        abort(404)
    except ecode.Refused as exc:
        if htmx.is_htmx():
            return _render(status=409, error=str(exc))
        flash(str(exc), "warning")
        return redirect(url_for(".index"), 303)
    if htmx.is_htmx():
        return _render()
    flash(_("业务码已作废。"), "success")
    return redirect(url_for(".index"), 303)
