"""Processing inbound cases (办理), the approvals queue (待复核) and the daily reconciliation
(对账), under /staff/processing/ (issue 7).

A handler reaches a case's processing page from the card detail ("办理"); each item has its
form, which calls one ``services.processing`` function. Every page renders in full; an htmx
request gets the panel fragment. Invalid input answers 422 with the message next to the field.
"""

from __future__ import annotations

from datetime import date, timedelta

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    request,
    url_for,
)
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import (
    DateField,
    DecimalField,
    IntegerField,
    RadioField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    Regexp,
)

from portal import htmx
from portal.access import guard_kind, require_roles
from portal.forms import choices, resident_id_valid, uscc_valid
from portal.intranet import common
from portal.services import processing as svc
from portal.services import reconciliation
from portal.services.changes import BANKS

bp = Blueprint("processing", __name__, url_prefix="/staff/processing")
bp.before_request(guard_kind("staff"))

PAGE = "intranet/processing.html"
PANEL = "intranet/_processing_panel.html"


def _required(message=None):
    return DataRequired(message=message or _l("此项必填"))


# --- forms --------------------------------------------------------------------------------


class VersionForm(FlaskForm):
    version = IntegerField(_l("版本"), [Optional()])


class PurchaseForm(VersionForm):
    property_no = StringField(
        _l("购房合同或不动产权证书编号"),
        [_required(), Length(min=4, max=60, message=_l("4–60 位"))],
    )
    property_address = StringField(
        _l("房屋坐落"), [_required(), Length(min=4, max=200, message=_l("4–200 个字"))]
    )
    purchase_date = DateField(
        _l("购房日期"), [InputRequired(message=_l("请填写日期，如 2026-10-08"))]
    )
    price = DecimalField(
        _l("房屋总价（元）"),
        [
            InputRequired(message=_l("请填写金额")),
            NumberRange(min=0.01, message=_l("须大于 0")),
        ],
        places=2,
        render_kw={"inputmode": "decimal"},
    )
    spouse_name = StringField(_l("配偶姓名"), [Optional(), Length(max=40)])
    spouse_id_no = StringField(_l("配偶身份证号码"), [Optional(), Length(max=18)])
    co_owners = TextAreaField(
        _l("其他共有人"),
        [Optional(), Length(max=500)],
        render_kw={"rows": 2},
        description=_l("每行一位：姓名 身份证号码；没有可不填"),
    )
    amount = DecimalField(
        _l("申请提取金额（元）"),
        [Optional(), NumberRange(min=0.01, message=_l("须大于 0"))],
        places=2,
        render_kw={"inputmode": "decimal"},
        description=_l("不填则按可提取额度计算"),
    )
    card_source = RadioField(
        _l("收款银行卡"),
        choices=choices(svc.CARD_SOURCES.items()),
        default="file",
        validators=[InputRequired(message=_l("请选择收款银行卡"))],
    )


class CardForm(VersionForm):
    card_source = RadioField(
        _l("收款银行卡"),
        choices=choices(svc.CARD_SOURCES.items()),
        default="file",
        validators=[InputRequired(message=_l("请选择收款银行卡"))],
    )


class PayoffForm(CardForm):
    loan = SelectField(_l("贷款"), choices=[], validate_choice=False)


class LoanForm(VersionForm):
    loan = SelectField(_l("贷款"), choices=[], validate_choice=False)


class UsageForm(VersionForm):
    addressee = StringField(
        _l("出具对象（贷款受理中心或银行）"),
        [_required(), Length(max=100, message=_l("不超过 100 字"))],
    )


class EmployerForm(VersionForm):
    name = StringField(_l("单位名称"), [_required(), Length(min=2, max=120)])
    credit_code = StringField(_l("统一社会信用代码"), [_required(), uscc_valid])
    address = StringField(_l("单位地址"), [_required(), Length(min=4, max=200)])
    contact_name = StringField(_l("联系人"), [Optional(), Length(max=40)])
    contact_phone = StringField(_l("联系电话"), [Optional(), Length(max=20)])
    employer_ratio = IntegerField(
        _l("单位缴存比例（%）"), [Optional()], description=_l("不填按本中心上限")
    )
    employee_ratio = IntegerField(_l("个人缴存比例（%）"), [Optional()])
    operator_name = StringField(_l("单位经办人姓名"), [_required(), Length(min=2, max=40)])
    operator_resident_id = StringField(_l("经办人身份证号码"), [_required(), resident_id_valid])
    operator_phone = StringField(
        _l("经办人手机号码"),
        [_required(), Regexp(r"^1[3-9]\d{9}$", message=_l("请输入 11 位手机号码"))],
        description=_l("激活短信发送至此号码"),
    )


class ChangeForm(VersionForm):
    phone = StringField(_l("新手机号码"), [Optional(), Length(max=20)])
    bank_card = StringField(_l("新提取银行卡号"), [Optional(), Length(max=23)])
    bank_name = SelectField(
        _l("开户银行"),
        choices=choices([("", "—")] + [(b, b) for b in BANKS]),
        validate_choice=False,  # checked with the card (services.changes.check_card)
    )
    address = StringField(_l("新联系地址"), [Optional(), Length(max=200)])


class EmployerChangeForm(VersionForm):
    contact_name = StringField(_l("新联系人"), [Optional(), Length(max=40)])
    contact_phone = StringField(_l("新联系电话"), [Optional(), Length(max=20)])
    address = StringField(_l("新单位地址"), [Optional(), Length(max=200)])
    employer_ratio = StringField(_l("单位缴存比例（%）"), [Optional(), Length(max=4)])
    employee_ratio = StringField(_l("个人缴存比例（%）"), [Optional(), Length(max=4)])
    effective_from = StringField(
        _l("比例生效月份"),
        [Optional(), Regexp(r"^\d{4}-\d{2}$", message=_l("请按“年-月”填写，如 2026-12"))],
        description=_l("只变更比例时填写；不填为本月"),
    )


class ReasonForm(VersionForm):
    reason = TextAreaField(
        _l("不予办理的原因"),
        [_required(_l("请填写原因")), Length(max=500, message=_l("不超过 500 字"))],
        render_kw={"rows": 3, "maxlength": 500},
    )


class RefuseForm(VersionForm):
    reason = TextAreaField(
        _l("退回原因"),
        [_required(_l("请填写退回原因")), Length(max=500, message=_l("不超过 500 字"))],
        render_kw={"rows": 2, "maxlength": 500},
    )


class DayForm(FlaskForm):
    class Meta:
        csrf = False

    date = DateField(_l("对账日期"), [Optional()])


# --- helpers ------------------------------------------------------------------------------


def _center() -> str:
    return current_app.config["CENTER_NAME"]


@bp.app_template_global("staff_processing_links")
def staff_processing_links() -> list[common.NavLink]:
    """待复核 (handlers), 签发证明 (officials), 结清证明 (auditor), 对账 (handlers, liaison)."""
    if not current_user.is_authenticated or current_user.kind != "staff":
        return []
    role = current_user.role
    links = []
    if role == "handler":
        n = svc.approvals_count(current_user.obj)
        label = f"待复核（{n}）" if n else "待复核"
        links.append(common.NavLink("approvals", label, url_for("processing.approvals")))
    if role == "official":
        links.append(common.NavLink("officials", "签发证明", url_for("officials.queue")))
    if role == "auditor":
        links.append(common.NavLink("officials", "结清证明", url_for("officials.certificates")))
    if role in reconciliation.ROLES:
        links.append(common.NavLink("reconcile", "对账", url_for("processing.reconcile")))
    if role == "clerk":
        links.append(common.NavLink("officials", "结清证明申请", url_for("officials.counter")))
    return links


def _case_or_404(case_id: int):
    try:
        return svc.case_for(common.staff_user(), case_id)
    except svc.NotFound:
        abort(404)


def _forms(p: svc.Panel, **given) -> dict:
    """Every form of the panel, bound where given, otherwise prefilled from the case."""
    app = p.case.application or {}
    version = {"version": p.case.version}
    loans = [(str(loan.id), _loan_label(loan)) for loan in p.loans]
    forms = {
        "purchase_form": PurchaseForm(
            formdata=None,
            data={
                **version,
                "property_no": app.get("contract_no", ""),
                "property_address": app.get("property_address", ""),
                "purchase_date": _parse_date(app.get("purchase_date")),
                "price": svc.parse_money(app.get("price")) if app.get("price") else None,
                "card_source": "application" if p.app_card_masked else "file",
            },
        ),
        "card_form": CardForm(
            formdata=None,
            data={**version, "card_source": "application" if p.app_card_masked else "file"},
        ),
        "payoff_form": PayoffForm(
            formdata=None,
            data={
                **version,
                "card_source": "file",
                "loan": _preferred_loan(p, "active"),
            },
        ),
        "loan_form": LoanForm(
            formdata=None, data={**version, "loan": _preferred_loan(p, "settled")}
        ),
        "usage_form": UsageForm(formdata=None, data={**version, "addressee": app.get("addressee")}),
        "employer_form": EmployerForm(
            formdata=None,
            data={
                **version,
                "name": app.get("employer_name", ""),
                "credit_code": app.get("credit_code", ""),
                "address": app.get("employer_address", ""),
                "operator_name": app.get("operator_name", ""),
            },
        ),
        "change_form": ChangeForm(formdata=None, data=version),
        "employer_change_form": EmployerChangeForm(formdata=None, data=version),
        "version_form": VersionForm(formdata=None, data=version),
        "decline_form": ReasonForm(formdata=None, data=version),
        "withdraw_form": VersionForm(formdata=None),
    }
    forms.update({k: v for k, v in given.items() if v is not None})
    for name in ("payoff_form", "loan_form"):
        forms[name].loan.choices = choices([("", "请选择")] + loans)
    return forms


def _loan_label(loan) -> str:
    state = "已结清" if loan.status == "settled" else f"未结清，剩余本金 {loan.outstanding:,.2f} 元"
    return f"{loan.contract_no}（{state}）"


def _preferred_loan(p: svc.Panel, status: str) -> str:
    wanted = str((p.case.application or {}).get("loan_contract_no") or "").strip()
    for loan in p.loans:
        if loan.contract_no == wanted:
            return str(loan.id)
    for loan in p.loans:
        if loan.status == status:
            return str(loan.id)
    return ""


def _parse_date(text):
    try:
        return date.fromisoformat(str(text)) if text else None
    except ValueError:
        return None


def _panel_context(case_id: int, **extra) -> dict:
    try:
        p = svc.panel(common.staff_user(), case_id, common.today())
    except svc.NotFound:
        abort(404)
    forms = _forms(p, **{k: v for k, v in extra.items() if k.endswith("_form")})
    context = {k: v for k, v in extra.items() if not k.endswith("_form")}
    preview = None
    if p.may_act and p.item_code == "retirement_withdrawal" and p.open_payout is None:
        preview = svc.retirement_preview(common.staff_user(), case_id, common.today())
    if p.may_act and p.item_code == "early_repayment" and p.open_payout is None:
        loan_id = forms["payoff_form"].loan.data
        if loan_id and str(loan_id).isdigit():
            try:
                preview = svc.payoff_preview(
                    common.staff_user(), case_id, int(loan_id), common.today()
                )
            except svc.Refused:
                preview = None
    context.setdefault("preview", preview)
    context.setdefault("quote", None)
    context.setdefault("reasons", [])
    context.setdefault("message", None)
    context.setdefault("level", "success")
    return dict(p=p, **forms, **context)


def _render_panel(case_id: int, status: int = 200, **extra):
    return htmx.render(PAGE, PANEL, status=status, **_panel_context(case_id, **extra))


def _done(case_id: int, message: str, level: str = "success"):
    """A valid action: flash + 303 without htmx; the fresh panel with the message with htmx."""
    if not htmx.is_htmx():
        flash(message, level)
        return redirect(url_for(".case", case_id=case_id), 303)
    return _render_panel(case_id, 200, message=message, level=level)


def _refused(case_id: int, exc: svc.Refused, form_name: str | None, form, status: int = 422):
    """A refusal: the reason next to its field when it names one, else every reason listed."""
    if form is not None and exc.field and hasattr(form, exc.field):
        getattr(form, exc.field).errors = list(getattr(form, exc.field).errors or []) + [
            exc.message
        ]
        return _render_panel(case_id, status, **{form_name: form})
    extra = {form_name: form} if form_name else {}
    decline = ReasonForm(
        formdata=None,
        data={"reason": "；".join(exc.reasons), "version": _case_version(case_id)},
    )
    return _render_panel(case_id, status, reasons=exc.reasons, decline_form=decline, **extra)


def _case_version(case_id: int) -> int | None:
    try:
        return svc.case_for(common.staff_user(), case_id).version
    except svc.NotFound:
        return None


# --- the processing page ------------------------------------------------------------------


@bp.get("/case/<int:case_id>")
@require_roles("handler")
def case(case_id: int):
    _case_or_404(case_id)
    return _render_panel(case_id)


@bp.get("/case/<int:case_id>/result/<int:attachment_id>")
@require_roles("handler", "liaison", "auditor", "clerk")
def result(case_id: int, attachment_id: int):
    try:
        attachment, data = svc.result_file(common.staff_user(), case_id, attachment_id)
    except svc.NotFound:
        abort(404)
    return common.download(data, attachment.filename, attachment.content_type)


def _purchase_input(form: PurchaseForm) -> svc.PurchaseInput:
    return svc.PurchaseInput(
        property_no=form.property_no.data or "",
        property_address=form.property_address.data or "",
        purchase_date=form.purchase_date.data,
        price=form.price.data,
        spouse_name=form.spouse_name.data or "",
        spouse_id_no=form.spouse_id_no.data or "",
        co_owners=svc.parse_co_owners(form.co_owners.data),
        amount=form.amount.data,
        card_source=form.card_source.data or "file",
    )


@bp.post("/case/<int:case_id>/purchase")
@require_roles("handler")
def purchase(case_id: int):
    _case_or_404(case_id)
    form = PurchaseForm()
    if not form.validate():
        return _render_panel(case_id, 422, purchase_form=form)
    try:
        data = _purchase_input(form)
        if request.form.get("action") == "preview":
            quote = svc.quote_purchase(common.staff_user(), case_id, data, common.today())
            return _render_panel(
                case_id,
                200 if quote.ok else 422,
                purchase_form=form,
                quote=quote,
                reasons=quote.reasons,
            )
        record = svc.prepare_purchase(common.staff_user(), case_id, data, common.today())
    except svc.Refused as exc:
        return _refused(case_id, exc, "purchase_form", form)
    return _done(
        case_id, f"已提交复核：购房提取 {record.amount:,.2f} 元，请由本管理部其他经办人复核"
    )


@bp.post("/case/<int:case_id>/retirement")
@require_roles("handler")
def retirement(case_id: int):
    _case_or_404(case_id)
    form = CardForm()
    if not form.validate():
        return _render_panel(case_id, 422, card_form=form)
    try:
        record = svc.prepare_retirement(
            common.staff_user(), case_id, form.card_source.data, common.today()
        )
    except svc.Refused as exc:
        return _refused(case_id, exc, "card_form", form)
    return _done(case_id, f"已提交复核：正常退休提取 {record.amount:,.2f} 元")


@bp.post("/case/<int:case_id>/payoff")
@require_roles("handler")
def payoff(case_id: int):
    _case_or_404(case_id)
    form = PayoffForm()
    if not form.validate() or not (form.loan.data or "").isdigit():
        if not (form.loan.data or "").isdigit():
            form.loan.errors = ["请选择贷款"]
        return _render_panel(case_id, 422, payoff_form=form)
    try:
        record = svc.prepare_payoff(
            common.staff_user(), case_id, int(form.loan.data), form.card_source.data, common.today()
        )
    except svc.Refused as exc:
        return _refused(case_id, exc, "payoff_form", form)
    return _done(case_id, f"已提交复核：提前还清贷款，公积金冲还 {record.amount:,.2f} 元")


@bp.post("/case/<int:case_id>/settlement")
@require_roles("handler")
def settlement(case_id: int):
    _case_or_404(case_id)
    form = LoanForm()
    if not form.validate() or not (form.loan.data or "").isdigit():
        form.loan.errors = ["请选择贷款"]
        return _render_panel(case_id, 422, loan_form=form)
    try:
        request_ = svc.request_certificate(
            common.staff_user(), case_id, int(form.loan.data), common.today()
        )
    except svc.Refused as exc:
        return _refused(case_id, exc, "loan_form", form)
    if request_.status == "issued":
        return _done(case_id, "该贷款的结清证明已签发，已附加到办件，可以办结")
    return _done(case_id, "已提交审批签发，签发后证明将自动附加到办件")


@bp.post("/case/<int:case_id>/employer")
@require_roles("handler")
def employer(case_id: int):
    _case_or_404(case_id)
    form = EmployerForm()
    if not form.validate():
        return _render_panel(case_id, 422, employer_form=form)
    data = svc.EmployerInput(
        name=form.name.data,
        credit_code=form.credit_code.data,
        address=form.address.data,
        contact_name=form.contact_name.data or "",
        contact_phone=form.contact_phone.data or "",
        employer_ratio=form.employer_ratio.data,
        employee_ratio=form.employee_ratio.data,
        operator_name=form.operator_name.data,
        operator_resident_id=form.operator_resident_id.data,
        operator_phone=form.operator_phone.data,
    )
    try:
        case_ = svc.register_employer(
            common.staff_user(),
            case_id,
            form.version.data,
            data,
            common.today(),
            _center(),
            common.holiday_overrides(),
        )
    except svc.Refused as exc:
        return _refused(case_id, exc, "employer_form", form)
    return _done(case_.id, f"已登记开户并办结：{case_.result.get('note', '')}")


@bp.post("/case/<int:case_id>/query")
@require_roles("handler")
def query(case_id: int):
    _case_or_404(case_id)
    form = VersionForm()
    if not form.validate():
        abort(400)
    try:
        svc.process_query(
            common.staff_user(),
            case_id,
            form.version.data,
            common.today(),
            _center(),
            common.holiday_overrides(),
        )
    except svc.Refused as exc:
        return _refused(case_id, exc, None, None, 409)
    return _done(case_id, "已出具信息查询结果并办结")


@bp.post("/case/<int:case_id>/usage")
@require_roles("handler")
def usage(case_id: int):
    _case_or_404(case_id)
    form = UsageForm()
    if not form.validate():
        return _render_panel(case_id, 422, usage_form=form)
    try:
        svc.process_usage(
            common.staff_user(),
            case_id,
            form.version.data,
            form.addressee.data,
            common.today(),
            _center(),
            common.verify_url,
            common.holiday_overrides(),
        )
    except svc.Refused as exc:
        return _refused(case_id, exc, "usage_form", form)
    return _done(case_id, "已出具缴存使用证明并办结")


@bp.post("/case/<int:case_id>/change")
@require_roles("handler")
def change(case_id: int):
    _case_or_404(case_id)
    form = ChangeForm()
    if not form.validate():
        return _render_panel(case_id, 422, change_form=form)
    data = svc.ChangeInput(
        phone=form.phone.data or "",
        bank_card=form.bank_card.data or "",
        bank_name=form.bank_name.data or "",
        address=form.address.data or "",
    )
    try:
        svc.process_individual_change(
            common.staff_user(),
            case_id,
            form.version.data,
            data,
            common.today(),
            _center(),
            common.holiday_overrides(),
        )
    except svc.Refused as exc:
        return _refused(case_id, exc, "change_form", form)
    return _done(case_id, "已办理个人缴存信息变更并办结")


@bp.post("/case/<int:case_id>/employer-change")
@require_roles("handler")
def employer_change(case_id: int):
    _case_or_404(case_id)
    form = EmployerChangeForm()
    if not form.validate():
        return _render_panel(case_id, 422, employer_change_form=form)
    data = svc.EmployerChangeInput(
        contact_name=form.contact_name.data or "",
        contact_phone=form.contact_phone.data or "",
        address=form.address.data or "",
        employer_ratio=form.employer_ratio.data or "",
        employee_ratio=form.employee_ratio.data or "",
        effective_from=form.effective_from.data or "",
    )
    try:
        svc.process_employer_change(
            common.staff_user(),
            case_id,
            form.version.data,
            data,
            common.today(),
            _center(),
            common.holiday_overrides(),
        )
    except svc.Refused as exc:
        return _refused(case_id, exc, "employer_change_form", form)
    return _done(case_id, "已办理单位缴存信息变更并办结")


@bp.post("/case/<int:case_id>/finish")
@require_roles("handler")
def finish(case_id: int):
    _case_or_404(case_id)
    form = VersionForm()
    if not form.validate():
        abort(400)
    try:
        svc.finish(
            common.staff_user(),
            case_id,
            form.version.data,
            common.today(),
            _center(),
            common.verify_url,
            common.holiday_overrides(),
        )
    except svc.Refused as exc:
        return _refused(case_id, exc, None, None, 409)
    return _done(case_id, "办件已办结，结果已附加，可由联络人反馈")


@bp.post("/case/<int:case_id>/decline")
@require_roles("handler")
def decline(case_id: int):
    _case_or_404(case_id)
    form = ReasonForm()
    if not form.validate():
        return _render_panel(case_id, 422, decline_form=form)
    try:
        svc.decline(
            common.staff_user(),
            case_id,
            form.version.data,
            form.reason.data,
            common.today(),
            _center(),
            common.holiday_overrides(),
        )
    except svc.Refused as exc:
        return _refused(case_id, exc, "decline_form", form)
    return _done(case_id, "已作不予办理办结，告知书已附加")


@bp.post("/payout/<int:record_id>/withdraw")
@require_roles("handler")
def withdraw(record_id: int):
    try:
        record = svc.record_for(common.staff_user(), record_id)
    except svc.NotFound:
        abort(404)
    form = VersionForm()
    if not form.validate():
        abort(400)
    try:
        svc.withdraw_prepared(common.staff_user(), record_id)
    except svc.Refused as exc:
        return _refused(record.case_id, exc, None, None, 409)
    return _done(record.case_id, "已撤回，可重新经办", "success")


@bp.post("/payout/<int:record_id>/retry")
@require_roles("handler")
def retry(record_id: int):
    try:
        record = svc.record_for(common.staff_user(), record_id)
    except svc.NotFound:
        abort(404)
    if not VersionForm().validate():
        abort(400)
    try:
        record = svc.retry_payout(
            common.staff_user(), record_id, common.today(), _center(), common.verify_url
        )
    except svc.Refused as exc:
        return _refused(record.case_id, exc, None, None, 409)
    return _done(record.case_id, f"支付状态：{svc.STATUS_LABELS[record.status]}")


# --- the approvals queue (待复核) -----------------------------------------------------------


@bp.get("/approvals")
@require_roles("handler")
def approvals():
    view = svc.approvals(common.staff_user())
    return htmx.render(
        "intranet/processing_approvals.html",
        "intranet/_processing_approvals.html",
        a=view,
    )


def _review_page(record_id: int, status: int = 200, **extra):
    try:
        record = svc.record_for(common.staff_user(), record_id)
    except svc.NotFound:
        abort(404)
    view = svc.payout_view(common.staff_user(), record)
    context = dict(
        v=view,
        approve_form=extra.pop("approve_form", None)
        or VersionForm(formdata=None, data={"version": record.version}),
        refuse_form=extra.pop("refuse_form", None)
        or RefuseForm(formdata=None, data={"version": record.version}),
        message=extra.pop("message", None),
        level=extra.pop("level", "success"),
        reasons=extra.pop("reasons", []),
    )
    return htmx.render(
        "intranet/processing_review.html",
        "intranet/_processing_review.html",
        status=status,
        **context,
    )


@bp.get("/approvals/<int:record_id>")
@require_roles("handler")
def review(record_id: int):
    return _review_page(record_id)


def _review_done(record_id: int, message: str, level: str = "success"):
    if not htmx.is_htmx():
        flash(message, level)
        return redirect(url_for(".review", record_id=record_id), 303)
    return _review_page(record_id, message=message, level=level)


@bp.post("/approvals/<int:record_id>/approve")
@require_roles("handler")
def approve(record_id: int):
    try:
        svc.record_for(common.staff_user(), record_id)
    except svc.NotFound:
        abort(404)
    form = VersionForm()
    if not form.validate():
        abort(400)
    try:
        record = svc.approve(
            common.staff_user(),
            record_id,
            form.version.data,
            common.today(),
            _center(),
            common.verify_url,
        )
    except svc.Refused as exc:
        return _review_page(record_id, 409, reasons=exc.reasons)
    if record.status == "paid":
        return _review_done(record_id, f"复核通过，{record.amount:,.2f} 元已支付；请经办人办结办件")
    return _review_done(record_id, f"复核通过，支付状态：{svc.STATUS_LABELS[record.status]}")


@bp.post("/approvals/<int:record_id>/refuse")
@require_roles("handler")
def refuse(record_id: int):
    try:
        svc.record_for(common.staff_user(), record_id)
    except svc.NotFound:
        abort(404)
    form = RefuseForm()
    if not form.validate():
        return _review_page(record_id, 422, refuse_form=form)
    try:
        svc.refuse(common.staff_user(), record_id, form.reason.data)
    except svc.Refused as exc:
        if exc.field == "reason":
            form.reason.errors = [exc.message]
            return _review_page(record_id, 422, refuse_form=form)
        return _review_page(record_id, 409, reasons=exc.reasons)
    return _review_done(record_id, "已退回经办人")


# --- the daily reconciliation (对账) -------------------------------------------------------


@bp.get("/reconciliation")
@require_roles(*reconciliation.ROLES)
def reconcile():
    form = DayForm(request.args)
    status = 200
    day = common.today() - timedelta(days=1)
    if request.args and not form.validate():
        status = 422
    elif form.date.data:
        day = form.date.data
    form.date.data = day
    report = reconciliation.for_user(common.staff_user(), day)
    return htmx.render(
        "intranet/processing_reconciliation.html",
        "intranet/_processing_reconciliation.html",
        status=status,
        form=form,
        r=report,
    )
