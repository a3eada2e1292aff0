"""好差评 on the public side: a depositor rates their finished cases and online items under
/me/ratings/; an applicant at our counter (no login) rates a finished case from the tracking
page, which already checked the receipt number and ID number: the page carries a signed,
short-lived token naming the case instead of the ID number.

Each subject is rated once; a bad rating needs a reason and opens the department's follow-up
(``services.ratings``). Someone else's case or item is a 404.
"""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from wtforms import HiddenField, RadioField, TextAreaField
from wtforms.validators import InputRequired, Length

from portal import htmx
from portal.access import guard_kind
from portal.forms import choices
from portal.models import RATING_LABELS
from portal.services import ratings

SUBJECT = "any(case, certificate, payout, change)"
TOKEN_SECONDS = 30 * 60  # the tracking page's rating form stays usable for half an hour
TOKEN_SALT = "track-rating"  # noqa: S105  # nosec B105 - a signing namespace, not a secret


class RateForm(FlaskForm):
    score = RadioField(
        _l("您对本次服务的评价"),
        [InputRequired(message=_l("请选择评价等级"))],
        choices=choices((str(s), RATING_LABELS[s]) for s in ratings.SCORES),
    )
    comment = TextAreaField(
        _l("意见和建议"),
        [Length(max=ratings.MAX_COMMENT, message=_l("评价内容不超过 500 字"))],
        render_kw={"rows": 3, "maxlength": ratings.MAX_COMMENT},
    )


class TrackRateForm(RateForm):
    token = HiddenField()


def _apply_refusal(form: RateForm, exc: ratings.Refused) -> str | None:
    """Put the service's refusal next to its field; returns it when it belongs to none."""
    target = getattr(form, exc.field, None) if exc.field else None
    if target is not None:
        target.errors = [*target.errors, exc.message]
        return None
    return exc.message


# --- the depositor ------------------------------------------------------------------------

hall_bp = Blueprint("hall_ratings", __name__, url_prefix="/me/ratings")
hall_bp.before_request(guard_kind("depositor"))


@hall_bp.get("/")
def index():
    mine = ratings.my_ratings(current_user.obj)
    return htmx.render("hall/rate_list.html", None, mine=mine, label=ratings.label, active="")


def _prompt(kind: str, subject_id: int) -> ratings.Prompt:
    try:
        return ratings.prompt(ratings.depositor_subject(current_user.obj, kind, subject_id))
    except ratings.NotFound:
        abort(404)


def _render(prompt, form, status=200, error=None):
    return htmx.render(
        "hall/rate.html",
        "hall/rate_panel.html",
        status=status,
        pr=prompt,
        form=form,
        error=error,
        action=url_for("hall_ratings.rate", kind=prompt.subject.kind, subject_id=prompt.subject.id),
        active="",
    )


@hall_bp.route("/<" + SUBJECT + ":kind>/<int:subject_id>", methods=["GET", "POST"])
def rate(kind: str, subject_id: int):
    prompt = _prompt(kind, subject_id)
    form = RateForm()
    if request.method == "GET":
        return _render(prompt, RateForm(formdata=None))
    if not form.validate():
        return _render(prompt, form, 422)
    try:
        ratings.rate(
            prompt.subject,
            int(form.score.data),
            form.comment.data,
            "hall",
            current_user.actor,
        )
    except ratings.Refused as exc:
        return _render(_prompt(kind, subject_id), form, 422, _apply_refusal(form, exc))
    if htmx.is_htmx():
        return _render(_prompt(kind, subject_id), RateForm(formdata=None))
    flash(_("感谢您的评价！"), "success")
    return redirect(url_for("hall_ratings.rate", kind=kind, subject_id=subject_id), code=303)


@hall_bp.app_template_global("rating_prompt")
def rating_prompt(kind: str, subject_id: int) -> ratings.Prompt | None:
    """For the hall's pages (cases, receipts, certificates): the rating given or possible."""
    if not current_user.is_authenticated or current_user.kind != "depositor":
        return None
    return ratings.depositor_prompt(current_user.obj, kind, subject_id)


# --- the counter applicant, from the tracking page ----------------------------------------

track_bp = Blueprint("track_rating", __name__)


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=TOKEN_SALT)


def token_for(case_id: int) -> str:
    return _serializer().dumps({"case": case_id})


def _case_from(token: str | None) -> int | None:
    try:
        data = _serializer().loads(token or "", max_age=TOKEN_SECONDS)
    except (SignatureExpired, BadSignature):
        return None
    case = data.get("case") if isinstance(data, dict) else None
    return case if isinstance(case, int) else None


@track_bp.app_template_global("track_rating")
def track_rating(view) -> dict | None:
    """For the tracking page's result (a ``tracking.CaseView`` the visitor has just proved to
    be theirs): the rating given, or a form token when the case can be rated now."""
    try:
        prompt = ratings.prompt(ratings.track_subject(view.case.id))
    except ratings.NotFound:
        return None
    return {
        "prompt": prompt,
        "token": token_for(view.case.id) if prompt.can_rate else "",
        "form": TrackRateForm(formdata=None),
    }


def _track_page(status: int, form=None, prompt=None, error=None, expired=False):
    return htmx.render(
        "hall/rate_track.html",
        None,
        status=status,
        form=form,
        pr=prompt,
        error=error,
        expired=expired,
    )


@track_bp.get("/track/rate")
def track_rate_page():
    """The form lives on the tracking page; a direct visit explains how to get there."""
    return _track_page(200, expired=True)


@track_bp.post("/track/rate")
def track_rate():
    form = TrackRateForm()
    case_id = _case_from(form.token.data)
    if case_id is None:
        return _track_page(400, expired=True)
    try:
        prompt = ratings.prompt(ratings.track_subject(case_id))
    except ratings.NotFound:
        abort(404)
    if not form.validate():
        return _track_page(422, form, prompt)
    try:
        ratings.rate(
            prompt.subject, int(form.score.data), form.comment.data, "track", "public:track"
        )
    except ratings.Refused as exc:
        return _track_page(422, form, ratings.prompt(prompt.subject), _apply_refusal(form, exc))
    return _track_page(200, None, ratings.prompt(prompt.subject))
