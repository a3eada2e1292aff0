"""The counter (窗口受理): guide or accept, the case's printable documents and its materials.

Clerks and handlers accept at their department's window; the liaison and the auditor may
open any case's page and materials; everything here is staff only.
"""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.exceptions import RequestEntityTooLarge

from portal import htmx, items
from portal.access import guard_kind, require_roles
from portal.filters import local_today
from portal.forms import choices
from portal.intranet import common
from portal.intranet import counter_forms as forms
from portal.services import counter, forms_pdf, materials, settings
from portal.services.counter import ACCEPT_ROLES, VIEW_ROLES

bp = Blueprint("counter", __name__, url_prefix="/staff/counter")
bp.before_request(guard_kind("staff", VIEW_ROLES))

UPLOAD_ROLES = ("clerk", "handler", "liaison")


@bp.app_template_global("staff_counter_links")
def staff_counter_links() -> list[common.NavLink]:
    """窗口受理, 台账 and (liaison) 平台文件 in the staff navigation, per role."""
    if not current_user.is_authenticated or current_user.kind != "staff":
        return []
    role = current_user.role
    links = []
    if role in ACCEPT_ROLES:
        links.append(common.NavLink("counter", "窗口受理", url_for("counter.start")))
    if role in counter.LEDGER_ROLES:
        links.append(common.NavLink("ledger", "台账", url_for("ledger.index")))
    if role == "liaison":
        links.append(common.NavLink("platform", "平台文件", url_for("platform_files.index")))
    return links


# --- step 1: item and center --------------------------------------------------------------


def _start_form(formdata):
    return forms.StartForm(formdata=formdata, centers=counter.peer_centers())


@bp.get("/")
@require_roles(*ACCEPT_ROLES)
def start():
    form = _start_form(None)
    recent = counter.recent_cases(current_user.obj)
    return htmx.render(
        "intranet/counter.html", "intranet/_counter_start.html", form=form, recent=recent
    )


@bp.post("/guided")
@require_roles(*ACCEPT_ROLES)
def guided():
    form = forms.GuidedForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        guide = counter.record_guidance(
            current_user.obj, current_user.actor, form.item.data, form.center.data
        )
    except counter.Refused as exc:
        flash(str(exc), "warning")
        return redirect(url_for(".start"), 303)
    flash(_("已记录：引导申请人通过%(center)s网办渠道办理。", center=guide.center_name), "success")
    if htmx.is_htmx():
        return htmx.location(url_for(".start"))
    return redirect(url_for(".start"), 303)


# --- step 2: guide, or the application form -----------------------------------------------


def _chosen(source):
    """Validated (item, center, override?) from the start form, or a 422 response."""
    form = _start_form(source)
    if not form.validate():
        recent = counter.recent_cases(current_user.obj)
        return None, htmx.render(
            "intranet/counter.html",
            "intranet/_counter_start.html",
            status=422,
            form=form,
            recent=recent,
        )
    item = items.get(form.item.data)
    center = counter.peer(form.center.data)
    return (item, center, form.override.data == "1"), None


def _render_application(form, item, center, status=200, error=None):
    return htmx.render(
        "intranet/counter_new.html",
        "intranet/_counter_form.html",
        status=status,
        form=form,
        item=item,
        center=center,
        app_fields=forms.app_fields(form, item),
        needs_reason=center.offers_online(item.code),
        error=error,
    )


@bp.get("/new")
@require_roles(*ACCEPT_ROLES)
def new_case():
    chosen, failed = _chosen(request.args)
    if failed:
        return failed
    item, center, override = chosen
    guide = counter.guidance(item.code, center)
    if guide and not override:
        guided_form = forms.GuidedForm(item=item.code, center=center.code)
        return htmx.render(
            "intranet/counter_guide.html",
            "intranet/_counter_guide.html",
            guide=guide,
            item=item,
            center=center,
            guided_form=guided_form,
        )
    form = forms.application_form(
        item, bool(guide), item=item.code, center=center.code, override="1" if guide else ""
    )
    return _render_application(form, item, center)


@bp.post("/new")
@require_roles(*ACCEPT_ROLES)
def create_case():
    chosen, failed = _chosen(request.form)
    if failed:
        return failed
    item, center, _override = chosen
    needs_reason = center.offers_online(item.code)
    form = forms.application_form(item, needs_reason, formdata=request.form)
    if not form.validate():
        return _render_application(form, item, center, status=422)
    application = counter.Application(
        item=item.code,
        center=center.code,
        applicant_name=form.applicant_name.data,
        applicant_id_no=form.resident_id.data,
        applicant_phone=form.phone.data,
        fields=forms.application_values(form, item),
        presented=set(form.materials.data or []),
        override_reason=form.override_reason.data if needs_reason else "",
    )
    try:
        case = counter.accept(
            current_user.obj,
            current_user.actor,
            application,
            local_today(),
            settings.holiday_overrides(),
        )
    except counter.Refused as exc:
        return _render_application(form, item, center, status=422, error=str(exc))
    if case.missing_materials:
        flash(
            _(
                "已受理，编号 %(no)s。材料不全，办件转入待补正：请打印《一次性告知书》交申请人。",
                no=case.case_no,
            ),
            "warning",
        )
    else:
        flash(
            _("已受理，编号 %(no)s。请打印申请表、授权书和受理回执。", no=case.case_no), "success"
        )
    target = url_for(".case_page", case_no=case.case_no)
    if htmx.is_htmx():
        return htmx.location(target)
    return redirect(target, 303)


# --- the case page: documents and materials -----------------------------------------------


def _case_or_404(case_no: str):
    case = counter.visible_case(current_user.obj, case_no)
    if case is None:
        abort(404)
    return case


def _upload_form(case, bind: bool = True):
    """The upload form; ``bind=False`` when the request body must not be read (413)."""
    form = forms.UploadForm() if bind else forms.UploadForm(formdata=None)
    form.material.choices = choices(materials.material_choices(case))
    return form


def _render_case(case, upload_form=None, status=200):
    return htmx.render(
        "intranet/counter_case.html",
        "intranet/_counter_case.html",
        status=status,
        case=case,
        item=items.get(case.item),
        center=case.center,
        department=case.department if case.department_id else None,
        rows=counter.application_rows(case),
        documents=counter.documents(case),
        attachments=materials.list_for(case),
        upload_form=upload_form or _upload_form(case),
        may_upload=current_user.role in UPLOAD_ROLES,
        board_link=url_for("board.case_detail", case_id=case.id)
        if "board.case_detail" in current_app.view_functions
        else None,
        checklist=[
            (m.name, bool((case.checklist or {}).get(m.code)))
            for m in items.get(case.item).materials
        ],
    )


@bp.get("/cases/<case_no>")
def case_page(case_no):
    return _render_case(_case_or_404(case_no))


@bp.get("/cases/<case_no>/documents/<kind>.pdf")
def document(case_no, kind):
    case = _case_or_404(case_no)
    track_url = url_for("public.track", _external=True)
    try:
        filename, data = forms_pdf.render(kind, case, current_app.config["CENTER_NAME"], track_url)
    except forms_pdf.NotAvailable:
        abort(404)
    return common.download(data, filename, "application/pdf")


@bp.post("/cases/<case_no>/materials")
@require_roles(*UPLOAD_ROLES)
def upload_material(case_no):
    case = _case_or_404(case_no)
    form = _upload_form(case)
    if not form.validate_on_submit():
        return _render_case(case, form, status=422)
    storage = form.file.data
    data = storage.read(materials.MAX_BYTES + 1)
    try:
        attachment = materials.upload(
            current_user.obj, current_user.actor, case, form.material.data, storage.filename, data
        )
    except materials.UploadRefused as exc:
        form.file.errors = [str(exc)]
        return _render_case(case, form, status=413 if isinstance(exc, materials.TooLarge) else 422)
    flash(_("已上传：%(name)s", name=attachment.filename), "success")
    target = url_for(".case_page", case_no=case.case_no) + "#materials"
    if htmx.is_htmx():
        return htmx.location(target)
    return redirect(target, 303)


@bp.errorhandler(RequestEntityTooLarge)
def upload_too_large(exc):
    """An upload over the app's request limit: say so next to the file field."""
    case_no = (request.view_args or {}).get("case_no")
    staff = current_user.is_authenticated and current_user.kind == "staff"
    case = counter.visible_case(current_user.obj, case_no) if staff and case_no else None
    if case is None or current_user.role not in UPLOAD_ROLES:
        return render_template("error.html", status=413, message=_("上传的文件过大")), 413
    form = _upload_form(case, bind=False)
    form.file.errors = [
        _("文件超过 %(mb)s MB 上限，请压缩后再上传", mb=materials.MAX_BYTES // (1024 * 1024))
    ]
    return _render_case(case, form, status=413)


@bp.get("/cases/<case_no>/materials/<int:attachment_id>")
def material(case_no, attachment_id):
    case = _case_or_404(case_no)
    found = materials.read(case, attachment_id)
    if found is None:
        abort(404)
    attachment, data = found
    return common.download(data, attachment.filename, attachment.content_type, inline=False)
