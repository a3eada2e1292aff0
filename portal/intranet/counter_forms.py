"""Forms of the counter, the ledger filters and the platform file page."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal, InvalidOperation

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    HiddenField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, Optional, Regexp, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from portal import items
from portal.filters import local_today
from portal.forms import choices, resident_id_valid
from portal.rules.casestates import COLUMNS, INBOUND, OUTBOUND, STATE_LABELS
from portal.rules.ids import is_valid_bank_card, is_valid_uscc
from portal.services.counter import AppField, application_fields

INVALID_CHOICE = _l("请从列表中选择")


def _required():
    return DataRequired(message=_l("此项必填"))


def _strip(value):
    return value.strip() if isinstance(value, str) else value


# --- step 1: item and deposit-place center ------------------------------------------------


class StartForm(FlaskForm):
    """Which item, and which center holds the applicant's account (a GET form)."""

    class Meta:
        csrf = False

    item = SelectField(
        _l("办理事项"), [_required()], choices=[], invalid_choice_message=INVALID_CHOICE
    )
    center = SelectField(
        _l("申请人缴存地公积金中心"),
        [_required()],
        choices=[],
        invalid_choice_message=INVALID_CHOICE,
    )
    override = HiddenField()

    def __init__(self, *args, centers=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.item.choices = choices(
            [("", _l("请选择事项"))] + [(i.code, i.name) for i in items.ITEMS]
        )
        self.center.choices = choices(
            [("", _l("请选择缴存地中心"))] + [(c.code, f"{c.name}（{c.code}）") for c in centers]
        )


class GuidedForm(FlaskForm):
    """The clerk sent the applicant to their center's online channel (recorded)."""

    item = HiddenField()
    center = HiddenField()


# --- step 2: the application --------------------------------------------------------------


def _date_not_future(form, field):
    value = (field.data or "").strip()
    if not value:
        return
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise ValidationError(_l("日期格式应为 年-月-日，例如 2026-11-25")) from None
    if day > local_today():
        raise ValidationError(_l("日期不能晚于今天"))
    field.data = day.isoformat()


def _money(form, field):
    value = (field.data or "").strip().replace(",", "").replace("，", "")
    if not value:
        return
    if not re.fullmatch(r"\d{1,10}(\.\d{1,2})?", value):
        raise ValidationError(_l("请输入金额（元），最多两位小数，例如 680000.00"))
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise ValidationError(_l("请输入金额（元）")) from None
    if amount <= 0:
        raise ValidationError(_l("金额应大于 0"))
    field.data = f"{amount:.2f}"


def _uscc(form, field):
    field.data = (field.data or "").strip().upper()
    if field.data and not is_valid_uscc(field.data):
        raise ValidationError(_l("统一社会信用代码不正确"))


def _card(form, field):
    field.data = re.sub(r"\s+", "", field.data or "")
    if field.data and not is_valid_bank_card(field.data):
        raise ValidationError(_l("银行卡号不正确，请核对"))


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()

    def pre_validate(self, form):
        values = {str(c.value) for c in self.choices}
        for d in self.data or []:
            if d not in values:
                raise ValidationError(_l("材料选择无效"))


class ApplicationBase(FlaskForm):
    item = HiddenField()
    center = HiddenField()
    override = HiddenField()
    applicant_name = StringField(_l("申请人姓名"), [_required(), Length(max=40)], filters=[_strip])
    resident_id = StringField(
        _l("身份证号码"),
        [_required(), resident_id_valid],
        render_kw={"autocomplete": "off", "spellcheck": "false"},
    )
    phone = StringField(
        _l("联系电话"),
        [_required(), Regexp(r"^1\d{10}$", message=_l("请输入 11 位手机号码"))],
        filters=[_strip],
        render_kw={"inputmode": "numeric", "autocomplete": "off"},
    )


def _make_field(spec: AppField):
    checks = [_required()] if spec.required else [Optional()]
    render = {}
    if spec.kind == "choice":
        return SelectField(
            spec.label,
            checks,
            choices=choices([("", _l("请选择"))] + [(c, c) for c in spec.choices]),
            invalid_choice_message=INVALID_CHOICE,
            description=spec.hint,
        )
    if spec.kind == "textarea":
        return TextAreaField(
            spec.label,
            [*checks, Length(max=spec.max_length)],
            filters=[_strip],
            description=spec.hint,
            render_kw={"rows": 3},
        )
    if spec.kind == "date":
        checks.append(_date_not_future)
        render = {"type": "date"}
    elif spec.kind == "money":
        checks.append(_money)
        render = {"inputmode": "decimal"}
    elif spec.kind == "uscc":
        checks.append(_uscc)
        render = {"spellcheck": "false", "maxlength": 18}
    elif spec.kind == "card":
        checks.append(_card)
        render = {"inputmode": "numeric", "autocomplete": "off"}
    else:
        checks.append(Length(max=spec.max_length))
    return StringField(
        spec.label, checks, filters=[_strip], description=spec.hint, render_kw=render
    )


FIELD_PREFIX = "app_"


def application_form(the_item: items.Item, needs_reason: bool, formdata=None, **kwargs):
    """The application form for ``the_item``: applicant, the item's fields and its checklist;
    with ``needs_reason``, why the applicant cannot use their center's online channel."""

    class ApplicationForm(ApplicationBase):
        pass

    for spec in application_fields(the_item.code):
        setattr(ApplicationForm, FIELD_PREFIX + spec.key, _make_field(spec))
    ApplicationForm.materials = MultiCheckboxField(
        _l("已收取的材料"), choices=choices([(m.code, m.name) for m in the_item.materials])
    )
    if needs_reason:
        ApplicationForm.override_reason = TextAreaField(
            _l("申请人无法使用网办渠道的原因"),
            [_required(), Length(max=200)],
            filters=[_strip],
            render_kw={"rows": 2},
        )
    if formdata is None:
        return ApplicationForm(**kwargs)
    return ApplicationForm(formdata=formdata, **kwargs)


def application_values(form, item: items.Item) -> dict[str, str]:
    return {
        spec.key: getattr(form, FIELD_PREFIX + spec.key).data or ""
        for spec in application_fields(item.code)
    }


def app_fields(form, item: items.Item):
    """The bound fields of the item's application data, in order (for the template)."""
    return [getattr(form, FIELD_PREFIX + spec.key) for spec in application_fields(item.code)]


# --- materials ----------------------------------------------------------------------------


class UploadForm(FlaskForm):
    material = SelectField(_l("材料名称"), choices=[], invalid_choice_message=INVALID_CHOICE)
    file = FileField(
        _l("扫描件或照片"),
        [FileRequired(message=_l("请选择要上传的文件"))],
        render_kw={"accept": "application/pdf,image/jpeg,image/png"},
        description=_l("PDF、JPEG 或 PNG，不超过 5 MB，扩展名须与文件内容一致"),
    )


# --- ledger filters -----------------------------------------------------------------------


def _state_choices():
    seen, options = set(), [("", _l("全部状态"))]
    for direction in (OUTBOUND, INBOUND):
        for state in COLUMNS[direction]:
            if state not in seen:
                seen.add(state)
                label = STATE_LABELS[direction][state]
                if state not in COLUMNS[INBOUND] or state not in COLUMNS[OUTBOUND]:
                    label = f"{label}（{'外地' if direction == OUTBOUND else '本地'}）"
                options.append((state, label))
    return options


def _optional_date(form, field):
    value = (field.data or "").strip()
    field.data = value
    if value:
        try:
            date.fromisoformat(value)
        except ValueError:
            raise ValidationError(_l("日期格式应为 年-月-日")) from None


class LedgerFilterForm(FlaskForm):
    class Meta:
        csrf = False

    date_from = StringField(_l("受理/接收日期 自"), [_optional_date], render_kw={"type": "date"})
    date_to = StringField(_l("至"), [_optional_date], render_kw={"type": "date"})
    item = SelectField(_l("事项"), choices=[], default="", invalid_choice_message=INVALID_CHOICE)
    direction = SelectField(
        _l("方向"),
        default="",
        choices=choices(
            [
                ("", _l("全部")),
                (OUTBOUND, _l("外地业务（本中心受理）")),
                (INBOUND, _l("本地业务（平台接收）")),
            ]
        ),
        invalid_choice_message=INVALID_CHOICE,
    )
    state = SelectField(_l("状态"), choices=[], default="", invalid_choice_message=INVALID_CHOICE)
    center = SelectField(
        _l("对方中心"), choices=[], default="", invalid_choice_message=INVALID_CHOICE
    )

    def __init__(self, *args, centers=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.item.choices = choices(
            [("", _l("全部事项"))] + [(i.code, i.short) for i in items.ITEMS]
        )
        self.state.choices = choices(_state_choices())
        self.center.choices = choices([("", _l("全部中心"))] + [(c.code, c.name) for c in centers])

    def validate_date_to(self, field):
        if self.date_from.data and field.data and field.data < self.date_from.data:
            raise ValidationError(_l("结束日期不能早于开始日期"))


# --- platform files -----------------------------------------------------------------------


class PackageImportForm(FlaskForm):
    package = FileField(
        _l("业务包文件"),
        [FileRequired(message=_l("请选择要导入的业务包（.zip）"))],
        render_kw={"accept": ".zip,application/zip"},
        description=_l("由缴存地或受理地中心导出、经签名的 .zip 业务包"),
    )


class PackageExportForm(FlaskForm):
    case_no = StringField(
        _l("办件编号"),
        [_required(), Length(max=24)],
        filters=[_strip],
        render_kw={"autocomplete": "off", "spellcheck": "false"},
    )
