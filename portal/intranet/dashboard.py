"""The center's dashboard (admin and officials): figures and server-rendered SVG charts."""

from __future__ import annotations

from io import BytesIO

from flask import Blueprint, render_template, send_file

from portal.access import guard_kind
from portal.filters import local_today
from portal.services import dashboard, settings

bp = Blueprint("dashboard", __name__, url_prefix="/staff/dashboard")
bp.before_request(guard_kind("staff", roles=("admin", "official")))


@bp.get("/")
def show():
    dash = dashboard.build(local_today(), settings.holiday_overrides())
    return render_template("intranet/dashboard.html", d=dash)


@bp.get("/export.xlsx")
def export():
    from openpyxl import Workbook  # loaded for an export only (worker memory, issue 10)

    dash = dashboard.build(local_today(), settings.holiday_overrides())
    book = Workbook()
    book.remove(book.active)
    for title, rows in dashboard.rows_for_export(dash).items():
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(row)
    buffer = BytesIO()
    book.save(buffer)
    buffer.seek(0)
    return send_file(
        buffer,
        as_attachment=True,
        download_name=f"dashboard-{dash.today:%Y%m%d}.xlsx",
        mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )
