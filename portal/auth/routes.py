"""Logins for depositors, employer operators and staff; first login and password reset."""

from __future__ import annotations

import base64
import time
from io import BytesIO

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_user

from portal.access import LOGIN_ENDPOINT, Principal, home_url, safe_next
from portal.forms import (
    ActivationForm,
    CodeForm,
    DepositorLoginForm,
    EmptyForm,
    NewPasswordForm,
    OperatorLoginForm,
    StaffLoginForm,
    TotpForm,
)
from portal.models import Depositor, EmployerOperator, StaffUser
from portal.rules.ids import mask_phone
from portal.services import audit, identity, lockout

bp = Blueprint("auth", __name__)

PENDING_SECONDS = 600
RESEND_SECONDS = 60
BAD_LOGIN = "登录信息不正确，请核对后重试"
_MODELS = {"d": Depositor, "o": EmployerOperator, "s": StaffUser}
_KINDS = {"d": "depositor", "o": "operator", "s": "staff"}


# --- the half-finished login kept in the session ------------------------------------------


def _set_pending(kind: str, obj, purpose: str, challenge=None, nxt=None) -> None:
    session["pending"] = {
        "kind": kind,
        "id": obj.id,
        "purpose": purpose,
        "at": time.time(),
        "challenge": challenge.id if challenge else None,
        "sent": time.time(),
        "next": safe_next(nxt),
    }


def _pending(kind: str, purpose: str):
    data = session.get("pending")
    if (
        not data
        or data.get("kind") != kind
        or data.get("purpose") != purpose
        or time.time() - data.get("at", 0) > PENDING_SECONDS
    ):
        return None, None
    obj = _MODELS[kind].get_or_none(_MODELS[kind].id == data["id"])
    if obj is None or not obj.active:
        return None, None
    return data, obj


def _finish_login(kind: str, obj):
    data = session.pop("pending", {}) or {}
    session.regenerate()
    login_user(Principal(_KINDS[kind], obj))
    audit.record(
        f"{_KINDS[kind]}:{obj.username if kind == 's' else obj.id}",
        "login",
        _KINDS[kind],
        obj.id,
        ip=request.remote_addr or "",
    )
    return redirect(data.get("next") or home_url(Principal(_KINDS[kind], obj)), code=303)


def _restart(endpoint: str):
    flash(_("登录已超时，请重新开始"), "warning")
    return redirect(url_for(endpoint), code=303)


def _code_page(kind, purpose, form, template, restart_endpoint, on_success, **ctx):
    data, obj = _pending(kind, purpose)
    if obj is None:
        return _restart(restart_endpoint)
    error = None
    if form.validate_on_submit():
        try:
            identity.verify_code(data["challenge"], purpose, f"{kind}:{obj.id}", form.code.data)
        except identity.CodeFailed as exc:
            error = str(exc)
        else:
            return on_success(obj)
    status = 422 if request.method == "POST" else 200
    return render_template(
        template, form=form, error=error, phone=mask_phone(obj.phone), resend=EmptyForm(), **ctx
    ), status


@bp.post("/login/resend")
def resend_code():
    """Send a fresh code for the pending step (at most once a minute)."""
    form = EmptyForm()
    data = session.get("pending")
    if not form.validate_on_submit() or not data or data.get("kind") not in ("d", "o"):
        return redirect(url_for("auth.login"), code=303)
    data, obj = _pending(data["kind"], data["purpose"])
    if obj is None:
        return _restart("auth.login")
    if time.time() - data.get("sent", 0) < RESEND_SECONDS:
        flash(_("验证码发送过于频繁，请 1 分钟后再试"), "warning")
    else:
        challenge = identity.send_code(data["purpose"], f"{data['kind']}:{obj.id}", obj.phone)
        data.update(challenge=challenge.id, sent=time.time())
        session["pending"] = data
        flash(_("新的验证码已发送"), "info")
    return redirect(
        request.referrer if safe_next(_referrer_path()) else url_for("auth.login"), code=303
    )


def _referrer_path():
    ref = request.referrer or ""
    host = request.host_url.rstrip("/")
    return ref[len(host) :] if ref.startswith(host) else None


def _password_step(form, authenticate, template: str, on_success):
    """The first login step, the same for every kind of user: the password (behind the
    lockout), one message for every wrong answer, then the second factor."""
    error, status = None, None
    if form.validate_on_submit():
        try:
            person = authenticate(request.remote_addr or "")
        except identity.LoginFailed:
            error = BAD_LOGIN
        except (lockout.Locked, lockout.AddressLimited) as exc:
            error, status = str(exc), 429
        else:
            return on_success(person)
    status = status or (422 if request.method == "POST" else 200)
    return render_template(template, form=form, error=error), status


def _sms_step(kind: str, endpoint: str):
    """After the password: text a one-time code to the person's phone and ask for it."""

    def go_on(person):
        challenge = identity.send_code("login", f"{kind}:{person.id}", person.phone)
        _set_pending(kind, person, "login", challenge, request.args.get("next"))
        return redirect(url_for(endpoint), code=303)

    return go_on


# --- depositors ---------------------------------------------------------------------------


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated and current_user.kind == "depositor":
        return redirect(home_url(current_user))
    form = DepositorLoginForm()
    if session.pop("_expired", False):
        flash(_("您长时间未操作，已安全退出，请重新登录"), "warning")
    return _password_step(
        form,
        lambda ip: identity.authenticate_depositor(
            form.resident_id.data, form.password.data, ip=ip
        ),
        "auth/login.html",
        _sms_step("d", "auth.login_code"),
    )


@bp.route("/login/code", methods=["GET", "POST"])
def login_code():
    return _code_page(
        "d",
        "login",
        CodeForm(),
        "auth/code.html",
        "auth.login",
        lambda obj: _finish_login("d", obj),
        title=_("短信验证"),
    )


@bp.route(
    "/activate", methods=["GET", "POST"], defaults={"purpose": "activate"}, endpoint="activate"
)
@bp.route("/reset", methods=["GET", "POST"], defaults={"purpose": "reset"}, endpoint="reset")
def password_start(purpose: str):
    form = ActivationForm()
    error = None
    if form.validate_on_submit():
        try:
            depositor = identity.depositor_for_activation(form.resident_id.data, form.name.data)
        except identity.LoginFailed:
            error = _("身份证号码与姓名不匹配，或账户不可用")
        else:
            challenge = identity.send_code(purpose, f"d:{depositor.id}", depositor.phone)
            _set_pending("d", depositor, purpose, challenge)
            return redirect(url_for("auth.password_set", purpose=purpose), code=303)
    status = 422 if request.method == "POST" else 200
    return render_template("auth/activate.html", form=form, error=error, purpose=purpose), status


@bp.route("/password/<any(activate, reset):purpose>", methods=["GET", "POST"])
def password_set(purpose: str):
    data, depositor = _pending("d", purpose)
    if depositor is None:
        return _restart(f"auth.{purpose}")
    code_form, pw_form = CodeForm(), NewPasswordForm()
    error = None
    if request.method == "POST" and code_form.validate() and pw_form.validate():
        try:
            identity.validate_new_password(pw_form.password.data, pw_form.confirm.data)
            identity.verify_code(
                data["challenge"], purpose, f"d:{depositor.id}", code_form.code.data
            )
            identity.set_depositor_password(
                depositor, pw_form.password.data, pw_form.confirm.data, purpose
            )
        except (identity.CodeFailed, identity.PasswordRejected) as exc:
            error = str(exc)
        else:
            session.pop("pending", None)
            flash(_("密码已设置，请使用新密码登录"), "success")
            return redirect(url_for("auth.login"), code=303)
    status = 422 if request.method == "POST" else 200
    return render_template(
        "auth/password_set.html",
        code_form=code_form,
        pw_form=pw_form,
        error=error,
        purpose=purpose,
        phone=mask_phone(depositor.phone),
        resend=EmptyForm(),
    ), status


# --- employer operators -------------------------------------------------------------------


@bp.route("/employer/login", methods=["GET", "POST"])
def employer_login():
    if current_user.is_authenticated and current_user.kind == "operator":
        return redirect(home_url(current_user))
    form = OperatorLoginForm()
    return _password_step(
        form,
        lambda ip: identity.authenticate_operator(
            form.credit_code.data, form.resident_id.data, form.password.data, ip=ip
        ),
        "auth/employer_login.html",
        _sms_step("o", "auth.employer_login_code"),
    )


@bp.route("/employer/login/code", methods=["GET", "POST"])
def employer_login_code():
    return _code_page(
        "o",
        "login",
        CodeForm(),
        "auth/code.html",
        "auth.employer_login",
        lambda obj: _finish_login("o", obj),
        title=_("单位经办人短信验证"),
    )


# --- staff --------------------------------------------------------------------------------


@bp.route("/staff/login", methods=["GET", "POST"])
def staff_login():
    if current_user.is_authenticated and current_user.kind == "staff":
        return redirect(home_url(current_user))
    if session.pop("_expired", False):
        flash(_("您长时间未操作，已安全退出，请重新登录"), "warning")
    form = StaffLoginForm()
    return _password_step(
        form,
        lambda ip: identity.authenticate_staff(form.username.data, form.password.data, ip=ip),
        "auth/staff_login.html",
        _totp_step,
    )


def _totp_step(user):
    """After a staff password: the authenticator code, or enrolment when there is none yet."""
    if user.totp_confirmed and user.totp_secret:
        _set_pending("s", user, "totp", nxt=request.args.get("next"))
        return redirect(url_for("auth.staff_totp"), code=303)
    identity.start_totp_enrolment(user)
    _set_pending("s", user, "enrol", nxt=request.args.get("next"))
    return redirect(url_for("auth.staff_enrol"), code=303)


@bp.route("/staff/login/totp", methods=["GET", "POST"])
def staff_totp():
    data, user = _pending("s", "totp")
    if user is None:
        return _restart("auth.staff_login")
    form = TotpForm()
    error = None
    if form.validate_on_submit():
        try:
            identity.verify_staff_second_factor(user, form.code.data)
        except (identity.CodeFailed, lockout.Locked) as exc:
            error = str(exc)
        else:
            return _finish_login("s", user)
    status = 422 if request.method == "POST" else 200
    return render_template("auth/staff_totp.html", form=form, error=error), status


@bp.route("/staff/login/enrol", methods=["GET", "POST"])
def staff_enrol():
    data, user = _pending("s", "enrol")
    if user is None:
        return _restart("auth.staff_login")
    form = TotpForm()
    error = None
    if form.validate_on_submit():
        try:
            identity.confirm_totp_enrolment(user, form.code.data)
        except identity.CodeFailed as exc:
            error = str(exc)
        else:
            return _finish_login("s", user)
    import segno  # only the enrolment page draws a QR code

    uri = identity.totp_uri(user, current_app.config["CENTER_NAME"])
    buffer = BytesIO()
    segno.make(uri, error="m").save(buffer, kind="svg", scale=4, border=2, xmldecl=False)
    qr = "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode()
    status = 422 if request.method == "POST" else 200
    return render_template(
        "auth/staff_enrol.html", form=form, error=error, qr=qr, secret=user.totp_secret
    ), status


@bp.route("/staff/setup/<token>", methods=["GET", "POST"])
def staff_setup(token: str):
    """A new staff member sets a password from the one-time link an admin gave them."""
    from portal.services import admin

    try:
        user = admin.user_for_setup(token)
    except admin.AdminError as exc:
        return render_template("auth/staff_setup.html", invalid=str(exc), form=None), 404
    form = NewPasswordForm()
    error = None
    if form.validate_on_submit():
        try:
            admin.complete_setup(token, form.password.data, form.confirm.data)
        except admin.AdminError as exc:
            error = str(exc)
        else:
            flash(_("密码已设置。请登录并用身份验证器扫码绑定动态口令。"), "success")
            return redirect(url_for("auth.staff_login"), code=303)
    status = 422 if request.method == "POST" else 200
    return render_template(
        "auth/staff_setup.html", form=form, error=error, user=user, invalid=None
    ), status


# --- everyone -----------------------------------------------------------------------------


@bp.post("/logout")
def logout():
    form = EmptyForm()
    if not form.validate_on_submit():
        return redirect(url_for("public.index"), code=303)
    kind = current_user.kind if current_user.is_authenticated else "depositor"
    if current_user.is_authenticated:
        audit.record(
            current_user.actor, "logout", kind, current_user.obj.id, ip=request.remote_addr or ""
        )
    session.end()
    flash(_("您已安全退出"), "info")
    return redirect(url_for(LOGIN_ENDPOINT[kind]), code=303)
