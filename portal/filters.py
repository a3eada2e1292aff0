"""Jinja filters and globals: masking, money, local time, labels."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from flask import current_app, has_request_context
from markupsafe import Markup, escape

from portal import htmx, items
from portal.access import ROLE_LABELS
from portal.forms import field_errors
from portal.rules import casestates
from portal.rules.ids import mask_bank_card, mask_phone, mask_resident_id

SHANGHAI = ZoneInfo("Asia/Shanghai")


def yuan(value) -> str:
    if type(value) is Decimal:  # the usual case (issue 10: a ledger or loan page has ~100)
        return format(value, ",.2f")
    if value is None:
        return "—"
    if isinstance(value, float):
        raise TypeError("money must be Decimal")
    return f"{Decimal(value):,.2f}"


def fact(label, value, cls: str = "") -> Markup:
    """One entry of a facts list (``<dl class="facts">``): ``<div><dt>label</dt><dd>value</dd>
    </div>``, ``cls`` the ``<dd>``'s class; label, value and class escaped. A function rather
    than a macro (issue 10): a Jinja macro call costs several times as much, and the hall's
    pages show up to fifteen facts."""
    dd = f'<dd class="{escape(cls)}">' if cls else "<dd>"
    return Markup(f"<div><dt>{escape(label)}</dt>{dd}{escape(value)}</dd></div>")  # noqa: S704  # nosec B704 - escaped above


fact.markup_under_autoescape = True  # always Markup: written as it is (PortalCodeGenerator)


def local_dt(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if value is None:
        return ""
    return value.replace(tzinfo=UTC).astimezone(SHANGHAI).strftime(fmt)


def local_today() -> date:
    return datetime.now(SHANGHAI).date()


def ym(value: str | None) -> str:
    """'2026-10' -> '2026年10月'."""
    if not value:
        return "—"
    year, _, month = value.partition("-")
    return f"{year}年{int(month)}月"


TARGET_LABELS = {
    "depositor": "缴存人",
    "operator": "单位经办人",
    "staff": "工作人员",
    "employer": "单位",
    "case": "办件",
    "certificate": "证明",
    "payout": "支付",
    "loan": "贷款",
    "account": "个人账户",
}

ACTION_LABELS = {
    "login": "登录",
    "logout": "退出",
    "login.failed": "登录失败",
    "password.activate": "首次设置密码",
    "password.reset": "重置密码",
    "totp.enrolled": "绑定动态口令",
    "staff.create": "新建工作人员",
    "staff.reset_totp": "重置动态口令",
}


def init_app(app):
    app.jinja_env.filters.update(
        field_errors=field_errors,
        mask_id=mask_resident_id,
        mask_card=mask_bank_card,
        mask_phone=mask_phone,
        yuan=yuan,
        local_dt=local_dt,
        ym=ym,
        item_name=lambda code: items.get(code).name,
        item_short=lambda code: items.get(code).short,
        role_label=lambda role: ROLE_LABELS.get(role, role),
        target_label=lambda kind: TARGET_LABELS.get(kind, kind),
        action_label=lambda action: ACTION_LABELS.get(action, action),
    )

    app.add_template_global(fact, "fact")

    @app.context_processor
    def portal_globals():
        return {
            "center_name": current_app.config["CENTER_NAME"],
            "state_label": casestates.label,
            "dev_sms_page": current_app.config["DEV_SMS_PAGE"],
            # an htmx fragment goes to a page whose htmx sends the CSRF token as a header
            # (base.html's hx-headers): its many small forms can leave the hidden field out
            "htmx_fragment": has_request_context() and htmx.is_htmx(),
        }
