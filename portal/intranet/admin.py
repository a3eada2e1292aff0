"""The administrator's area (/staff/admin/): staff accounts, calendar, settings, peer centers."""

from __future__ import annotations

from datetime import date

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from portal import items
from portal.access import guard_kind
from portal.filters import local_today
from portal.forms import EmptyForm, choices
from portal.models import Center, Department, StaffUser
from portal.rules.workdays import calendar_known, is_workday
from portal.services import admin

bp = Blueprint("admin", __name__, url_prefix="/staff/admin")
bp.before_request(guard_kind("staff", roles=("admin",)))

ROLE_CHOICES = [
    ("clerk", "窗口经办"),
    ("liaison", "联络人"),
    ("handler", "管理部经办"),
    ("official", "审批签发"),
    ("admin", "管理员"),
    ("auditor", "审计"),
]


class StaffForm(FlaskForm):
    username = StringField("用户名", [DataRequired("此项必填"), Length(max=40)])
    name = StringField("姓名", [DataRequired("此项必填"), Length(max=40)])
    role = SelectField("角色", choices=choices(ROLE_CHOICES))
    department = SelectField("所属管理部", choices=[], validate_choice=False)


class OverrideForm(FlaskForm):
    day = DateField("日期", [DataRequired("请选择日期")])
    kind = SelectField(
        "调整为",
        choices=choices([("holiday", "休息日（节假日）"), ("workday", "工作日（调休上班）")]),
    )
    note = StringField("说明", [Optional(), Length(max=60, message="说明不超过 60 字")])


class SettingForm(FlaskForm):
    key = SelectField("参数", choices=choices((s.key, s.label) for s in admin.SETTING_SPECS))
    value = TextAreaField("取值", [DataRequired("此项必填"), Length(max=500)])
    effective_from = DateField("生效日期", [DataRequired("请选择生效日期")])


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class CenterForm(FlaskForm):
    online_items = MultiCheckboxField(
        "已开通全程网办的事项", choices=choices((i.code, i.name) for i in items.ITEMS)
    )
    hall_url = StringField("网上业务大厅地址", [Optional(), Length(max=200)])
    public_key = TextAreaField("平台签名公钥（Ed25519，Base64）", [Optional(), Length(max=200)])
    exchange_url = StringField("平台交换地址", [Optional(), Length(max=200)])  # issue 8
    active = BooleanField("启用")

    def validate_exchange_url(self, field):
        from wtforms.validators import ValidationError

        from portal.platform.exchange import check_exchange_url

        try:
            field.data = check_exchange_url(field.data)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


def _department_choices():
    return [("", "—（无）")] + [
        (d.code, d.name) for d in Department.select().order_by(Department.code)
    ]


@bp.get("/")
def index():
    return redirect(url_for("admin.staff"))


@bp.route("/staff", methods=["GET", "POST"])
def staff():
    form = StaffForm()
    form.department.choices = _department_choices()
    setup_url = None
    status = 200
    if form.validate_on_submit():
        try:
            user, token = admin.create_staff(
                current_user.actor,
                form.username.data,
                form.name.data,
                form.role.data,
                form.department.data or None,
            )
        except admin.AdminError as exc:
            form.username.errors.append(str(exc))
            status = 422
        else:
            setup_url = url_for("auth.staff_setup", token=token, _external=True)
            flash(
                _(
                    "已创建 %(u)s。请将下方一次性设置链接交给本人（72 小时内有效）。",
                    u=user.username,
                ),
                "success",
            )
            form = StaffForm(formdata=None)
            form.department.choices = _department_choices()
    elif request.method == "POST":
        status = 422
    return render_template(
        "intranet/admin/staff.html",
        form=form,
        users=admin.staff_list(),
        setup_url=setup_url,
        action=EmptyForm(),
    ), status


def _user(user_id: int) -> StaffUser:
    user = StaffUser.get_or_none(StaffUser.id == user_id)
    if user is None:
        abort(404)
    return user


@bp.post("/staff/<int:user_id>/<any(disable, enable, reset_totp, setup_link):action>")
def staff_action(user_id: int, action: str):
    if not EmptyForm().validate_on_submit():
        abort(400)
    user = _user(user_id)
    setup_url = None
    try:
        if action in ("disable", "enable"):
            admin.set_active(current_user.actor, user, action == "enable", current_user.obj)
            flash(
                _("已停用 %(u)s，其会话已结束", u=user.username)
                if action == "disable"
                else _("已启用 %(u)s", u=user.username),
                "success",
            )
        elif action == "reset_totp":
            admin.reset_totp(current_user.actor, user)
            flash(_("已重置 %(u)s 的动态口令，下次登录时重新绑定", u=user.username), "success")
        else:
            token = admin.issue_setup_token(current_user.actor, user)
            setup_url = url_for("auth.staff_setup", token=token, _external=True)
            flash(_("已为 %(u)s 生成新的一次性设置链接（原链接作废）", u=user.username), "success")
    except admin.AdminError as exc:
        flash(str(exc), "warning")
    if setup_url:
        form = StaffForm(formdata=None)
        form.department.choices = _department_choices()
        return render_template(
            "intranet/admin/staff.html",
            form=form,
            users=admin.staff_list(),
            setup_url=setup_url,
            action=EmptyForm(),
        )
    return redirect(url_for("admin.staff"), code=303)


@bp.route("/calendar", methods=["GET", "POST"])
def calendar():
    today = local_today()
    year = request.args.get("year", type=int) or today.year
    if not 2000 <= year <= 2100:
        abort(404)
    form = OverrideForm()
    status = 200
    if form.validate_on_submit():
        try:
            admin.set_override(
                current_user.actor,
                current_user.obj,
                form.day.data,
                form.kind.data == "workday",
                form.note.data,
            )
        except admin.AdminError as exc:
            form.note.errors.append(str(exc))
            status = 422
        else:
            flash(_("已保存 %(d)s 的调整", d=form.day.data.isoformat()), "success")
            return redirect(url_for("admin.calendar", year=form.day.data.year), code=303)
    elif request.method == "POST":
        status = 422
    return render_template(
        "intranet/admin/calendar.html",
        form=form,
        year=year,
        known=calendar_known(year),
        overrides=admin.overrides_for(year),
        years=[today.year, today.year + 1],
        unknown=[y for y in (today.year, today.year + 1) if not calendar_known(y)],
        is_workday=is_workday,
        action=EmptyForm(),
    ), status


@bp.post("/calendar/<day>/delete")
def calendar_delete(day: str):
    if not EmptyForm().validate_on_submit():
        abort(400)
    try:
        parsed = date.fromisoformat(day)
    except ValueError:
        abort(404)
    try:
        admin.remove_override(current_user.actor, parsed)
    except admin.AdminError as exc:
        flash(str(exc), "warning")
    else:
        flash(_("已删除 %(d)s 的调整", d=day), "success")
    return redirect(url_for("admin.calendar", year=parsed.year), code=303)


@bp.route("/settings", methods=["GET", "POST"])
def settings():
    form = SettingForm()
    status = 200
    if form.validate_on_submit():
        try:
            admin.add_setting(
                current_user.actor,
                current_user.obj,
                form.key.data,
                form.value.data,
                form.effective_from.data,
                local_today(),
            )
        except admin.AdminError as exc:
            form.value.errors.append(str(exc))
            status = 422
        else:
            flash(
                _("参数已保存，自 %(d)s 起生效", d=form.effective_from.data.isoformat()), "success"
            )
            return redirect(url_for("admin.settings"), code=303)
    elif request.method == "POST":
        status = 422
    return render_template(
        "intranet/admin/settings.html",
        form=form,
        table=admin.settings_table(),
        today=local_today(),
        show=admin.display_value,
    ), status


class DepartmentForm(FlaskForm):
    code = StringField("代码", [DataRequired("此项必填"), Length(max=12)])
    name = StringField("名称", [DataRequired("此项必填"), Length(max=60)])
    address = StringField("地址", [Optional(), Length(max=200)])
    phone = StringField("电话", [Optional(), Length(max=30)])


@bp.route("/departments", methods=["GET", "POST"])
def departments():
    form = DepartmentForm()
    status = 200
    if form.validate_on_submit():
        try:
            dept = admin.save_department(
                current_user.actor,
                form.code.data,
                form.name.data,
                form.address.data,
                form.phone.data,
            )
        except admin.AdminError as exc:
            form.code.errors.append(str(exc))
            status = 422
        else:
            flash(_("已保存 %(n)s", n=dept.name), "success")
            return redirect(url_for("admin.departments"), code=303)
    elif request.method == "POST":
        status = 422
    return render_template(
        "intranet/admin/departments.html", form=form, departments=admin.departments()
    ), status


@bp.get("/centers")
def centers():
    return render_template("intranet/admin/centers.html", centers=admin.peers())


@bp.route("/centers/<code>", methods=["GET", "POST"])
def center_edit(code: str):
    center = Center.get_or_none((Center.code == code) & ~Center.is_self)
    if center is None:
        abort(404)
    form = CenterForm(obj=None if request.method == "POST" else center)
    status = 200
    if form.validate_on_submit():
        try:
            admin.update_center(
                current_user.actor,
                center,
                form.online_items.data or [],
                form.public_key.data,
                form.hall_url.data,
                form.active.data,
                exchange_url=form.exchange_url.data or "",
            )
        except admin.AdminError as exc:
            form.public_key.errors.append(str(exc))
            status = 422
        else:
            flash(_("已保存 %(n)s", n=center.name), "success")
            return redirect(url_for("admin.centers"), code=303)
    elif request.method == "POST":
        status = 422
    return render_template("intranet/admin/center_edit.html", form=form, center=center), status
