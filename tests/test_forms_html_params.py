"""WTForms' attribute writer replaced by a faster one (issue 10, ``portal.forms.html_params``):
the same HTML for every attribute, and in WTForms' place for every widget and label."""

from __future__ import annotations

import pytest
import wtforms.widgets
from hypothesis import given
from hypothesis import strategies as st
from markupsafe import Markup
from werkzeug.datastructures import MultiDict
from wtforms import (
    BooleanField,
    DateField,
    Form,
    PasswordField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length
from wtforms.widgets import core

from portal import forms

KEYS = st.sampled_from(
    [
        "id",
        "name",
        "class_",
        "for_",
        "value",
        "placeholder",
        "data_hx_get",
        "data_x__y",
        "aria_describedby",
        "aria-invalid",
        "required",
        "disabled",
        "type",
        "hx-post",
        "maxlength",
        'odd<"&name',  # not a Python name, but a key all the same
    ]
)
TEXT = st.text(alphabet=st.sampled_from(list("ab张 <>&\"'=\\{}%")), max_size=12)
VALUES = st.one_of(
    TEXT,
    TEXT.map(Markup),
    st.integers(-5, 10**6),
    st.booleans(),
    st.none(),
    st.just(Markup('<b class="x">粗</b>')),
)


@given(st.dictionaries(KEYS, VALUES, max_size=8))
def test_the_same_attributes_as_wtforms_writes(attributes):
    ours = forms.html_params(**attributes)
    theirs = forms._WTFORMS_HTML_PARAMS(**attributes)
    assert ours == theirs
    assert isinstance(ours, Markup)


def test_it_is_in_wtforms_place():
    assert core.html_params is forms.html_params
    assert wtforms.widgets.html_params is forms.html_params
    assert core.Input.html_params is forms.html_params
    assert core.SubmitInput.html_params is forms.html_params
    assert core.TextInput().html_params is forms.html_params  # inherited


class Everything(Form):
    name = StringField(
        "姓名 <必填>",
        [DataRequired(), Length(max=20)],
        render_kw={"placeholder": '例如 "张三"', "data_hx_get": "/x?a=1&b=2"},
    )
    secret = PasswordField("密码")
    kind = SelectField("类型", choices=forms.choices([("a", "甲 & 乙"), ("b", '"丙"')]))
    many = SelectMultipleField("多选", choices=forms.choices([("1", "一"), ("2", "二")]))
    pick = RadioField("单选", choices=forms.choices([("x", "X"), ("y", "<Y>")]))
    agree = BooleanField("同意")
    note = TextAreaField("备注")
    on = DateField("日期")
    go = SubmitField("提交 & 返回")


def rendered(form: Form) -> list[str]:
    out = []
    for field in form:
        out.append(str(field.label))
        out.append(str(field(class_="c", aria_invalid="true", disabled=False, autofocus=True)))
        out.append(str(field()))
    return out


@pytest.mark.parametrize(
    "data",
    [
        {},
        {
            "name": '<script>"x"</script>',
            "kind": "b",
            "many": ["1", "2"],
            "pick": "y",
            "agree": "y",
            "note": "多行\n<文本>",
            "on": "2026-12-03",
        },
    ],
)
def test_fields_render_as_with_wtforms_own(data, monkeypatch):
    ours = rendered(Everything(MultiDict(data)))
    original = forms._WTFORMS_HTML_PARAMS
    monkeypatch.setattr(core, "html_params", original)
    monkeypatch.setattr(wtforms.widgets, "html_params", original)
    monkeypatch.setattr(core.Input, "html_params", staticmethod(original))
    monkeypatch.setattr(core.SubmitInput, "html_params", staticmethod(original))
    assert core.TextInput().html_params is original
    theirs = rendered(Everything(MultiDict(data)))
    assert ours == theirs
    assert any("&lt;script&gt;&#34;x&#34;" in html for html in ours) == bool(data)
