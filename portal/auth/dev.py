"""Development only: the SMS outbox, so a developer (or a browser test) can read codes."""

from __future__ import annotations

from flask import Blueprint, render_template, request

from portal.models import SmsMessage

bp = Blueprint("dev", __name__, url_prefix="/dev")


@bp.get("/sms")
def sms_outbox():
    phone = (request.args.get("phone") or "").strip()
    query = SmsMessage.select().order_by(SmsMessage.id.desc()).limit(50)
    if phone:
        query = query.where(SmsMessage.phone == phone)
    return render_template("dev/sms.html", messages=list(query), phone=phone)
