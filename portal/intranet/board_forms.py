"""Forms of the kanban boards: filters, a move and the data a move asks for first, assignment,
mailing, comments, and the admin's column limits. Labels and messages are Chinese."""

from __future__ import annotations

import re

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from werkzeug.datastructures import MultiDict
from wtforms import (
    BooleanField,
    Form,
    HiddenField,
    IntegerField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import (
    AnyOf,
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    Regexp,
    ValidationError,
)
from wtforms.widgets import CheckboxInput, ListWidget

from portal.forms import choices as select_choices
from portal.rules import casestates
from portal.services import cases


def _required(message):
    return DataRequired(message=message)


def offered(field) -> set[str]:
    """The values a select field offers (its choices are SelectChoice objects)."""
    return {c.value for c in field.choices if c.value}


# --- filters (GET, no CSRF) ---------------------------------------------------------------


class FilterForm(Form):
    q = StringField(
        _l("搜索"),
        [Optional(), Length(max=40, message=_l("搜索内容不超过 40 字"))],
        render_kw={"placeholder": _l("办件编号、回执号或申请人姓名"), "type": "search"},
    )
    item = SelectField(_l("事项"), choices=[], validate_choice=False)
    dept = SelectField(_l("管理部"), choices=[], validate_choice=False)
    assignee = SelectField(_l("经办人"), choices=[], validate_choice=False)
    overdue = BooleanField(_l("只看超期"))


# the query arguments the filter form reads (cases.Filters.args writes the same names)
FILTER_FIELDS = ("q", "item", "dept", "assignee", "overdue")


def filter_form(args: MultiDict, choices: dict) -> tuple[FilterForm, cases.Filters]:
    """The filter form bound to the query string, and the filters it stands for.

    A value that is not one of the offered choices is dropped (the board shows everything for
    that filter) rather than answered with an error page.
    """
    form = FilterForm(args)
    form.item.choices = select_choices([("", _l("全部事项"))] + choices["item"])
    form.dept.choices = select_choices([("", _l("全部管理部"))] + choices["department"])
    form.assignee.choices = select_choices([("", _l("全部"))] + choices["assignee"])
    for name in ("item", "dept", "assignee"):
        field = getattr(form, name)
        if field.data not in offered(field):
            field.data = ""
    q = (form.q.data or "").strip()[:40]
    if not form.q.validate(form):  # control characters, non-ASCII digits (issue 9): no search
        q = ""
    form.q.data = q
    department = int(form.dept.data) if (form.dept.data or "").isdigit() else None
    filters = cases.Filters(
        item=form.item.data or "",
        department=department,
        assignee=form.assignee.data or "",
        overdue=bool(form.overdue.data),
        q=q,
    )
    return form, filters


# --- a move -------------------------------------------------------------------------------


class MoveForm(FlaskForm):
    target = StringField(_l("移至"), [InputRequired(message=_l("请选择要移至的列"))])
    version = IntegerField(
        _l("版本"), [InputRequired(message=_l("页面已过期，请刷新")), NumberRange(min=1)]
    )
    from_state = StringField(_l("原列"), [Optional()])
    with_data = HiddenField()


class ReasonForm(Form):
    reason = TextAreaField(
        _l("退回原因"),
        [_required(_l("请填写退回原因")), Length(max=500, message=_l("退回原因不超过 500 字"))],
        render_kw={"rows": 3, "maxlength": 500, "autofocus": True},
    )

    def payload(self) -> dict:
        return {"reason": self.reason.data.strip()}


_SPLIT = re.compile(r"[，,、；;\n]+")


class MissingForm(Form):
    missing = SelectMultipleField(
        _l("需补正的材料"),
        choices=[],
        validate_choice=False,
        widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(),
    )
    other = StringField(
        _l("其他需补正的材料"),
        [Optional(), Length(max=200, message=_l("不超过 200 字"))],
        description=_l("多项用顿号或逗号分隔"),
    )

    def names(self) -> list[str]:
        chosen = [m for m in (self.missing.data or []) if m in offered(self.missing)]
        extra = [p.strip() for p in _SPLIT.split(self.other.data or "") if p.strip()]
        return chosen + extra

    def validate(self, extra_validators=None) -> bool:
        ok = super().validate(extra_validators)
        if ok and not self.names():
            self.missing.errors = [_l("请勾选或填写需补正的全部材料（一次性告知）")]
            return False
        return ok

    def payload(self) -> dict:
        return {"missing": self.names()}


class ResultForm(Form):
    outcome = SelectField(
        _l("办理结果"),
        choices=select_choices((o, o) for o in cases.OUTCOMES),
        validate_choice=False,
        validators=[AnyOf(cases.OUTCOMES, message=_l("请选择办理结果"))],
    )
    note = TextAreaField(
        _l("结果说明"),
        [_required(_l("请填写结果说明")), Length(max=500, message=_l("结果说明不超过 500 字"))],
        render_kw={"rows": 3, "maxlength": 500},
    )

    def payload(self) -> dict:
        return {"outcome": self.outcome.data, "note": self.note.data.strip()}


class DepartmentForm(Form):
    department = SelectField(_l("分发至管理部"), choices=[], validate_choice=False)

    def validate_department(self, field):
        if field.data not in offered(field):
            raise ValidationError(_l("请选择要分发的管理部"))

    def payload(self) -> dict:
        return {"department": int(self.department.data)}


REQUIREMENT_FORMS = {
    "reason": ReasonForm,
    "missing": MissingForm,
    "result": ResultForm,
    "department": DepartmentForm,
}


def requirement_form(kind: str, case, formdata=None):
    """The inline form for what a move into a column needs, named per case (``c12-reason``)
    so several cards' forms can be open on one board."""
    form = REQUIREMENT_FORMS[kind](formdata, prefix=f"c{case.id}")
    if kind == "missing":
        form.missing.choices = select_choices((n, n) for n in cases.missing_choices(case))
    elif kind == "department":
        form.department.choices = select_choices(
            [("", _l("请选择"))] + [(str(i), name) for i, name in cases.departments()]
        )
        if formdata is None:
            suggested = cases.suggested_department(case)
            form.department.data = str(suggested) if suggested else ""
    first = {"result": "outcome", "department": "department"}.get(kind)
    if first:  # the inline form takes the focus when it appears (reason, missing: in markup)
        field = getattr(form, first)
        field.render_kw = {**(field.render_kw or {}), "autofocus": True}
    form.kind = kind
    form.kind_label = casestates.REQUIREMENT_LABELS[kind]
    return form


# --- other card actions -------------------------------------------------------------------


class VersionForm(FlaskForm):
    version = IntegerField(_l("版本"), [InputRequired(), NumberRange(min=1)])


class AssignForm(VersionForm):
    handler = SelectField(_l("指派给"), choices=[], validate_choice=False)

    def validate_handler(self, field):
        if field.data not in offered(field):
            raise ValidationError(_l("请选择经办人"))


class MailForm(FlaskForm):
    tracking_no = StringField(
        _l("邮寄单号"),
        [
            _required(_l("请填写邮寄单号")),
            Regexp(
                r"^\s*[A-Za-z0-9-]{6,40}\s*$",
                message=_l("邮寄单号为 6–40 位字母、数字或连字符"),
            ),
        ],
        render_kw={"autocomplete": "off", "maxlength": 40},
    )


class CommentForm(FlaskForm):
    body = TextAreaField(
        _l("评论"),
        [_required(_l("请填写评论内容")), Length(max=1000, message=_l("评论不超过 1000 字"))],
        render_kw={"rows": 2, "maxlength": 1000},
    )


# --- the admin's column limits ------------------------------------------------------------


def limit_field_name(direction: str, state: str) -> str:
    return f"wip_{direction}_{state}"


def limits_form(formdata=None, current: dict | None = None):
    """One optional whole-number field per column of both boards."""

    class LimitsForm(FlaskForm):
        pass

    for direction, states in casestates.COLUMNS.items():
        for state in states:
            setattr(
                LimitsForm,
                limit_field_name(direction, state),
                IntegerField(
                    casestates.label(direction, state),
                    [
                        Optional(),
                        NumberRange(min=1, max=999, message=_l("上限应为 1–999 之间的整数")),
                    ],
                    render_kw={"inputmode": "numeric", "min": 1, "max": 999},
                ),
            )
    data = {}
    for (direction, state), value in (current or {}).items():
        data[limit_field_name(direction, state)] = value
    return LimitsForm(formdata=formdata, data=data)
