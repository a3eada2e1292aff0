"""服务评价 for staff at /staff/ratings/: the ratings and their follow-ups (handlers see their
department's, the liaison, officials and the auditor all) with the satisfaction rate; a handler
of the department or the liaison records the 回访 and then the 整改 of a bad rating."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, abort, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import HiddenField, TextAreaField
from wtforms.validators import DataRequired, Length

from portal import htmx
from portal.access import guard_kind, require_roles
from portal.services import ratings

bp = Blueprint("staff_ratings", __name__, url_prefix="/staff/ratings")
bp.before_request(guard_kind("staff", ratings.VIEW_ROLES))


class FollowupForm(FlaskForm):
    step = HiddenField()
    note = TextAreaField(
        _l("情况说明"),
        [
            DataRequired(message=_l("请填写回访或整改情况")),
            Length(max=ratings.MAX_COMMENT, message=_l("情况说明不超过 500 字")),
        ],
        render_kw={"rows": 3, "maxlength": ratings.MAX_COMMENT},
    )


@dataclass
class NavLink:
    key: str
    label: str
    url: str


@bp.app_template_global("staff_rating_url")
def staff_rating_url() -> str | None:
    """The ratings page for staff who may see it (the inbox links there)."""
    if not current_user.is_authenticated or current_user.kind != "staff":
        return None
    if current_user.role not in ratings.VIEW_ROLES:
        return None
    return url_for("staff_ratings.index")


@bp.app_template_global("staff_rating_links")
def staff_rating_links() -> list[NavLink]:
    """服务评价 in the staff navigation, with the number of follow-ups waiting."""
    url = staff_rating_url()
    if url is None:
        return []
    return [NavLink("ratings", "服务评价", url)]


def _page_number() -> int:
    raw = request.args.get("page", "1")
    return int(raw) if raw.isdigit() and 0 < len(raw) < 6 else 1


@bp.get("/")
def index():
    show = request.args.get("show", "")
    if show not in ratings.FILTERS:
        show = ""
    listing = ratings.listing(current_user.obj, show, _page_number())
    return htmx.render(
        "intranet/ratings.html",
        "intranet/ratings_table.html",
        l=listing,
        show=show,
        filters=ratings.FILTERS,
        nav_active="ratings",
    )


def _row(rating_id: int):
    try:
        return ratings.get_for_staff(current_user.obj, rating_id)
    except ratings.NotFound:
        abort(404)


def _detail(row, form=None, status=200, error=None):
    step = ratings.next_step(row.rating)
    if form is None:
        form = FollowupForm(formdata=None, step=step)
    return htmx.render(
        "intranet/ratings_detail.html",
        "intranet/ratings_followup.html",
        status=status,
        r=row,
        form=form,
        step=step,
        can_follow=ratings.can_follow_up(current_user.obj, row.rating),
        error=error,
        nav_active="ratings",
    )


@bp.get("/<int:rating_id>")
def detail(rating_id: int):
    return _detail(_row(rating_id))


@bp.post("/<int:rating_id>/followup")
@require_roles(*ratings.FOLLOWUP_ROLES)  # issue 9: the auditor and officials only read (403)
def followup(rating_id: int):
    row = _row(rating_id)
    form = FollowupForm()
    if not form.validate():
        return _detail(row, form, 422)
    try:
        ratings.record_followup(current_user.obj, rating_id, form.step.data or "", form.note.data)
    except ratings.NotFound:
        abort(404)
    except ratings.Refused as exc:
        if exc.field == "note":
            form.note.errors = [*form.note.errors, exc.message]
            return _detail(_row(rating_id), form, 422)
        return _detail(_row(rating_id), form, 422, exc.message)
    if htmx.is_htmx():
        return _detail(_row(rating_id))
    flash(_("已记录"), "success")
    return redirect(url_for("staff_ratings.detail", rating_id=rating_id), code=303)
