"""Forms of the depositor hall and of the public verification / tracking pages."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    DateField,
    DecimalField,
    HiddenField,
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
    ValidationError,
)

from portal.forms import choices, resident_id_valid
from portal.models import DEPOSIT_KINDS
from portal.rules.ids import is_valid_bank_card
from portal.services.changes import BANKS

INVALID_CHOICE = _l("请从列表中选择")


def _required():
    return DataRequired(message=_l("此项必填"))


def code_field(label=None):
    return StringField(
        label or _l("短信验证码"),
        [_required(), Regexp(r"^\d{6}$", message=_l("请输入 6 位数字验证码"))],
        render_kw={"autocomplete": "one-time-code", "inputmode": "numeric", "maxlength": 6},
    )


class GetForm(FlaskForm):
    """Query forms read from the URL (no CSRF: they change nothing)."""

    class Meta:
        csrf = False


# --- query ------------------------------------------------------------------------------


class DetailFilterForm(GetForm):
    year = SelectField(_l("年度"), choices=[], default="", invalid_choice_message=INVALID_CHOICE)
    kind = SelectField(
        _l("业务类型"),
        choices=choices([("", _l("全部"))] + [(k, k) for k in DEPOSIT_KINDS]),
        default="",
        invalid_choice_message=INVALID_CHOICE,
    )

    def set_years(self, years: list[int]) -> None:
        self.year.choices = choices([("", _l("全部年度"))] + [(str(y), f"{y}") for y in years])

    @property
    def year_value(self) -> int | None:
        return int(self.year.data) if self.year.data else None


class StatementForm(GetForm):
    year = SelectField(_l("对账年度"), choices=[], invalid_choice_message=INVALID_CHOICE)

    def set_years(self, years: list[int]) -> None:
        self.year.choices = choices([(str(y), f"{y}") for y in years])


class QuotaForm(GetForm):
    monthly_income = DecimalField(
        _l("月收入（元）"),
        [
            InputRequired(message=_l("请输入月收入")),
            NumberRange(
                min=Decimal("1"), max=Decimal("1000000"), message=_l("请输入 1–1,000,000 元")
            ),
        ],
        places=2,
        render_kw={"inputmode": "decimal"},
    )
    term_years = IntegerField(
        _l("期望贷款年限（年，可不填）"),
        [Optional(), NumberRange(min=1, max=30, message=_l("贷款年限为 1–30 年"))],
        render_kw={"inputmode": "numeric"},
    )
    first_home = SelectField(
        _l("购房套数"),
        choices=choices([("1", _l("首套住房")), ("0", _l("第二套住房"))]),
        default="1",
        invalid_choice_message=INVALID_CHOICE,
    )

    def validate_monthly_income(self, field):
        if field.data is not None and field.data != field.data.quantize(Decimal("0.01")):
            raise ValidationError(_l("金额最多两位小数"))


class PayoffCalcForm(GetForm):
    on = DateField(
        _l("计划还款日期"),
        [InputRequired(message=_l("请选择日期"))],
        format="%Y-%m-%d",
    )

    def check_range(self, today: date, last: date) -> bool:
        if self.on.data is None:
            return False
        if not today <= self.on.data <= last:
            self.on.errors = list(self.on.errors) + [
                f"请选择 {today:%Y-%m-%d} 至 {last:%Y-%m-%d} 之间的日期"
            ]
            return False
        return True


# --- actions with a one-time code ---------------------------------------------------------


class SendCodeForm(FlaskForm):
    next = HiddenField()


class CertificateForm(FlaskForm):
    addressee = StringField(
        _l("证明接收单位（贷款受理中心）"),
        [_required(), Length(min=2, max=60, message=_l("请填写 2–60 个字"))],
        render_kw={"list": "centers", "autocomplete": "off"},
    )


class RetirementForm(FlaskForm):
    token = HiddenField()
    code = code_field()


class PayoffForm(FlaskForm):
    token = HiddenField()
    funding = RadioField(
        _l("还款资金"),
        choices=choices(
            [
                ("balance", _l("先用公积金余额冲还，不足部分银行卡支付")),
                ("card", _l("全部由银行卡支付")),
            ]
        ),
        default="balance",
        invalid_choice_message=INVALID_CHOICE,
        validators=[InputRequired(message=_l("请选择还款资金来源"))],
    )
    code = code_field()


class PhoneStartForm(FlaskForm):
    phone = StringField(
        _l("新手机号码"),
        [_required(), Regexp(r"^\s*1[3-9]\d{9}\s*$", message=_l("请输入 11 位手机号码"))],
        render_kw={"inputmode": "tel", "autocomplete": "tel", "maxlength": 11},
    )


class PhoneConfirmForm(FlaskForm):
    old_code = code_field(_l("原手机号收到的验证码"))
    new_code = code_field(_l("新手机号收到的验证码"))


def card_valid(form, field):
    field.data = "".join((field.data or "").split())
    if not is_valid_bank_card(field.data):
        raise ValidationError(_l("银行卡号无效（应为 16–19 位数字，且校验位正确）"))


class CardForm(FlaskForm):
    card = StringField(
        _l("新银行卡号"),
        [_required(), card_valid],
        render_kw={"inputmode": "numeric", "autocomplete": "off", "maxlength": 23},
    )
    bank_name = SelectField(
        _l("开户银行"),
        choices=choices([("", _l("请选择"))] + [(b, b) for b in BANKS]),
        invalid_choice_message=_l("请选择开户银行"),
        validators=[_required()],
    )
    code = code_field()


class AddressForm(FlaskForm):
    address = TextAreaField(
        _l("新联系地址"),
        [_required(), Length(min=4, max=200, message=_l("请填写 4–200 个字"))],
        render_kw={"rows": 2, "autocomplete": "street-address"},
    )
    code = code_field()


# --- public pages -------------------------------------------------------------------------


class VerifyForm(GetForm):
    code = StringField(
        _l("核验码"),
        [_required(), Length(max=40, message=_l("核验码过长"))],
        render_kw={"autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false"},
    )


class TrackForm(FlaskForm):
    receipt_no = StringField(
        _l("受理回执编号"),
        [_required(), Length(max=30, message=_l("回执编号过长"))],
        render_kw={"autocomplete": "off", "autocapitalize": "characters"},
    )
    resident_id = StringField(
        _l("申请人身份证号码"),
        [_required(), resident_id_valid],
        render_kw={"autocomplete": "off"},
    )
