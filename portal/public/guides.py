"""Public service guides (办事指南): one page per item, rendered from portal.items — the same
configuration the counter checklist and the deadlines read, so they cannot disagree."""

from __future__ import annotations

from flask import Blueprint, abort, render_template

from portal import items

bp = Blueprint("guides", __name__, url_prefix="/guide")


@bp.get("/")
def index():
    return render_template("public/guides.html", items=items.ITEMS, channels=items.ONLINE_CHANNELS)


@bp.get("/<code>")
def guide(code: str):
    item = items.BY_CODE.get(code)
    if item is None:
        abort(404)
    return render_template(
        "public/guide.html",
        item=item,
        steps=items.steps(item),
        channels=items.ONLINE_CHANNELS.get(code, ()),
        who=items.ELIGIBILITY.get(code, ""),
        time_limit=items.time_limit(item),
    )
