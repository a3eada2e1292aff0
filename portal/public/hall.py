"""The depositor hall (个人网上业务大厅): only the logged-in depositor's own data."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import current_user

from portal.access import guard_kind
from portal.services import accounts

bp = Blueprint("hall", __name__, url_prefix="/me")
bp.before_request(guard_kind("depositor"))


@bp.get("/")
def account():
    summary = accounts.depositor_summary(current_user.obj)
    return render_template("hall/account.html", s=summary)
