"""The administrator's work: staff accounts, one-time setup links, the holiday calendar,
settings with effective dates, and peer centers. No business data passes through here."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import secrets
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation

from peewee import JOIN

from portal import items
from portal.db import write_tx
from portal.models import (
    Center,
    Department,
    HolidayOverride,
    Setting,
    StaffSetupToken,
    StaffUser,
    utcnow,
)
from portal.services import audit, identity
from portal.sessions import end_sessions_for

SETUP_HOURS = 72
ROLES = ("clerk", "liaison", "handler", "official", "admin", "auditor")
DEPARTMENT_ROLES = ("clerk", "handler")
_USERNAME = re.compile(r"^[a-z][a-z0-9_]{2,39}$")


class AdminError(ValueError):
    """A refused admin action, with the reason in Chinese."""


# --- staff accounts -----------------------------------------------------------------------


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_setup_token(actor: str, user: StaffUser) -> str:
    """A new one-time setup link token (the old ones stop working)."""
    token = secrets.token_urlsafe(32)
    with write_tx():
        StaffSetupToken.delete().where(
            (StaffSetupToken.staff == user) & StaffSetupToken.used_at.is_null()
        ).execute()
        StaffSetupToken.create(
            staff=user, token_hash=_hash(token), expires_at=utcnow() + timedelta(hours=SETUP_HOURS)
        )
        audit.record(actor, "staff.setup_link", "staff", user.id, username=user.username)
    return token


def create_staff(
    actor: str, username: str, name: str, role: str, department_code: str | None
) -> tuple[StaffUser, str]:
    username = (username or "").strip().lower()
    name = (name or "").strip()
    if not _USERNAME.match(username):
        raise AdminError("用户名须为 3–40 位小写字母、数字或下划线，并以字母开头")
    if not name or len(name) > 40:
        raise AdminError("请填写姓名（不超过 40 字）")
    if role not in ROLES:
        raise AdminError("角色无效")
    department = None
    if department_code:
        department = Department.get_or_none(Department.code == department_code)
        if department is None:
            raise AdminError("管理部不存在")
    if role in DEPARTMENT_ROLES and department is None:
        raise AdminError("窗口经办和管理部经办须选择所属管理部")
    with write_tx():
        if StaffUser.select().where(StaffUser.username == username).exists():
            raise AdminError("该用户名已被使用")
        user = StaffUser.create(username=username, name=name, role=role, department=department)
        audit.record(actor, "staff.create", "staff", user.id, username=username, role=role)
    return user, issue_setup_token(actor, user)


def create_first_admin(username: str, name: str) -> tuple[StaffUser, str]:
    if StaffUser.select().where(StaffUser.role == "admin").exists():
        raise AdminError("已存在管理员；请由管理员在系统内新建账号")
    return create_staff("cli", username, name, "admin", None)


def user_for_setup(token: str) -> StaffUser:
    row = StaffSetupToken.get_or_none(StaffSetupToken.token_hash == _hash(token or ""))
    if row is None or row.used_at is not None or row.expires_at < utcnow():
        raise AdminError("设置链接无效或已过期，请联系管理员重新发放")
    if not row.staff.active:
        raise AdminError("该账号已停用")
    return row.staff


def complete_setup(token: str, password: str, confirm: str) -> StaffUser:
    """Set the password from a setup link; TOTP is enrolled at the next login."""
    user = user_for_setup(token)
    try:
        identity.validate_new_password(password, confirm)
    except identity.PasswordRejected as exc:
        raise AdminError(str(exc)) from None
    with write_tx():
        used = (
            StaffSetupToken.update(used_at=utcnow())
            .where((StaffSetupToken.token_hash == _hash(token)) & StaffSetupToken.used_at.is_null())
            .execute()
        )
        if not used:
            raise AdminError("设置链接无效或已过期，请联系管理员重新发放")
        StaffUser.update(
            password_hash=identity.hash_password(password),
            totp_secret=None,
            totp_confirmed=False,
            totp_last_step=0,
        ).where(StaffUser.id == user.id).execute()
        end_sessions_for(f"s:{user.id}")
        audit.record(f"staff:{user.username}", "staff.setup_done", "staff", user.id)
    return user


def set_active(actor: str, user: StaffUser, active: bool, me: StaffUser) -> None:
    if user.id == me.id and not active:
        raise AdminError("不能停用自己的账号")
    with write_tx():
        StaffUser.update(active=active).where(StaffUser.id == user.id).execute()
        if not active:  # a disabled account loses its sessions at once
            end_sessions_for(f"s:{user.id}")
        audit.record(
            actor,
            "staff.enable" if active else "staff.disable",
            "staff",
            user.id,
            username=user.username,
        )


def reset_totp(actor: str, user: StaffUser) -> None:
    with write_tx():
        StaffUser.update(totp_secret=None, totp_confirmed=False, totp_last_step=0).where(
            StaffUser.id == user.id
        ).execute()
        end_sessions_for(f"s:{user.id}")
        audit.record(actor, "staff.reset_totp", "staff", user.id, username=user.username)


def staff_list() -> list[StaffUser]:
    return list(
        StaffUser.select(StaffUser, Department)
        .join(Department, JOIN.LEFT_OUTER)
        .order_by(StaffUser.role, StaffUser.username)
    )


# --- holiday calendar ---------------------------------------------------------------------


def overrides_for(year: int) -> list[HolidayOverride]:
    return list(
        HolidayOverride.select()
        .where(
            (HolidayOverride.day >= date(year, 1, 1)) & (HolidayOverride.day <= date(year, 12, 31))
        )
        .order_by(HolidayOverride.day)
    )


def set_override(actor: str, me: StaffUser, day: date, is_workday: bool, note: str) -> None:
    note = (note or "").strip()
    if len(note) > 60:
        raise AdminError("说明不超过 60 字")
    with write_tx():
        existing = HolidayOverride.get_or_none(HolidayOverride.day == day)
        if existing:
            HolidayOverride.update(is_workday=is_workday, note=note, created_by=me).where(
                HolidayOverride.id == existing.id
            ).execute()
        else:
            HolidayOverride.create(day=day, is_workday=is_workday, note=note, created_by=me)
        audit.record(
            actor, "calendar.set", "calendar", day.isoformat(), workday=is_workday, note=note
        )


def remove_override(actor: str, day: date) -> None:
    with write_tx():
        deleted = HolidayOverride.delete().where(HolidayOverride.day == day).execute()
        if not deleted:
            raise AdminError("该日期没有调整记录")
        audit.record(actor, "calendar.remove", "calendar", day.isoformat())


# --- settings -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SettingSpec:
    key: str
    label: str
    kind: str  # money / rate / percent / int / rates
    minimum: Decimal | None = None
    maximum: Decimal | None = None


SETTING_SPECS = (
    SettingSpec("deposit_rate", "个人住房公积金存款年利率", "rate", Decimal("0"), Decimal("0.1")),
    SettingSpec(
        "deposit_base_floor", "缴存基数下限（元）", "money", Decimal("0"), Decimal("100000")
    ),
    SettingSpec(
        "deposit_base_ceiling", "缴存基数上限（元）", "money", Decimal("0"), Decimal("100000")
    ),
    SettingSpec("ratio_min", "缴存比例下限（%）", "percent", Decimal("1"), Decimal("12")),
    SettingSpec("ratio_max", "缴存比例上限（%）", "percent", Decimal("5"), Decimal("12")),
    SettingSpec(
        "ratio_equal", "单位与个人缴存比例须相同（1 是，0 否）", "int", Decimal("0"), Decimal("1")
    ),
    SettingSpec("loan_ceiling", "贷款最高额度（元）", "money", Decimal("0"), Decimal("10000000")),
    SettingSpec("loan_balance_multiple", "贷款额度与余额倍数", "int", Decimal("1"), Decimal("50")),
    SettingSpec(
        "loan_repayment_ratio", "月还款额占收入比例上限", "rate", Decimal("0"), Decimal("1")
    ),
    SettingSpec(
        "loan_years_after_retirement", "贷款可延至退休后年数", "int", Decimal("0"), Decimal("10")
    ),
    SettingSpec("loan_rates", "住房公积金贷款利率（JSON）", "rates"),
    SettingSpec(  # issue 7: how long after the purchase a 购房提取 may be applied for
        "purchase_withdrawal_months",
        "购房提取申请期限（购房后月数）",
        "int",
        Decimal("1"),
        Decimal("60"),
    ),
    SettingSpec(  # issue 7: the spouse always counts; other co-owners only when this is 1
        "purchase_withdrawal_co_owners",
        "购房提取额度合并计算其他共有人（1 是，0 否；配偶始终合并）",
        "int",
        Decimal("0"),
        Decimal("1"),
    ),
)
SPECS = {spec.key: spec for spec in SETTING_SPECS}
RATE_KEYS = ("first_le5", "first_gt5", "second_le5", "second_gt5")


def _decimal(text: str) -> Decimal:
    try:
        value = Decimal((text or "").strip())
    except InvalidOperation:
        raise AdminError("请输入数字") from None
    if not value.is_finite():
        raise AdminError("请输入数字")
    return value


def normalise_setting(key: str, raw: str) -> str:
    spec = SPECS.get(key)
    if spec is None:
        raise AdminError("未知的参数")
    if spec.kind == "rates":
        try:
            data = json.loads(raw)
        except (json.JSONDecodeError, TypeError):
            raise AdminError('利率须为 JSON，例如 {"first_le5": "0.021", ...}') from None
        if not isinstance(data, dict) or set(data) != set(RATE_KEYS):
            raise AdminError("利率须包含 " + "、".join(RATE_KEYS))
        values = {k: _decimal(str(data[k])) for k in RATE_KEYS}
        if any(not Decimal("0") < v < Decimal("0.2") for v in values.values()):
            raise AdminError("利率须在 0 到 0.2 之间（例如 0.026 表示 2.6%）")
        return json.dumps({k: str(v) for k, v in values.items()}, sort_keys=True)
    value = _decimal(raw)
    if spec.kind in ("int", "percent") and value != value.to_integral_value():
        raise AdminError("请输入整数")
    if spec.kind == "money" and value != value.quantize(Decimal("0.01")):
        raise AdminError("金额最多两位小数")
    if (spec.minimum is not None and value < spec.minimum) or (
        spec.maximum is not None and value > spec.maximum
    ):
        raise AdminError(f"取值须在 {spec.minimum} 到 {spec.maximum} 之间")
    if spec.kind == "money":
        return str(value.quantize(Decimal("0.01")))
    if spec.kind in ("int", "percent"):
        return str(int(value))
    return str(value.normalize())


def add_setting(
    actor: str, me: StaffUser, key: str, raw: str, effective_from: date, today: date
) -> Setting:
    value = normalise_setting(key, raw)
    if effective_from < today:
        raise AdminError("生效日期不能早于今天（历史参数不可改写）")
    with write_tx():
        if (
            Setting.select()
            .where((Setting.key == key) & (Setting.effective_from == effective_from))
            .exists()
        ):
            raise AdminError("该参数在这一天已有设定；请选择其他生效日期")
        row = Setting.create(key=key, value=value, effective_from=effective_from, created_by=me)
        audit.record(
            actor,
            "setting.add",
            "setting",
            key,
            value=value,
            effective_from=effective_from.isoformat(),
        )
    return row


RATE_LABELS = {
    "first_le5": "首套≤5年",
    "first_gt5": "首套>5年",
    "second_le5": "二套≤5年",
    "second_gt5": "二套>5年",
}


def display_value(key: str, value: str) -> str:
    """A setting value as people read it: rates in percent, amounts in yuan."""
    spec = SPECS.get(key)
    if spec is None:
        return value
    if spec.kind == "rates":
        data = json.loads(value)
        return "；".join(f"{RATE_LABELS[k]} {Decimal(data[k]) * 100:.3f}%" for k in RATE_KEYS)
    if spec.kind == "rate":
        return f"{Decimal(value) * 100:.2f}%" if key != "loan_repayment_ratio" else value
    if spec.kind == "percent":
        return f"{value}%"
    return value


def settings_table() -> list[tuple[SettingSpec, list[Setting]]]:
    rows: dict[str, list[Setting]] = {}
    for row in Setting.select().order_by(Setting.key, Setting.effective_from.desc()):
        rows.setdefault(row.key, []).append(row)
    return [(spec, rows.get(spec.key, [])) for spec in SETTING_SPECS]


# --- management departments -------------------------------------------------------------

_DEPT_CODE = re.compile(r"^[A-Z][A-Z0-9]{1,11}$")


def departments() -> list[Department]:
    return list(Department.select().order_by(Department.code))


def save_department(actor: str, code: str, name: str, address: str, phone: str) -> Department:
    """Create a department, or update the one with this code (the code never changes)."""
    code = (code or "").strip().upper()
    name, address, phone = (name or "").strip(), (address or "").strip(), (phone or "").strip()
    if not _DEPT_CODE.match(code):
        raise AdminError("代码须为 2–12 位大写字母或数字，以字母开头")
    if not name or len(name) > 60:
        raise AdminError("请填写名称（不超过 60 字）")
    if len(address) > 200 or len(phone) > 30:
        raise AdminError("地址不超过 200 字，电话不超过 30 字")
    with write_tx():
        existing = Department.get_or_none(Department.code == code)
        if (
            Department.select()
            .where((Department.name == name) & (Department.code != code))
            .exists()
        ):
            raise AdminError("已有同名的管理部")
        if existing:
            before = {"name": existing.name, "address": existing.address, "phone": existing.phone}
            Department.update(name=name, address=address, phone=phone).where(
                Department.id == existing.id
            ).execute()
            audit.record(
                actor,
                "department.update",
                "department",
                code,
                before=before,
                after={"name": name, "address": address, "phone": phone},
            )
            return Department.get_by_id(existing.id)
        dept = Department.create(code=code, name=name, address=address, phone=phone)
        audit.record(actor, "department.create", "department", code, name=name)
        return dept


# --- peer centers -------------------------------------------------------------------------


def parse_public_key(text: str) -> str | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise AdminError("公钥须为 Base64 编码") from None
    if len(raw) != 32:
        raise AdminError("Ed25519 公钥须为 32 字节")
    return base64.b64encode(raw).decode()


def update_center(
    actor: str,
    center: Center,
    online_items: list[str],
    public_key: str,
    hall_url: str,
    active: bool,
    exchange_url: str | None = None,
) -> None:
    """``exchange_url`` (issue 8): the peer's /platform/inbox; None leaves it unchanged."""
    if center.is_self:
        raise AdminError("本中心信息请通过配置修改")
    unknown = set(online_items) - set(items.BY_CODE)
    if unknown:
        raise AdminError("事项无效")
    hall_url = (hall_url or "").strip()
    if hall_url and not hall_url.startswith(("https://", "http://")):
        raise AdminError("网上业务大厅地址须以 http:// 或 https:// 开头")
    key = parse_public_key(public_key)
    url = center.exchange_url
    if exchange_url is not None:
        from portal.platform.exchange import check_exchange_url

        try:
            url = check_exchange_url(exchange_url)
        except ValueError as exc:
            raise AdminError(str(exc)) from None
    with write_tx():
        before = {"online_items": center.online_items, "key_set": bool(center.public_key)}
        before["exchange_url"] = center.exchange_url
        Center.update(
            online_items=sorted(online_items),
            public_key=key,
            hall_url=hall_url,
            active=active,
            exchange_url=url,
        ).where(Center.id == center.id).execute()
        audit.record(
            actor,
            "center.update",
            "center",
            center.code,
            before=before,
            after={
                "online_items": sorted(online_items),
                "key_set": bool(key),
                "key_changed": key != center.public_key,
                "active": active,
                "exchange_url": url,
            },
        )


def peers() -> list[Center]:
    return list(Center.select().where(~Center.is_self).order_by(Center.code))
