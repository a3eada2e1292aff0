"""平台文件: the liaison imports signed case packages and downloads exported ones."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, url_for
from flask_babel import gettext as _
from flask_login import current_user

from portal import htmx
from portal.access import guard_kind
from portal.intranet import counter_forms as forms
from portal.intranet.common import download
from portal.platform import files
from portal.rules.casestates import label as state_label

bp = Blueprint("platform_files", __name__, url_prefix="/staff/platform")
bp.before_request(guard_kind("staff", ("liaison",)))


def _render(import_form=None, export_form=None, status=200, error=None, export_error=None):
    return htmx.render(
        "intranet/platform.html",
        "intranet/_platform_messages.html",
        status=status,
        import_form=import_form or forms.PackageImportForm(formdata=None),
        export_form=export_form or forms.PackageExportForm(formdata=None),
        messages=files.recent_messages(),
        error=error,
        export_error=export_error,
    )


@bp.get("/")
def index():
    return _render()


@bp.post("/import")
def import_package():
    form = forms.PackageImportForm()
    if not form.validate_on_submit():
        return _render(import_form=form, status=422)
    data = form.package.data.read(files.MAX_PACKAGE_BYTES + 1)
    try:
        imported = files.receive(data, actor=current_user.actor, user=current_user.obj)
    except files.ImportRefused as exc:
        form.package.errors = [str(exc)]
        return _render(import_form=form, status=422)
    case = imported.case
    if imported.duplicate:
        flash(_("该业务包此前已导入（办件 %(no)s），本次未重复登记。", no=case.case_no), "warning")
    elif imported.kind != "case.send":  # issue 8: acks, requests, results and mailing too
        flash(
            _(
                "已导入“%(kind)s”报文：办件 %(no)s 现处于“%(state)s”。",
                kind=files.messages.TYPE_LABELS.get(imported.kind, imported.kind),
                no=case.case_no,
                state=state_label(case.direction, case.state),
            ),
            "success",
        )
    else:
        flash(
            _(
                "已导入：办件 %(no)s（%(center)s）已进入平台接收。",
                no=case.case_no,
                center=case.center.name,
            ),
            "success",
        )
    target = url_for(".index")
    if htmx.is_htmx():
        return htmx.location(target)
    return redirect(target, 303)


@bp.post("/export")
def export_package():
    form = forms.PackageExportForm()
    if not form.validate_on_submit():
        return _render(export_form=form, status=422)
    try:
        case, _message = files.export_by_case_no(current_user.actor, form.case_no.data)
    except files.ExportRefused as exc:
        form.case_no.errors = [str(exc)]
        return _render(export_form=form, status=422)
    flash(_("已导出办件 %(no)s 的传递包，可在下方列表下载。", no=case.case_no), "success")
    target = url_for(".index")
    if htmx.is_htmx():
        return htmx.location(target)
    return redirect(target, 303)


@bp.get("/packages/<int:message_pk>.zip")
def package(message_pk):
    found = files.package_bytes(message_pk)
    if found is None:
        abort(404)
    message, data = found
    case_no = message.case.case_no if message.case_id else message.message_id
    direction = "导出" if message.direction == "out" else "导入"
    return download(data, f"业务包-{direction}-{case_no}.zip", "application/zip")
