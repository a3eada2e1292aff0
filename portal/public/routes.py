"""The public front door: no login needed."""

from __future__ import annotations

from flask import Blueprint, render_template, request
from flask_babel import lazy_gettext as _l

from portal import items
from portal.filters import local_today
from portal.public.hall_forms import TrackForm, VerifyForm
from portal.services import certificates, ratelimit, tracking

bp = Blueprint("public", __name__)

# Wrong verification codes / tracking look-ups per client address and window.
LOOKUP_LIMIT = 10
LOOKUP_WINDOW = 600
TOO_MANY = _l("查询次数过多，请 10 分钟后再试。")


@bp.get("/")
def index():
    online = [i for i in items.ITEMS if i.online]
    proxy = [i for i in items.ITEMS if not i.online]
    return render_template(
        "public/index.html",
        online=online,
        proxy=proxy,
        verify_days=items.OUTBOUND_VERIFY_WORKDAYS,
        done_days=items.INBOUND_DONE_WORKDAYS,
    )


def _client() -> str:
    return request.remote_addr or "unknown"


def _verify_page(code: str | None):
    form = VerifyForm(request.args if code is None else None, code=code)
    key = f"verify:{_client()}"
    if code is None and not request.args:
        return render_template("public/verify.html", form=form, result=None, error=None)
    if not form.validate():
        return render_template("public/verify.html", form=form, result=None, error=None), 422
    if ratelimit.blocked(key, LOOKUP_LIMIT, LOOKUP_WINDOW):
        return render_template("public/verify.html", form=form, result=None, error=TOO_MANY), 429
    if not certificates.normalize_code(form.code.data):
        ratelimit.hit(key, LOOKUP_LIMIT, LOOKUP_WINDOW)
        form.code.errors = [_l("核验码应为 16 位字母和数字，请核对后重新输入")]
        return render_template("public/verify.html", form=form, result=None, error=None), 422
    result = certificates.verify(form.code.data, local_today())
    if result.state == "unknown":
        ratelimit.hit(key, LOOKUP_LIMIT, LOOKUP_WINDOW)
        return render_template("public/verify.html", form=form, result=result, error=None), 404
    return render_template("public/verify.html", form=form, result=result, error=None)


@bp.get("/verify")
def verify():
    """证明核验: a code from the form (GET ?code=) says genuine / expired / revoked / unknown."""
    return _verify_page(None)


@bp.get("/verify/<code>")
def verify_code(code: str):
    """The QR code's link."""
    return _verify_page(code)


@bp.route("/track", methods=["GET", "POST"])
def track():
    """办件进度查询 by receipt number and the applicant's ID number (POST: IDs stay out of URLs)."""
    form = TrackForm()
    if request.method == "GET":
        return render_template("public/track.html", form=form, c=None, error=None)
    key = f"track:{_client()}"
    if not form.validate_on_submit():
        return render_template("public/track.html", form=form, c=None, error=None), 422
    if ratelimit.blocked(key, LOOKUP_LIMIT, LOOKUP_WINDOW):
        return render_template("public/track.html", form=form, c=None, error=TOO_MANY), 429
    view = tracking.track(form.receipt_no.data, form.resident_id.data, local_today())
    if view is None:
        ratelimit.hit(key, LOOKUP_LIMIT, LOOKUP_WINDOW)
        error = _l("未查询到办件：请核对受理回执编号和申请人身份证号码。")
        return render_template("public/track.html", form=form, c=None, error=error), 404
    return render_template("public/track.html", form=form, c=view, error=None)
