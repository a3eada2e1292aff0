"""Officials (审批签发): the settlement-certificate queue, issuing with a TOTP step-up, refusing,
revoking; the register of issued certificates (officials and the auditor); and registering a
borrower's request at a counter. Under /staff/officials/ (issue 7)."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, request, url_for
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Regexp

from portal import htmx
from portal.access import guard_kind, require_roles
from portal.filters import local_today
from portal.forms import resident_id_valid
from portal.intranet import common
from portal.services import settlement as svc

bp = Blueprint("officials", __name__, url_prefix="/staff/officials")
bp.before_request(guard_kind("staff", ("official", "auditor", "clerk", "handler")))


def _totp_field():
    return StringField(
        _l("动态口令（再次输入）"),
        [
            DataRequired(message=_l("请输入动态口令")),
            Regexp(r"^\d{6}$", message=_l("请输入 6 位数字动态口令")),
        ],
        render_kw={"autocomplete": "one-time-code", "inputmode": "numeric", "maxlength": 6},
        description=_l("签发须再次输入身份验证器中的 6 位动态口令"),
    )


class IssueForm(FlaskForm):
    code = _totp_field()


class RefuseForm(FlaskForm):
    reason = TextAreaField(
        _l("未予签发的原因"),
        [DataRequired(message=_l("请填写原因")), Length(max=500, message=_l("不超过 500 字"))],
        render_kw={"rows": 2, "maxlength": 500},
    )


class RevokeForm(FlaskForm):
    reason = TextAreaField(
        _l("撤销原因"),
        [DataRequired(message=_l("请填写撤销原因")), Length(max=500, message=_l("不超过 500 字"))],
        render_kw={"rows": 2, "maxlength": 500},
    )
    code = _totp_field()


class CounterForm(FlaskForm):
    contract_no = StringField(
        _l("借款合同编号"), [DataRequired(message=_l("此项必填")), Length(max=24)]
    )
    resident_id = StringField(
        _l("借款人身份证号码"), [DataRequired(message=_l("此项必填")), resident_id_valid]
    )


def _forbidden_or_404(call, *args):
    try:
        return call(*args)
    except svc.Forbidden:
        abort(403)
    except svc.NotFound:
        abort(404)


# --- the queue ----------------------------------------------------------------------------


@bp.get("/")
@require_roles("official", "auditor")
def queue():
    state = request.args.get("status", "pending")
    view = _forbidden_or_404(svc.queue, common.staff_user(), state)
    return htmx.render("intranet/officials.html", "intranet/_officials_queue.html", q=view)


def _request_page(request_id: int, status: int = 200, **forms):
    detail = _forbidden_or_404(svc.request_detail, common.staff_user(), request_id)
    return htmx.render(
        "intranet/officials_request.html",
        "intranet/_officials_request.html",
        status=status,
        r=detail,
        issue_form=forms.get("issue_form") or IssueForm(formdata=None),
        refuse_form=forms.get("refuse_form") or RefuseForm(formdata=None),
        error=forms.get("error"),
        message=forms.get("message"),
    )


@bp.get("/requests/<int:request_id>")
@require_roles("official", "auditor")
def request_detail(request_id: int):
    return _request_page(request_id)


@bp.post("/requests/<int:request_id>/issue")
@require_roles("official")
def issue(request_id: int):
    _forbidden_or_404(svc.request_detail, common.staff_user(), request_id)
    form = IssueForm()
    if not form.validate():
        return _request_page(request_id, 422, issue_form=form)
    try:
        certificate = svc.issue(
            common.staff_user(),
            request_id,
            form.code.data,
            local_today(),
            common.verify_url,
            current_app.config["CENTER_NAME"],
        )
    except svc.NotFound:
        abort(404)
    except svc.Refused as exc:
        if exc.field == "code":
            form.code.errors = [str(exc)]
            return _request_page(request_id, 422, issue_form=form)
        return _request_page(request_id, 409, error=str(exc))
    message = f"已签发贷款结清证明，编号 {certificate.number}"
    if htmx.is_htmx():
        return _request_page(request_id, message=message)
    flash(message, "success")
    return redirect(url_for(".certificate", certificate_id=certificate.id), 303)


@bp.post("/requests/<int:request_id>/refuse")
@require_roles("official")
def refuse(request_id: int):
    _forbidden_or_404(svc.request_detail, common.staff_user(), request_id)
    form = RefuseForm()
    if not form.validate():
        return _request_page(request_id, 422, refuse_form=form)
    try:
        svc.refuse(common.staff_user(), request_id, form.reason.data)
    except svc.Refused as exc:
        if exc.field == "reason":
            form.reason.errors = [str(exc)]
            return _request_page(request_id, 422, refuse_form=form)
        return _request_page(request_id, 409, error=str(exc))
    if htmx.is_htmx():
        return _request_page(request_id, message="已记录未予签发及原因")
    flash("已记录未予签发及原因", "success")
    return redirect(url_for(".queue"), 303)


# --- the register and revocation ---------------------------------------------------------


@bp.get("/certificates")
@require_roles("official", "auditor")
def certificates():
    revoked = request.args.get("revoked") == "1"
    rows = _forbidden_or_404(svc.register, common.staff_user(), local_today(), revoked)
    return htmx.render(
        "intranet/officials_certificates.html",
        "intranet/_officials_certificates.html",
        rows=rows,
        revoked=revoked,
    )


def _certificate_page(certificate_id: int, status: int = 200, form=None, error=None):
    row = _forbidden_or_404(svc.certificate_row, common.staff_user(), certificate_id, local_today())
    return htmx.render(
        "intranet/officials_certificate.html",
        "intranet/_officials_certificate.html",
        status=status,
        c=row,
        revoke_form=form or RevokeForm(formdata=None),
        error=error,
    )


@bp.get("/certificates/<int:certificate_id>")
@require_roles("official", "auditor")
def certificate(certificate_id: int):
    return _certificate_page(certificate_id)


@bp.get("/certificates/<int:certificate_id>.pdf")
@require_roles("official")
def certificate_pdf(certificate_id: int):
    c, data = _forbidden_or_404(svc.certificate_pdf, common.staff_user(), certificate_id)
    return common.download(data, f"贷款结清证明-{c.number}.pdf", "application/pdf")


@bp.post("/certificates/<int:certificate_id>/revoke")
@require_roles("official")
def revoke(certificate_id: int):
    _forbidden_or_404(svc.certificate_row, common.staff_user(), certificate_id, local_today())
    form = RevokeForm()
    if not form.validate():
        return _certificate_page(certificate_id, 422, form)
    try:
        svc.revoke(common.staff_user(), certificate_id, form.reason.data, form.code.data)
    except svc.NotFound:
        abort(404)
    except svc.Refused as exc:
        if exc.field in ("reason", "code"):
            getattr(form, exc.field).errors = [str(exc)]
            return _certificate_page(certificate_id, 422, form)
        return _certificate_page(certificate_id, 409, error=str(exc))
    if htmx.is_htmx():
        return _certificate_page(certificate_id)
    flash("证明已撤销，核验页将显示“已撤销”", "success")
    return redirect(url_for(".certificate", certificate_id=certificate_id), 303)


# --- a request at the counter -------------------------------------------------------------


@bp.route("/counter", methods=["GET", "POST"])
@require_roles(*svc.COUNTER_ROLES)
def counter():
    form = CounterForm()
    status = 200
    if request.method == "POST":
        if form.validate():
            try:
                svc.request_at_counter(
                    common.staff_user(), form.contract_no.data, form.resident_id.data
                )
            except svc.Refused as exc:
                form.contract_no.errors = [str(exc)]
                status = 422
            else:
                message = "已登记贷款结清证明申请，待审批签发"
                if htmx.is_htmx():
                    return htmx.render(
                        "intranet/officials_counter.html",
                        "intranet/_officials_counter.html",
                        form=CounterForm(formdata=None),
                        message=message,
                    )
                flash(message, "success")
                return redirect(url_for(".counter"), 303)
        else:
            status = 422
    return htmx.render(
        "intranet/officials_counter.html",
        "intranet/_officials_counter.html",
        status=status,
        form=form,
    )
