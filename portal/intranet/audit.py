"""The auditor's view of the audit log: search, page, export, and the chain's state."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from io import BytesIO

from flask import Blueprint, request, send_file
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import DateField, StringField
from wtforms.validators import Length, Optional

from portal import htmx
from portal.access import guard_kind
from portal.filters import SHANGHAI, local_dt
from portal.models import AuditLog
from portal.services import audit

bp = Blueprint("audit", __name__, url_prefix="/staff/audit")
bp.before_request(guard_kind("staff", roles=("auditor",)))

PAGE = 50
EXPORT_LIMIT = 50000


class AuditFilter(FlaskForm):
    class Meta:
        csrf = False  # a GET search form

    start = DateField("自", [Optional()])
    end = DateField("至", [Optional()])
    actor = StringField("操作人", [Optional(), Length(max=40)])
    action = StringField("操作", [Optional(), Length(max=40)])
    target = StringField("对象编号", [Optional(), Length(max=40)])


def _utc(day, end: bool = False) -> datetime:
    """The UTC instant a Beijing-time day starts (or, with ``end``, ends)."""
    local = datetime.combine(day + timedelta(days=1) if end else day, time.min, SHANGHAI)
    return local.astimezone(UTC).replace(tzinfo=None)


def _query(form: AuditFilter):
    query = AuditLog.select()
    if form.start.data:
        query = query.where(AuditLog.at >= _utc(form.start.data))
    if form.end.data:
        query = query.where(AuditLog.at < _utc(form.end.data, end=True))
    if form.actor.data:
        query = query.where(AuditLog.actor.contains(form.actor.data.strip()))
    if form.action.data:
        query = query.where(AuditLog.action.startswith(form.action.data.strip()))
    if form.target.data:
        query = query.where(AuditLog.target_id == form.target.data.strip())
    return query.order_by(AuditLog.id.desc())


@bp.get("/")
def search():
    form = AuditFilter(request.args)
    valid = form.validate()
    page = max(1, request.args.get("page", 1, type=int))
    rows, more = [], False
    if valid:
        rows = list(_query(form).offset((page - 1) * PAGE).limit(PAGE + 1))
        more = len(rows) > PAGE
        rows = rows[:PAGE]
    args = {k: v for k, v in request.args.items() if k not in ("page", "verify") and v}
    return htmx.render(
        "intranet/audit.html",
        "intranet/_audit_rows.html",
        status=200 if valid else 422,
        form=form,
        rows=rows,
        page_no=page,
        more=more,
        args=args,
        chain=audit.verify() if request.args.get("verify") == "1" else None,
    )


@bp.get("/export.xlsx")
def export():
    form = AuditFilter(request.args)
    if not form.validate():
        return search()
    from openpyxl import Workbook  # loaded for an export only (worker memory, issue 10)

    book = Workbook()
    sheet = book.active
    sheet.title = "审计日志"
    sheet.append(
        [
            "编号",
            "时间（北京时间）",
            "操作人",
            "操作",
            "对象类型",
            "对象编号",
            "地址",
            "详情",
            "哈希",
        ]
    )
    for row in _query(form).limit(EXPORT_LIMIT):
        sheet.append(
            [
                row.id,
                local_dt(row.at, "%Y-%m-%d %H:%M:%S"),
                row.actor,
                row.action,
                row.target_type,
                row.target_id,
                row.ip,
                str(row.detail),
                row.row_hash,
            ]
        )
    buffer = BytesIO()
    book.save(buffer)
    buffer.seek(0)
    audit.record(current_user.actor, "audit.export", "audit", "", filters=dict(request.args))
    return send_file(
        buffer,
        as_attachment=True,
        download_name="audit-log.xlsx",
        mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )
