"""The intranet (内网): staff only, every route under /staff/."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import current_user

from portal.access import guard_kind
from portal.filters import local_today
from portal.services import settings, work

bp = Blueprint("intranet", __name__, url_prefix="/staff")
bp.before_request(guard_kind("staff"))


@bp.get("/")
def home():
    home = work.staff_home(current_user.obj, local_today(), settings.holiday_overrides())
    return render_template("intranet/home.html", home=home, today=local_today())
