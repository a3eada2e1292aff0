"""The public front door: no login needed."""

from __future__ import annotations

from flask import Blueprint, render_template

from portal import items

bp = Blueprint("public", __name__)


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
