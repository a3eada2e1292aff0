"""WTForms shared by the blueprints. Labels and messages are Chinese, through gettext."""

from __future__ import annotations

import unicodedata
from functools import lru_cache

from babel import support
from flask import current_app, has_request_context
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from markupsafe import Markup, escape
from wtforms import HiddenField, PasswordField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.i18n import messages_path
from wtforms.meta import DefaultMeta
from wtforms.validators import DataRequired, Length, Regexp, StopValidation, ValidationError
from wtforms.widgets import core as wtforms_widgets_core

from portal.rules.ids import is_valid_resident_id, is_valid_uscc, normalize_resident_id

# --- input rules for every field of every form (issue 9, point 8) -------------------------
#
# Bound into each field by ``DefaultMeta.bind_field`` below, so every form of the portal
# (FlaskForm or plain wtforms.Form, in any blueprint) gets them without opting in:
# * control characters (and the invisible bidi overrides used to disguise text) are refused;
#   a multi-line field may hold line breaks and tabs, a single-line field tabs only;
# * non-ASCII decimal digits (full-width ０-９, Arabic-Indic ٠-٩ ...) are refused, so no
#   identifier, phone number, amount or code slips past a ``\d`` pattern, ``int()`` or
#   ``Decimal()`` (passwords excepted); numbers, dates and choices are checked as sent;
# * a text field without its own ``Length`` gets a ceiling (200; text areas and hidden fields
#   2 000), so nothing over-long reaches a page or a database column.
# HTML is not refused (it is text); Jinja escapes it wherever it is shown.

TEXT_CEILING = 200
TEXTAREA_CEILING = 2000
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f")


def plain_text(form, field):
    if isinstance(field, StringField):
        values = [field.data] if isinstance(field.data, str) else []
    else:  # numbers, dates, choices: what was sent (int() and Decimal() take any digits)
        values = [v for v in (field.raw_data or []) if isinstance(v, str)]
    allowed = "\t\r\n" if isinstance(field, TextAreaField) else "\t"
    for ch in "".join(values):
        category = unicodedata.category(ch)
        if (category == "Cc" and ch not in allowed) or ch in _BIDI_CONTROLS:
            raise StopValidation(_l("不能包含控制字符或不可见字符"))
        if category == "Nd" and not "0" <= ch <= "9" and not isinstance(field, PasswordField):
            raise StopValidation(_l("请使用半角数字（0–9）"))


def _bind_field(self, form, unbound_field, options):
    field = unbound_field.bind(form=form, **options)
    validators = [plain_text, *field.validators]
    if isinstance(field, StringField) and not any(
        isinstance(v, Length) and v.max >= 0 for v in validators
    ):
        long_ok = isinstance(field, TextAreaField | HiddenField)  # hidden: tokens, return URLs
        ceiling = TEXTAREA_CEILING if long_ok else TEXT_CEILING
        validators.append(Length(max=ceiling, message=_l("内容过长（不超过 %(max)d 个字）")))
    field.validators = validators
    return field


DefaultMeta.bind_field = _bind_field


# --- WTForms' own messages ("不是有效的小数" ...) in the request's language ------------------
#
# Flask-WTF reads WTForms' catalogue from disk again in every request that shows one of its
# messages (issue 10: a quarter of a millisecond per form post); the catalogues do not change
# while the process runs, so each language's is read once.


@lru_cache(maxsize=8)
def wtforms_catalogue(locale: str) -> support.Translations:
    return support.Translations.load(messages_path(), [locale], domain="wtforms")


def _get_translations(self, form):
    if not current_app.config.get("WTF_I18N_ENABLED", True):
        return DefaultMeta.get_translations(self, form)
    if not has_request_context():
        return None  # as Flask-WTF: WTForms' English messages
    return wtforms_catalogue(str(get_locale()))


FlaskForm.Meta.get_translations = _get_translations


def field_errors(field) -> list[str]:
    """The messages to show under a field: one fault, one message. A value that could not be
    read ("abc" for an amount) shows the reading error alone, not the range check that fails
    after it; an empty value shows the validators' "please enter" rather than "not a number".
    """
    unreadable = list(getattr(field, "process_errors", ()))
    if not unreadable:
        return list(field.errors)
    raw = getattr(field, "raw_data", None) or [""]
    if str(raw[0]).strip():
        return unreadable[:1]
    rest = [e for e in field.errors if e not in unreadable]
    return rest or unreadable[:1]


def resident_id_valid(form, field):
    field.data = normalize_resident_id(field.data)
    if not is_valid_resident_id(field.data):
        raise ValidationError(_l("身份证号码格式不正确"))


def uscc_valid(form, field):
    field.data = (field.data or "").strip().upper()
    if not is_valid_uscc(field.data):
        raise ValidationError(_l("统一社会信用代码不正确"))


# --- WTForms' attribute writer, faster (issue 10) -----------------------------------------
# Every field WTForms renders (its input and its label) writes its attributes through
# ``wtforms.widgets.html_params``, which formats each attribute with ``Markup.format``:
# markupsafe parses the format string in Python for every attribute, and that was half of a
# form field's rendering (a date field with its label and hint: 190 → 110 µs). This writes
# the same attributes, escaped the same way, with plain string formatting, and takes its
# place in WTForms (tests/test_forms_html_params.py checks it against WTForms' own).
_WTFORMS_HTML_PARAMS = wtforms_widgets_core.html_params


def html_params(**kwargs) -> Markup:
    """``wtforms.widgets.html_params``: the attributes sorted by name, ``True`` as a bare
    attribute, ``False`` left out, ``class_``/``for_`` and ``data_``/``aria_`` names
    cleaned, values escaped (double quotes too)."""
    params = []
    clean_key = wtforms_widgets_core.clean_key
    for key, value in sorted(kwargs.items()):
        if value is False:
            continue
        key = escape(clean_key(key))
        if value is True:
            params.append(key)
            continue
        value = escape(value)
        if '"' in value:  # only a Markup value keeps a raw quote; str.replace, not Markup's
            value = str.replace(value, '"', "&quot;")
        params.append(f'{key}="{value}"')
    return Markup(" ".join(params))  # noqa: S704  # nosec B704 - every part escaped above


def install_html_params() -> None:
    """Put :func:`html_params` where WTForms' widgets and labels look it up (the module, the
    package, and the widget classes that keep it as a static method). A WTForms that moved
    it keeps its own (slower, the same output)."""
    import wtforms.widgets

    original = _WTFORMS_HTML_PARAMS
    if wtforms_widgets_core.html_params is original:
        wtforms_widgets_core.html_params = html_params
    if getattr(wtforms.widgets, "html_params", None) is original:
        wtforms.widgets.html_params = html_params
    for cls in vars(wtforms_widgets_core).values():
        kept = cls.__dict__.get("html_params") if isinstance(cls, type) else None
        if isinstance(kept, staticmethod) and kept.__func__ is original:
            cls.html_params = staticmethod(html_params)


install_html_params()


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
