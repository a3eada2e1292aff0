"""The depositor hall (个人网上业务大厅): only the logged-in depositor's own data.

Handlers parse a form, call one service, render. Someone else's loan, certificate, payout or
case id answers 404. Actions that move money or change data need a one-time code sent by the
"获取验证码" button (``send_code``) and are POSTs with CSRF.
"""

from __future__ import annotations

import secrets
import time
from datetime import date

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
from flask_login import current_user

from portal import htmx
from portal.access import guard_kind, safe_next
from portal.filters import local_today
from portal.forms import EmptyForm
from portal.models import Center
from portal.public.hall_forms import (
    AddressForm,
    CardForm,
    CertificateForm,
    DetailFilterForm,
    PayoffCalcForm,
    PayoffForm,
    PhoneConfirmForm,
    PhoneStartForm,
    QuotaForm,
    RetirementForm,
    SendCodeForm,
    StatementForm,
)
from portal.public.loan_rows import repayment_rows, schedule_rows, year_options
from portal.rules.ids import mask_phone
from portal.services import accounts, deposits, payouts, ratings, tracking
from portal.services import certificates as cert_svc
from portal.services import changes as change_svc
from portal.services import loans as loan_svc

bp = Blueprint("hall", __name__, url_prefix="/me")
bp.add_app_template_global(schedule_rows)
bp.add_app_template_global(repayment_rows)
bp.add_app_template_global(year_options)
bp.before_request(guard_kind("depositor"))

RESEND_SECONDS = 60
CODE_PURPOSES = ("withdraw", "payoff", "change")


def _me():
    return current_user.obj


def _today() -> date:
    return local_today()


def _render(page: str, fragment: str | None = None, status: int = 200, **ctx):
    return htmx.render(page, fragment, status=status, **ctx)


def _pdf(data: bytes, filename: str):
    response = make_response(data)
    response.headers["Content-Type"] = "application/pdf"
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response


def _verify_url(code: str) -> str:
    return url_for("public.verify_code", code=code, _external=True)


# --- one-time codes for hall actions ------------------------------------------------------


def _otp() -> dict:
    return dict(session.get("hall_otp") or {})


def _otp_id(purpose: str) -> int | None:
    return (_otp().get(purpose) or {}).get("id")


def _otp_remember(purpose: str, challenge, **extra) -> None:
    data = _otp()
    data[purpose] = {"id": challenge.id, "at": time.time(), **extra}
    session["hall_otp"] = data


def _otp_forget(*purposes: str) -> None:
    data = _otp()
    for purpose in purposes:
        data.pop(purpose, None)
    session["hall_otp"] = data


def _new_token() -> str:
    return secrets.token_hex(16)


@bp.post("/code/<any(withdraw, payoff, change):purpose>")
def send_code(purpose: str):
    """ "获取验证码": text a code for this action to the phone on file."""
    form = SendCodeForm()
    back = safe_next(form.next.data) or url_for("hall.account")
    message, ok = None, False
    if not form.validate_on_submit():
        abort(400)
    sent = (_otp().get(purpose) or {}).get("at", 0)
    if time.time() - sent < RESEND_SECONDS:
        message = _("验证码已发送，请 1 分钟后再重新获取")
    else:
        try:
            challenge = change_svc.send_action_code(_me(), purpose)
        except change_svc.Refused as exc:
            message = str(exc)
        else:
            _otp_remember(purpose, challenge)
            message, ok = (
                _("验证码已发送至手机 %(p)s，5 分钟内有效", p=mask_phone(_me().phone)),
                True,
            )
    if htmx.is_htmx():
        return _render("hall/_code_status.html", "hall/_code_status.html", message=message, ok=ok)
    flash(message, "info" if ok else "warning")
    return redirect(back, code=303)


# --- account and deposit detail -----------------------------------------------------------


@bp.get("/")
def account():
    summary = accounts.depositor_summary(_me())
    return render_template("hall/account.html", s=summary)


@bp.get("/deposits")
def deposit_detail():
    account = deposits.account_of(_me())
    if account is None:
        return render_template("hall/no_account.html", active="deposits")
    form = DetailFilterForm(request.args)
    years = deposits.years(account)
    form.set_years(years)
    status = 200
    if request.args and not form.validate():
        status = 422
        page = deposits.detail(account, known_years=years)
    else:
        number = request.args.get("page", 1, type=int) or 1
        page = deposits.detail(
            account, form.year_value, form.kind.data or None, number, known_years=years
        )
    return _render("hall/deposits.html", "hall/_detail_rows.html", status=status, form=form, p=page)


@bp.get("/deposits/statement")
def statement():
    account = deposits.account_of(_me())
    if account is None:
        return render_template("hall/no_account.html", active="deposits")
    years = deposits.years(account) or [_today().year]
    form = StatementForm(request.args)
    form.set_years(years)
    status = 200
    if not request.args.get("year"):
        form.year.data = str(years[1] if len(years) > 1 else years[0])
    elif not form.validate():
        status = 422
        form.year.data = str(years[0])
    s = deposits.annual_statement(account, int(form.year.data), _today())
    return render_template("hall/statement.html", form=form, st=s), status


@bp.get("/deposits/statement.pdf")
def statement_pdf():
    account = deposits.account_of(_me())
    if account is None:
        abort(404)
    form = StatementForm(request.args)
    form.set_years(deposits.years(account) or [_today().year])
    if not form.validate():
        abort(404)
    s = deposits.annual_statement(account, int(form.year.data), _today())
    data = deposits.statement_pdf(s, current_app.config["CENTER_NAME"], _today())
    return _pdf(data, f"statement-{s.year}.pdf")


# --- loans --------------------------------------------------------------------------------


@bp.get("/loans")
def loans():
    views = loan_svc.list_loans(_me(), _today())
    form = QuotaForm(formdata=None)
    return render_template("hall/loans.html", views=views, form=form, trial=None)


@bp.get("/loans/quota")
def loan_quota():
    """The quota trial; opened without a query (a link, the address bar), its empty form."""
    if not request.args:
        form = QuotaForm(formdata=None)
        return _render("hall/quota.html", "hall/_quota.html", form=form, trial=None)
    form = QuotaForm(request.args)
    trial, status = None, 200
    if form.validate():
        trial = loan_svc.quota_trial(
            _me(),
            form.monthly_income.data,
            _today(),
            form.term_years.data,
            form.first_home.data == "1",
        )
    else:
        status = 422
    return _render("hall/quota.html", "hall/_quota.html", status=status, form=form, trial=trial)


def _loan_view(loan_id: int):
    try:
        return loan_svc.loan_view(_me(), loan_id, _today())
    except loan_svc.NotFound:
        abort(404)


@bp.get("/loans/<int:loan_id>")
def loan_detail(loan_id: int):
    view = _loan_view(loan_id)
    today = _today()
    year = loan_svc.schedule_year(view, today, request.args.get("year", type=int))
    years = dict(
        years=loan_svc.schedule_years(view),
        year=year,
        year_rows=[row for row in view.schedule if row.due_on.year == year],
        year_paid=[r for r in view.repayments if r.paid_on.year == year],
    )
    if htmx.is_htmx():  # the year picker: the schedule and repayments of that year
        return _render("hall/loan.html", "hall/_loan_years.html", v=view, **years)
    # an active loan shows the payoff quote and its calculator; a settled one the request
    # for its settlement certificate (a form each, made only where it is shown)
    active = view.active
    return _render(
        "hall/loan.html",
        None,
        v=view,
        quote=loan_svc.payoff_quote(view, today, today) if active else None,
        calc_form=PayoffCalcForm(formdata=None, on=today) if active else None,
        calc=None,
        request_form=None if active else EmptyForm(),
        today=today,
        calc_last=min(loan_svc.payoff_calendar_limit(today), view.last_due or today),
        **years,
    )


@bp.get("/loans/<int:loan_id>/payoff-calculator")
def payoff_calculator(loan_id: int):
    view = _loan_view(loan_id)
    today = _today()
    last = min(loan_svc.payoff_calendar_limit(today), view.last_due or today)
    form = PayoffCalcForm(request.args)
    calc, status = None, 200
    if form.validate() and form.check_range(today, last):
        calc = loan_svc.payoff_quote(view, form.on.data, today)
    else:
        status = 422
    return _render(
        "hall/payoff_calc.html",
        "hall/_payoff_calc.html",
        status=status,
        v=view,
        calc_form=form,
        calc=calc,
        today=today,
        calc_last=last,
    )


def _payoff_page(view, form, status=200, error=None):
    use_balance = form.funding.data != "card"
    plan = loan_svc.payoff_plan(_me(), view.loan.id, _today(), use_balance)
    card_plan = loan_svc.payoff_plan(_me(), view.loan.id, _today(), False)
    balance_plan = loan_svc.payoff_plan(_me(), view.loan.id, _today(), True)
    return render_template(
        "hall/payoff.html",
        v=view,
        plan=plan,
        card_plan=card_plan,
        balance_plan=balance_plan,
        form=form,
        error=error,
        code_form=SendCodeForm(formdata=None, next=request.path),
        code_sent=_otp_id("payoff") is not None,
    ), status


@bp.route("/loans/<int:loan_id>/payoff", methods=["GET", "POST"])
def payoff(loan_id: int):
    view = _loan_view(loan_id)
    form = PayoffForm()
    if request.method == "GET" or not form.token.data:
        form.token.data = _new_token()
    if request.method == "GET":
        return _payoff_page(view, form)
    existing = loan_svc.find_payoff(_me(), loan_id, form.token.data)
    asked = loan_svc.payoff_fingerprint(loan_id, form.funding.data == "balance")
    if existing is not None and not payouts.same_request(existing, asked):
        return _payoff_page(view, form, 422, error=payouts.DIFFERENT_REQUEST)
    if existing is not None and existing.status != payouts.PENDING:
        return redirect(url_for("hall.payoff_receipt", loan_id=loan_id, payout_id=existing.id), 303)
    if not form.validate_on_submit():
        return _payoff_page(view, form, 422)
    try:
        payout = loan_svc.early_repay(
            _me(),
            loan_id,
            form.token.data,
            form.funding.data == "balance",
            _otp_id("payoff"),
            form.code.data,
            _today(),
            current_user.actor,
        )
    except loan_svc.NotFound:
        abort(404)
    except payouts.CodeRejected as exc:
        form.code.errors = [str(exc)]
        return _payoff_page(view, form, 422)
    except payouts.Refused as exc:
        return _payoff_page(view, form, 422, error=str(exc))
    _otp_forget("payoff")
    flash(_("贷款已提前还清"), "success")
    return redirect(url_for("hall.payoff_receipt", loan_id=loan_id, payout_id=payout.id), 303)


@bp.get("/loans/<int:loan_id>/payoff/<int:payout_id>")
def payoff_receipt(loan_id: int, payout_id: int):
    try:
        payout = loan_svc.own_payoff(_me(), loan_id, payout_id)
    except loan_svc.NotFound:
        abort(404)
    view = _loan_view(loan_id)
    return render_template("hall/payoff_receipt.html", v=view, p=payout, d=payout.detail)


@bp.post("/loans/<int:loan_id>/settlement-certificate")
def request_settlement(loan_id: int):
    if not EmptyForm().validate_on_submit():
        abort(400)
    try:
        loan_svc.request_settlement_certificate(_me(), loan_id, current_user.actor)
    except loan_svc.NotFound:
        abort(404)
    except payouts.Refused as exc:
        flash(str(exc), "warning")
    else:
        flash(_("已提交贷款结清证明申请，签发后可在此下载"), "success")
    return redirect(url_for("hall.loan_detail", loan_id=loan_id) + "#settlement", code=303)


# --- certificates -------------------------------------------------------------------------


def _certificates_page(form, status=200, error=None):
    centers = [c.name for c in Center.select(Center.name).where(Center.active).order_by(Center.id)]
    listing = cert_svc.own_certificates_page(_me(), request.args.get("page", 1, type=int) or 1)
    today = _today()
    return render_template(
        "hall/certificates.html",
        form=form,
        error=error,
        listing=listing,
        items=[(c, cert_svc.status(c, today)) for c in listing.items],
        centers=centers,
        kind_labels=cert_svc.KIND_LABELS,
        state_labels=cert_svc.STATE_LABELS,
    ), status


@bp.route("/certificates", methods=["GET", "POST"])
def certificates():
    form = CertificateForm()
    if request.method == "GET":
        return _certificates_page(form)
    if not form.validate_on_submit():
        return _certificates_page(form, 422)
    try:
        certificate = cert_svc.issue_usage(
            _me(),
            form.addressee.data,
            _today(),
            _verify_url,
            current_app.config["CENTER_NAME"],
            current_user.actor,
        )
    except cert_svc.Refused as exc:
        return _certificates_page(form, 422, error=str(exc))
    flash(_("缴存使用证明已出具，编号 %(n)s", n=certificate.number), "success")
    return redirect(url_for("hall.certificate", certificate_id=certificate.id), code=303)


def _own_certificate(certificate_id: int):
    try:
        return cert_svc.own_certificate(_me(), certificate_id)
    except cert_svc.NotFound:
        abort(404)


@bp.get("/certificates/<int:certificate_id>")
def certificate(certificate_id: int):
    c = _own_certificate(certificate_id)
    return render_template(
        "hall/certificate.html",
        c=c,
        state=cert_svc.status(c, _today()),
        kind_label=cert_svc.KIND_LABELS.get(c.kind, c.kind),
        state_labels=cert_svc.STATE_LABELS,
        code=cert_svc.format_code(c.verify_code),
        verify_url=_verify_url(c.verify_code),
    )


@bp.get("/certificates/<int:certificate_id>.pdf")
def certificate_pdf(certificate_id: int):
    c = _own_certificate(certificate_id)
    return _pdf(cert_svc.pdf_bytes(c), f"{c.number}.pdf")


# --- retirement withdrawal ----------------------------------------------------------------


def _retirement_page(form, status=200, error=None):
    me = _me()
    quote = payouts.retirement_quote(me, _today())
    if quote.pending is not None and quote.account is not None:
        # finish a withdrawal that a crash left half-way (after the grace period)
        payouts.reconcile(account=quote.account)
        quote = payouts.retirement_quote(me, _today())
    return render_template(
        "hall/retirement.html",
        q=quote,
        form=form,
        error=error,
        code_form=SendCodeForm(formdata=None, next=url_for("hall.retirement")),
        code_sent=_otp_id("withdraw") is not None,
    ), status


@bp.route("/retirement", methods=["GET", "POST"])
def retirement():
    form = RetirementForm()
    if request.method == "GET" or not form.token.data:
        form.token.data = _new_token()
    if request.method == "GET":
        return _retirement_page(form)
    existing = payouts.find_by_token(_me(), form.token.data)
    if existing is not None and existing.status == payouts.CONFIRMED:
        flash(_("该笔提取已办理，请勿重复提交"), "info")
        return redirect(url_for("hall.retirement_receipt", payout_id=existing.id), code=303)
    if not form.validate_on_submit():
        return _retirement_page(form, 422)
    try:
        payout = payouts.retire(
            _me(),
            form.token.data,
            _otp_id("withdraw"),
            form.code.data,
            _today(),
            current_user.actor,
        )
    except payouts.CodeRejected as exc:
        form.code.errors = [str(exc)]
        return _retirement_page(form, 422)
    except payouts.Refused as exc:
        return _retirement_page(form, 422, error=str(exc))
    _otp_forget("withdraw")
    flash(_("退休提取已办理，资金已转入您的银行卡"), "success")
    return redirect(url_for("hall.retirement_receipt", payout_id=payout.id), code=303)


def _own_retirement(payout_id: int):
    payout = payouts.own_payout(_me(), payout_id, "retirement")
    if payout is None:
        abort(404)
    return payout


@bp.get("/retirement/receipt/<int:payout_id>")
def retirement_receipt(payout_id: int):
    payout = _own_retirement(payout_id)
    return render_template("hall/retirement_receipt.html", p=payout, d=payout.detail)


@bp.get("/retirement/receipt/<int:payout_id>.pdf")
def retirement_receipt_pdf(payout_id: int):
    payout = _own_retirement(payout_id)
    if payout.status != payouts.CONFIRMED:
        abort(404)
    c = cert_svc.retirement_receipt(
        payout, _today(), _verify_url, current_app.config["CENTER_NAME"]
    )
    return _pdf(cert_svc.pdf_bytes(c), f"{c.number}.pdf")


# --- individual information changes -------------------------------------------------------


def _changes_page(status=200, card=None, address=None, phone=None, error=None):
    me = _me()
    pending_phone = (_otp().get("change_new") or {}).get("phone")
    return render_template(
        "hall/changes.html",
        me=me,
        card_form=card or CardForm(formdata=None, prefix="card"),
        address_form=address or AddressForm(formdata=None, prefix="addr"),
        phone_form=phone or PhoneStartForm(formdata=None, prefix="phone"),
        code_form=SendCodeForm(formdata=None, next=url_for("hall.changes")),
        code_sent=_otp_id("change") is not None,
        pending_phone=mask_phone(pending_phone) if pending_phone else None,
        history=change_svc.history(me),
        error=error,
        card_wait=payouts.CARD_WAIT_DAYS,
    ), status


@bp.get("/changes")
def changes():
    return _changes_page()


def _field_error(form, exc: change_svc.Refused, default: str):
    target = getattr(form, exc.field or default, None) or getattr(form, default)
    target.errors = list(target.errors or []) + [str(exc)]


@bp.post("/changes/card")
def change_card():
    form = CardForm(prefix="card")
    if not form.validate_on_submit():
        return _changes_page(422, card=form)
    try:
        change_svc.change_card(
            _me(),
            form.card.data,
            form.bank_name.data,
            _otp_id("change"),
            form.code.data,
            current_user.actor,
        )
    except change_svc.Refused as exc:
        _field_error(form, exc, "card")
        return _changes_page(422, card=form)
    _otp_forget("change")
    flash(
        _("提取银行卡已变更；为保障资金安全，%(d)s 日后方可用于提取", d=payouts.CARD_WAIT_DAYS),
        "success",
    )
    return redirect(url_for("hall.changes"), code=303)


@bp.post("/changes/address")
def change_address():
    form = AddressForm(prefix="addr")
    if not form.validate_on_submit():
        return _changes_page(422, address=form)
    try:
        change_svc.change_address(
            _me(), form.address.data, _otp_id("change"), form.code.data, current_user.actor
        )
    except change_svc.Refused as exc:
        _field_error(form, exc, "address")
        return _changes_page(422, address=form)
    _otp_forget("change")
    flash(_("联系地址已变更"), "success")
    return redirect(url_for("hall.changes"), code=303)


@bp.post("/changes/phone")
def change_phone_start():
    form = PhoneStartForm(prefix="phone")
    if not form.validate_on_submit():
        return _changes_page(422, phone=form)
    try:
        old, new = change_svc.start_phone_change(_me(), form.phone.data)
    except change_svc.Refused as exc:
        _field_error(form, exc, "phone")
        return _changes_page(422, phone=form)
    _otp_remember("change", old)
    _otp_remember("change_new", new, phone=change_svc.normalize_phone(form.phone.data))
    return redirect(url_for("hall.change_phone_confirm"), code=303)


@bp.route("/changes/phone/confirm", methods=["GET", "POST"])
def change_phone_confirm():
    pending = _otp().get("change_new") or {}
    if not pending.get("phone"):
        flash(_("请先填写新手机号码并获取验证码"), "warning")
        return redirect(url_for("hall.changes"), code=303)
    form = PhoneConfirmForm()
    status = 200
    if request.method == "POST":
        status = 422
        if form.validate_on_submit():
            try:
                change_svc.change_phone(
                    _me(),
                    pending["phone"],
                    _otp_id("change"),
                    form.old_code.data,
                    pending.get("id"),
                    form.new_code.data,
                    current_user.actor,
                )
            except change_svc.Refused as exc:
                _field_error(form, exc, "old_code")
            else:
                _otp_forget("change", "change_new")
                flash(_("手机号码已变更，今后的验证码将发送至新号码"), "success")
                return redirect(url_for("hall.changes"), code=303)
    return render_template(
        "hall/change_phone.html",
        form=form,
        old_phone=mask_phone(_me().phone),
        new_phone=mask_phone(pending["phone"]),
        restart=EmptyForm(),
    ), status


@bp.post("/changes/phone/cancel")
def change_phone_cancel():
    if not EmptyForm().validate_on_submit():
        abort(400)
    _otp_forget("change_new")
    return redirect(url_for("hall.changes"), code=303)


# --- my cases -----------------------------------------------------------------------------


@bp.get("/cases")
def cases():
    views = tracking.my_cases(_me(), _today())
    # the 好差评 line of every case at once (rating_prompt per case would be N+1 queries)
    prompts = ratings.depositor_prompts(_me(), "case", [v.case.id for v in views])
    return render_template("hall/cases.html", cases=views, prompts=prompts)


@bp.get("/cases/<int:case_id>")
def case(case_id: int):
    try:
        view = tracking.my_case(_me(), case_id, _today())
    except tracking.NotFound:
        abort(404)
    return render_template("hall/case.html", c=view)
