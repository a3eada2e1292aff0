"""The employer hall (单位网上业务大厅): only the operator's own employer.

Handlers parse a form, call one service (``services.employers``,
``services.employer_certificates``), render. Another employer's depositor, operator or
certificate id answers 404; managing operators is for the primary operator only (403).
Changes need a one-time code sent by the "获取验证码" button (``send_code``).

Two pages need no login: ``/employer/activate`` (a new operator sets the first password with
the activation code from SMS) and ``/employer/track`` (单位登记开户 progress by receipt number
and credit code).
"""

from __future__ import annotations

import time
from datetime import date
from urllib.parse import quote

import click
from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from portal import htmx
from portal.access import guard_kind, safe_next
from portal.db import db
from portal.filters import local_today
from portal.public import employer_forms as forms
from portal.rules.ids import mask_phone
from portal.services import certificates as cert_svc
from portal.services import employer_certificates as emp_certs
from portal.services import employers, ratelimit

bp = Blueprint("employer", __name__, url_prefix="/employer", cli_group="employer")

PUBLIC_ENDPOINTS = frozenset({"employer.activate", "employer.activate_code", "employer.track"})
RESEND_SECONDS = 60
LOOKUP_LIMIT = 10  # wrong activation / tracking attempts per client address and window
LOOKUP_WINDOW = 600
TOO_MANY = _l("尝试次数过多，请 10 分钟后再试。")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_operator_only = guard_kind("operator")


@bp.before_request
def _guard():
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    response = _operator_only()
    if response is not None:
        return response
    # ratio and base changes dated to a month that has now begun take effect
    employers.apply_due(_today(), _me().employer)
    return None


def _me():
    return current_user.obj


def _employer():
    return _me().employer


def _today() -> date:
    return local_today()


def _client() -> str:
    return request.remote_addr or "unknown"


def _download(data: bytes, filename: str, content_type: str):
    response = make_response(data)
    response.headers["Content-Type"] = content_type
    ascii_name = "".join(
        c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in filename
    )
    response.headers["Content-Disposition"] = (
        f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-store"
    return response


def _field_error(form, exc: employers.Refused, default: str) -> None:
    target = getattr(form, exc.field or default, None) or getattr(form, default)
    target.errors = list(target.errors or []) + [str(exc)]


# --- one-time codes -----------------------------------------------------------------------


def _otp() -> dict:
    return dict(session.get("employer_otp") or {})


def _otp_id(purpose: str) -> int | None:
    return (_otp().get(purpose) or {}).get("id")


def _otp_remember(purpose: str, challenge) -> None:
    data = _otp()
    data[purpose] = {"id": challenge.id, "at": time.time()}
    session["employer_otp"] = data


def _otp_forget(purpose: str) -> None:
    data = _otp()
    data.pop(purpose, None)
    session["employer_otp"] = data


@bp.post("/code/<any(change, operator):purpose>")
def send_code(purpose: str):
    """ "获取验证码": a code for this action to the operator's own phone."""
    form = forms.SendCodeForm()
    if not form.validate_on_submit():
        abort(400)
    back = safe_next(form.next.data) or url_for("employer.overview")
    message, ok = None, False
    sent = (_otp().get(purpose) or {}).get("at", 0)
    if time.time() - sent < RESEND_SECONDS:
        message = _("验证码已发送，请 1 分钟后再重新获取")
    else:
        try:
            challenge = employers.send_action_code(_me(), purpose)
        except employers.Forbidden:
            abort(403)
        except employers.Refused as exc:
            message = str(exc)
        else:
            _otp_remember(purpose, challenge)
            message, ok = (
                _("验证码已发送至手机 %(p)s，5 分钟内有效", p=mask_phone(_me().phone)),
                True,
            )
    if htmx.is_htmx():
        return htmx.render("employer/_code_status.html", message=message, ok=ok)
    flash(message, "info" if ok else "warning")
    return redirect(back, code=303)


# --- overview and the employer account detail ---------------------------------------------


@bp.get("/")
def overview():
    number = request.args.get("page", 1, type=int) or 1
    return htmx.render(
        "employer/overview.html",
        "employer/_ledger.html",
        o=employers.overview(_me(), _today()),
        p=employers.ledger_page(_employer(), number),
    )


@bp.get("/detail.xlsx")
def detail_export():
    today = _today()
    data = employers.detail_xlsx(_me(), today)
    return _download(data, f"单位账户明细-{_employer().account_no}-{today:%Y%m%d}.xlsx", XLSX)


# --- roster -------------------------------------------------------------------------------


@bp.get("/roster")
def roster():
    form = forms.RosterSearchForm(request.args)
    status = 200
    q, state = form.q.data or "", form.status.data or ""
    if request.args and not form.validate():
        status = 422
        q = "" if form.q.errors else q
        state = "" if form.status.errors else state
    number = request.args.get("page", 1, type=int) or 1
    r = employers.roster(_employer(), q, state, number)
    return htmx.render(
        "employer/roster.html", "employer/_roster.html", status=status, form=form, r=r
    )


def _own_account(account_id: int):
    try:
        return employers.own_account(_employer(), account_id)
    except employers.NotFound:
        abort(404)


def _base_page(account, form, status=200):
    today = _today()
    history = [h for h in employers.history(_employer()) if h.record.account_id == account.id]
    return render_template(
        "employer/base.html",
        a=account,
        form=form,
        limits=employers.limits_on(today),
        history=history,
        code_sent=_otp_id("change") is not None,
        this_month=employers.month_of(today),
    ), status


@bp.route("/roster/<int:account_id>/base", methods=["GET", "POST"])
def change_base(account_id: int):
    account = _own_account(account_id)
    form = forms.BaseForm()
    if request.method == "GET":
        form.effective_from.data = employers.month_of(_today())
        return _base_page(account, form)
    if not form.validate_on_submit():
        return _base_page(account, form, 422)
    try:
        record = employers.change_base(
            _me(),
            account_id,
            form.deposit_base.data,
            form.effective_from.data.strip(),
            _otp_id("change"),
            form.code.data,
            _today(),
        )
    except employers.NotFound:
        abort(404)
    except employers.Refused as exc:
        _field_error(form, exc, "deposit_base")
        return _base_page(account, form, 422)
    _otp_forget("change")
    if record.status == "scheduled":
        flash(
            _(
                "缴存基数变更已登记，将自 %(m)s 起生效",
                m=employers.month_label(record.effective_from),
            ),
            "success",
        )
    else:
        flash(_("缴存基数已变更"), "success")
    return redirect(url_for("employer.change_base", account_id=account_id), code=303)


# --- employer deposit-information change --------------------------------------------------


def _changes_page(status=200, contact=None, address=None, ratios=None):
    today = _today()
    employer = _employer()
    if ratios is None:
        ratios = forms.RatioForm(formdata=None, prefix="ratio")
        ratios.employer_ratio.data = str(employer.employer_ratio)
        ratios.employee_ratio.data = str(employer.employee_ratio)
        ratios.effective_from.data = employers.month_of(today)
    if contact is None:  # the name as registered; the phone is never put back unmasked
        contact = forms.ContactForm(formdata=None, prefix="contact")
        contact.contact_name.data = employer.contact_name
    if address is None:
        address = forms.AddressForm(formdata=None, prefix="addr")
        address.address.data = employer.address
    return render_template(
        "employer/changes.html",
        e=employer,
        contact_form=contact,
        address_form=address,
        ratio_form=ratios,
        limits=employers.limits_on(today),
        this_month=employers.month_of(today),
        history=employers.history(employer),
        code_sent=_otp_id("change") is not None,
    ), status


@bp.get("/changes")
def changes():
    return _changes_page()


@bp.post("/changes/contact")
def change_contact():
    form = forms.ContactForm(prefix="contact")
    if not form.validate_on_submit():
        return _changes_page(422, contact=form)
    try:
        employers.change_contact(
            _me(),
            form.contact_name.data,
            form.contact_phone.data,
            _otp_id("change"),
            form.code.data,
            _today(),
        )
    except employers.Refused as exc:
        _field_error(form, exc, "contact_name")
        return _changes_page(422, contact=form)
    _otp_forget("change")
    flash(_("联系人信息已变更"), "success")
    return redirect(url_for("employer.changes") + "#history", code=303)


@bp.post("/changes/address")
def change_address():
    form = forms.AddressForm(prefix="addr")
    if not form.validate_on_submit():
        return _changes_page(422, address=form)
    try:
        employers.change_address(
            _me(), form.address.data, _otp_id("change"), form.code.data, _today()
        )
    except employers.Refused as exc:
        _field_error(form, exc, "address")
        return _changes_page(422, address=form)
    _otp_forget("change")
    flash(_("单位地址已变更"), "success")
    return redirect(url_for("employer.changes") + "#history", code=303)


@bp.post("/changes/ratios")
def change_ratios():
    form = forms.RatioForm(prefix="ratio")
    if not form.validate_on_submit():
        return _changes_page(422, ratios=form)
    try:
        records = employers.change_ratios(
            _me(),
            form.employer_ratio.data,
            form.employee_ratio.data,
            form.effective_from.data.strip(),
            _otp_id("change"),
            form.code.data,
            _today(),
        )
    except employers.Refused as exc:
        _field_error(form, exc, "employer_ratio")
        return _changes_page(422, ratios=form)
    _otp_forget("change")
    month = employers.month_label(records[0].effective_from) if records else ""
    if records and records[0].status == "scheduled":
        flash(_("缴存比例变更已登记，将自 %(m)s 起生效", m=month), "success")
    else:
        flash(_("缴存比例已变更，自 %(m)s 起按新比例缴存", m=month), "success")
    return redirect(url_for("employer.changes") + "#history", code=303)


# --- operators ----------------------------------------------------------------------------


def _operators_page(form=None, status=200):
    me = _me()
    return render_template(
        "employer/operators.html",
        rows=employers.operator_rows(me),
        me=me,
        form=form or forms.OperatorForm(formdata=None, prefix="op"),
        code_sent=_otp_id("operator") is not None,
    ), status


@bp.get("/operators")
def operators():
    return _operators_page()


@bp.post("/operators")
def add_operator():
    if not _me().is_primary:
        abort(403)
    form = forms.OperatorForm(prefix="op")
    if not form.validate_on_submit():
        return _operators_page(form, 422)
    try:
        new = employers.add_operator(
            _me(),
            form.name.data,
            form.resident_id.data,
            form.phone.data,
            _otp_id("operator"),
            form.code.data,
        )
    except employers.Forbidden:
        abort(403)
    except employers.Refused as exc:
        _field_error(form, exc, "name")
        return _operators_page(form, 422)
    _otp_forget("operator")
    flash(
        _(
            "已添加经办人 %(n)s，激活短信已发送至 %(p)s",
            n=new.name,
            p=mask_phone(new.phone),
        ),
        "success",
    )
    return redirect(url_for("employer.operators"), code=303)


ACTIONS = {
    "disable": (_l("停用经办人"), _l("停用后该经办人不能登录，可随时重新启用。")),
    "enable": (_l("启用经办人"), _l("启用后该经办人可再次登录。")),
    "remove": (
        _l("删除经办人"),
        _l("删除后该经办人的登录资格随即取消，如需恢复须重新添加并激活。"),
    ),
}


@bp.route(
    "/operators/<int:operator_id>/<any(disable, enable, remove):action>",
    methods=["GET", "POST"],
)
def operator_action(operator_id: int, action: str):
    try:
        other = employers.managed_operator(_me(), operator_id)
    except employers.Forbidden:
        abort(403)
    except employers.NotFound:
        abort(404)
    form = forms.OperatorActionForm()
    status = 200
    if request.method == "POST":
        status = 422
        if form.validate_on_submit():
            try:
                if action == "remove":
                    employers.remove_operator(
                        _me(), operator_id, _otp_id("operator"), form.code.data
                    )
                else:
                    employers.set_operator_active(
                        _me(), operator_id, action == "enable", _otp_id("operator"), form.code.data
                    )
            except employers.Forbidden:
                abort(403)
            except employers.Refused as exc:
                _field_error(form, exc, "code")
            else:
                _otp_forget("operator")
                done = {"disable": _("已停用"), "enable": _("已启用"), "remove": _("已删除")}
                flash(_("经办人 %(n)s %(d)s", n=other.name, d=done[action]), "success")
                return redirect(url_for("employer.operators"), code=303)
    title, note = ACTIONS[action]
    return render_template(
        "employer/operator_action.html",
        other=other,
        action=action,
        title=title,
        note=note,
        form=form,
        code_sent=_otp_id("operator") is not None,
    ), status


# --- the employer deposit certificate -----------------------------------------------------


def _verify_url(code: str) -> str:
    return url_for("public.verify_code", code=code, _external=True)


def _certificates_page(form, status=200, error=None):
    today = _today()
    return render_template(
        "employer/certificates.html",
        form=form,
        error=error,
        items=[(c, cert_svc.status(c, today)) for c in emp_certs.own_certificates(_me())],
        state_labels=cert_svc.STATE_LABELS,
        kind_label=cert_svc.KIND_LABELS[emp_certs.KIND],
    ), status


@bp.route("/certificates", methods=["GET", "POST"])
def certificates():
    form = forms.CertificateForm()
    if request.method == "GET":
        return _certificates_page(form)
    if not form.validate_on_submit():
        return _certificates_page(form, 422)
    try:
        certificate = emp_certs.issue(
            _me(), form.addressee.data, _today(), _verify_url, current_app.config["CENTER_NAME"]
        )
    except emp_certs.Refused as exc:
        return _certificates_page(form, 422, error=str(exc))
    flash(_("单位缴存证明已出具，编号 %(n)s", n=certificate.number), "success")
    return redirect(url_for("employer.certificate", certificate_id=certificate.id), code=303)


def _own_certificate(certificate_id: int):
    try:
        return emp_certs.own_certificate(_me(), certificate_id)
    except emp_certs.NotFound:
        abort(404)


@bp.get("/certificates/<int:certificate_id>")
def certificate(certificate_id: int):
    c = _own_certificate(certificate_id)
    return render_template(
        "employer/certificate.html",
        c=c,
        state=cert_svc.status(c, _today()),
        kind_label=cert_svc.KIND_LABELS[emp_certs.KIND],
        state_labels=cert_svc.STATE_LABELS,
        code=cert_svc.format_code(c.verify_code),
        verify_url=_verify_url(c.verify_code),
    )


@bp.get("/certificates/<int:certificate_id>.pdf")
def certificate_pdf(certificate_id: int):
    c = _own_certificate(certificate_id)
    return _download(cert_svc.pdf_bytes(c), f"{c.number}.pdf", "application/pdf")


# --- no login: activation and registration tracking ---------------------------------------


def _activate_page(form, status=200, error=None, notice=None):
    return render_template("employer/activate.html", form=form, error=error, notice=notice), status


@bp.route("/activate", methods=["GET", "POST"])
def activate():
    """A new operator sets the first password with the activation code from SMS."""
    form = forms.ActivateForm()
    if request.method == "GET":
        return _activate_page(form)
    key = f"emp-activate:{_client()}"
    if not form.validate_on_submit():
        return _activate_page(form, 422)
    if ratelimit.blocked(key, LOOKUP_LIMIT, LOOKUP_WINDOW):
        return _activate_page(form, 429, error=TOO_MANY)
    try:
        employers.activate(
            form.credit_code.data,
            form.resident_id.data,
            form.code.data,
            form.password.data,
            form.confirm.data,
            ip=_client(),
        )
    except employers.Refused as exc:
        if exc.field == "code":
            ratelimit.hit(key, LOOKUP_LIMIT, LOOKUP_WINDOW)
            return _activate_page(form, 422, error=str(exc))
        _field_error(form, exc, "password")
        return _activate_page(form, 422)
    flash(_("经办人账户已激活，请使用新密码登录"), "success")
    return redirect(url_for("auth.employer_login"), code=303)


@bp.post("/activate/code")
def activate_code():
    """ "重新获取激活验证码": the same answer whether or not such an operator waits."""
    form = forms.ActivateCodeForm()
    page_form = forms.ActivateForm(formdata=None)
    page_form.credit_code.data = request.form.get("credit_code", "")
    page_form.resident_id.data = request.form.get("resident_id", "")
    if not form.validate_on_submit():
        page_form.credit_code.errors = list(form.credit_code.errors)
        page_form.resident_id.errors = list(form.resident_id.errors)
        return _activate_page(page_form, 422)
    key = f"emp-activate-send:{_client()}"
    if not ratelimit.hit(key, LOOKUP_LIMIT, LOOKUP_WINDOW):
        return _activate_page(page_form, 429, error=TOO_MANY)
    try:
        employers.resend_activation(form.credit_code.data, form.resident_id.data)
    except employers.Refused as exc:
        return _activate_page(page_form, 429, error=str(exc))
    notice = _("如该经办人已登记且尚未激活，激活验证码已发送至其预留手机，5 分钟内有效。")
    return _activate_page(page_form, notice=notice)


@bp.route("/track", methods=["GET", "POST"])
def track():
    """单位登记开户进度查询 by receipt number and credit code (POST: nothing in URLs)."""
    form = forms.TrackForm()
    if request.method == "GET":
        return render_template("employer/track.html", form=form, t=None, error=None)
    key = f"emp-track:{_client()}"
    if not form.validate_on_submit():
        return render_template("employer/track.html", form=form, t=None, error=None), 422
    if ratelimit.blocked(key, LOOKUP_LIMIT, LOOKUP_WINDOW):
        return render_template("employer/track.html", form=form, t=None, error=TOO_MANY), 429
    result = employers.track_registration(form.receipt_no.data, form.credit_code.data, _today())
    if result is None:
        ratelimit.hit(key, LOOKUP_LIMIT, LOOKUP_WINDOW)
        error = _("未查询到单位登记开户办件：请核对受理回执编号和统一社会信用代码。")
        return render_template("employer/track.html", form=form, t=None, error=error), 404
    return render_template("employer/track.html", form=form, t=result, c=result.view, error=None)


# --- command line -------------------------------------------------------------------------


@bp.cli.command("apply-due", help="Apply scheduled ratio and base changes whose month has begun.")
def apply_due_command():
    db.connect(reuse_if_open=True)
    done = employers.apply_due(local_today())
    click.echo(f"{done} scheduled change(s) applied.")
