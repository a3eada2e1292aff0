"""Forms of the employer hall, of operator activation and of registration tracking.

The forms check shape (required, lengths, formats); the ranges the center configures (ratios,
deposit base floor and ceiling, the effective month) are checked by ``services.employers``,
whose refusals are shown next to the field they concern.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, PasswordField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Regexp

from portal.forms import choices, resident_id_valid, uscc_valid
from portal.public.hall_forms import GetForm, code_field
from portal.services.employers import ROSTER_STATUSES


def _required():
    return DataRequired(message=_l("此项必填"))


def month_field(label=None):
    return StringField(
        label or _l("生效月份"),
        [
            _required(),
            Regexp(
                r"^\s*\d{4}-(0[1-9]|1[0-2])\s*$",
                message=_l("请按“年-月”填写生效月份，例如 2026-12"),
            ),
        ],
        render_kw={"type": "month", "autocomplete": "off", "placeholder": "2026-12"},
    )


class SendCodeForm(FlaskForm):
    next = HiddenField()


class RosterSearchForm(GetForm):
    q = StringField(
        _l("姓名或个人账号"),
        [Length(max=40, message=_l("最多 40 个字"))],
        render_kw={"type": "search", "autocomplete": "off", "placeholder": _l("输入姓名或账号")},
    )
    status = SelectField(
        _l("账户状态"),
        choices=choices([("", _l("全部"))] + [(s, s) for s in ROSTER_STATUSES]),
        default="",
        invalid_choice_message=_l("请从列表中选择"),
    )


class ContactForm(FlaskForm):
    contact_name = StringField(
        _l("联系人"),
        [_required(), Length(min=2, max=40, message=_l("请填写 2–40 个字"))],
        render_kw={"autocomplete": "name"},
    )
    contact_phone = StringField(
        _l("联系电话"),
        [_required(), Length(max=20, message=_l("电话号码过长"))],
        render_kw={"inputmode": "tel", "autocomplete": "tel"},
    )
    code = code_field()


class AddressForm(FlaskForm):
    address = TextAreaField(
        _l("单位地址"),
        [_required(), Length(min=4, max=200, message=_l("请填写 4–200 个字"))],
        render_kw={"rows": 2, "autocomplete": "street-address"},
    )
    code = code_field()


class RatioForm(FlaskForm):
    employer_ratio = StringField(
        _l("单位缴存比例（%）"),
        [_required(), Regexp(r"^\s*\d{1,2}\s*%?\s*$", message=_l("请填写整数百分比，如 10"))],
        render_kw={"inputmode": "numeric", "maxlength": 3},
    )
    employee_ratio = StringField(
        _l("个人缴存比例（%）"),
        [_required(), Regexp(r"^\s*\d{1,2}\s*%?\s*$", message=_l("请填写整数百分比，如 10"))],
        render_kw={"inputmode": "numeric", "maxlength": 3},
    )
    effective_from = month_field()
    code = code_field()


class BaseForm(FlaskForm):
    deposit_base = StringField(
        _l("新缴存基数（元）"),
        [
            _required(),
            Regexp(
                r"^\s*[\d,]{1,9}(\.\d{1,2})?\s*$",
                message=_l("请填写金额，最多两位小数，例如 6500.00"),
            ),
        ],
        render_kw={"inputmode": "decimal", "autocomplete": "off"},
    )
    effective_from = month_field()
    code = code_field()


class OperatorForm(FlaskForm):
    name = StringField(
        _l("经办人姓名"), [_required(), Length(min=2, max=40, message=_l("请填写 2–40 个字"))]
    )
    resident_id = StringField(
        _l("经办人身份证号码"), [_required(), resident_id_valid], render_kw={"autocomplete": "off"}
    )
    phone = StringField(
        _l("经办人手机号码"),
        [_required(), Regexp(r"^\s*1[3-9]\d{9}\s*$", message=_l("请输入 11 位手机号码"))],
        render_kw={"inputmode": "tel", "autocomplete": "off", "maxlength": 11},
    )
    code = code_field(_l("短信验证码（发送至主经办人手机）"))


class OperatorActionForm(FlaskForm):
    code = code_field(_l("短信验证码（发送至主经办人手机）"))


class CertificateForm(FlaskForm):
    addressee = StringField(
        _l("证明接收单位"),
        [_required(), Length(min=2, max=60, message=_l("请填写 2–60 个字"))],
        render_kw={"autocomplete": "off"},
    )


class ActivateForm(FlaskForm):
    credit_code = StringField(
        _l("统一社会信用代码"),
        [_required(), uscc_valid],
        render_kw={"autocomplete": "organization", "autocapitalize": "characters"},
    )
    resident_id = StringField(
        _l("经办人身份证号码"),
        [_required(), resident_id_valid],
        render_kw={"autocomplete": "username"},
    )
    code = StringField(
        _l("激活验证码"),
        [_required(), Regexp(r"^\d{6}$", message=_l("请输入 6 位数字验证码"))],
        render_kw={"autocomplete": "one-time-code", "inputmode": "numeric", "maxlength": 6},
    )
    password = PasswordField(
        _l("设置密码"),
        [_required(), Length(max=128)],
        render_kw={"autocomplete": "new-password"},
    )
    confirm = PasswordField(
        _l("确认密码"),
        [_required(), Length(max=128)],
        render_kw={"autocomplete": "new-password"},
    )


class ActivateCodeForm(FlaskForm):
    """The "重新获取激活验证码" button: only the credit code and the resident ID count."""

    credit_code = ActivateForm.credit_code
    resident_id = ActivateForm.resident_id


class TrackForm(FlaskForm):
    receipt_no = StringField(
        _l("受理回执编号"),
        [_required(), Length(max=30, message=_l("回执编号过长"))],
        render_kw={"autocomplete": "off", "autocapitalize": "characters"},
    )
    credit_code = StringField(
        _l("统一社会信用代码"),
        [_required(), uscc_valid],
        render_kw={"autocomplete": "off", "autocapitalize": "characters"},
    )
