"""The employer hall (单位网上业务大厅): only the operator's own employer."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import current_user

from portal.access import guard_kind
from portal.services import accounts

bp = Blueprint("employer", __name__, url_prefix="/employer")
bp.before_request(guard_kind("operator"))


@bp.get("/")
def overview():
    return render_template("employer/overview.html", o=accounts.employer_overview(current_user.obj))
