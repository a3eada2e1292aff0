"""WTForms shared by the blueprints. Labels and messages are Chinese, through gettext."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Regexp, ValidationError

from portal.rules.ids import is_valid_resident_id, is_valid_uscc, normalize_resident_id


def resident_id_valid(form, field):
    field.data = normalize_resident_id(field.data)
    if not is_valid_resident_id(field.data):
        raise ValidationError(_l("身份证号码格式不正确"))


def uscc_valid(form, field):
    field.data = (field.data or "").strip().upper()
    if not is_valid_uscc(field.data):
        raise ValidationError(_l("统一社会信用代码不正确"))


def choices(pairs) -> list[SelectChoice]:
    """Select options from (value, label) pairs (WTForms 3.3+ deprecates bare tuples)."""
    return [SelectChoice(value, label) for value, label in pairs]


def _required():
    return DataRequired(message=_l("此项必填"))


class EmptyForm(FlaskForm):
    """For button-only POSTs: carries the CSRF token."""


class DepositorLoginForm(FlaskForm):
    resident_id = StringField(
        _l("身份证号码"),
        [_required(), resident_id_valid],
        render_kw={"autocomplete": "username", "inputmode": "text"},
    )
    password = PasswordField(
        _l("密码"), [_required(), Length(max=128)], render_kw={"autocomplete": "current-password"}
    )


class CodeForm(FlaskForm):
    code = StringField(
        _l("短信验证码"),
        [_required(), Regexp(r"^\d{6}$", message=_l("请输入 6 位数字验证码"))],
        render_kw={"autocomplete": "one-time-code", "inputmode": "numeric", "maxlength": 6},
    )


class TotpForm(FlaskForm):
    code = StringField(
        _l("动态口令"),
        [_required(), Regexp(r"^\d{6}$", message=_l("请输入 6 位数字动态口令"))],
        render_kw={"autocomplete": "one-time-code", "inputmode": "numeric", "maxlength": 6},
    )


class ActivationForm(FlaskForm):
    resident_id = StringField(_l("身份证号码"), [_required(), resident_id_valid])
    name = StringField(_l("姓名"), [_required(), Length(max=40)])


class NewPasswordForm(FlaskForm):
    password = PasswordField(
        _l("新密码"), [_required(), Length(max=128)], render_kw={"autocomplete": "new-password"}
    )
    confirm = PasswordField(
        _l("确认新密码"), [_required(), Length(max=128)], render_kw={"autocomplete": "new-password"}
    )


class OperatorLoginForm(FlaskForm):
    credit_code = StringField(
        _l("统一社会信用代码"),
        [_required(), uscc_valid],
        render_kw={"autocomplete": "organization"},
    )
    resident_id = StringField(
        _l("经办人身份证号码"),
        [_required(), resident_id_valid],
        render_kw={"autocomplete": "username"},
    )
    password = PasswordField(
        _l("密码"), [_required(), Length(max=128)], render_kw={"autocomplete": "current-password"}
    )


class StaffLoginForm(FlaskForm):
    username = StringField(
        _l("用户名"), [_required(), Length(max=40)], render_kw={"autocomplete": "username"}
    )
    password = PasswordField(
        _l("密码"), [_required(), Length(max=128)], render_kw={"autocomplete": "current-password"}
    )
