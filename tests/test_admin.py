"""The admin area: staff accounts and setup links, calendar, settings, peer centers."""

from __future__ import annotations

from datetime import date, timedelta

import pyotp
import pytest
from bs4 import BeautifulSoup

from portal.models import (
    AuditLog,
    Center,
    HolidayOverride,
    Setting,
    StaffSetupToken,
    StaffUser,
    WebSession,
    utcnow,
)
from portal.services import admin, identity, settings
from tests.conftest import TODAY, login_depositor, login_staff

ADMIN_PAGES = [
    "/staff/admin/staff",
    "/staff/admin/calendar",
    "/staff/admin/settings",
    "/staff/admin/centers",
    "/staff/admin/centers/110000",
]


def soup(r):
    return BeautifulSoup(r.get_data(as_text=True), "html.parser")


@pytest.mark.parametrize("username", ["clerk", "liaison", "handler", "official", "auditor"])
def test_only_admins_reach_the_admin_area(client, username):
    login_staff(client, username)
    for path in ADMIN_PAGES:
        assert client.get(path).status_code == 403, path


def test_depositors_and_anonymous_are_kept_out(client, depositor):
    assert client.get("/staff/admin/staff").status_code == 302
    login_depositor(client, depositor)
    assert client.get("/staff/admin/staff").status_code == 403


def test_admin_pages_render(client):
    login_staff(client, "admin")
    for path in ADMIN_PAGES:
        assert client.get(path).status_code == 200, path


def test_create_staff_gives_a_one_time_setup_link(client, app):
    login_staff(client, "admin")
    r = client.post(
        "/staff/admin/staff",
        data={"username": "newclerk", "name": "钱多", "role": "clerk", "department": "AZQ"},
    )
    assert r.status_code == 200
    link = soup(r).select_one(".setup-link .mono").get_text(strip=True)
    assert "/staff/setup/" in link
    user = StaffUser.get(StaffUser.username == "newclerk")
    assert user.password_hash is None and user.department.code == "AZQ"
    token = link.rsplit("/", 1)[1]
    assert StaffSetupToken.get(StaffSetupToken.staff == user).token_hash != token  # hashed

    newcomer = app.test_client()
    assert newcomer.get(f"/staff/setup/{token}").status_code == 200
    r = newcomer.post(
        f"/staff/setup/{token}", data={"password": "password1", "confirm": "password1"}
    )
    assert r.status_code == 422 and "过于常见" in r.get_data(as_text=True)
    r = newcomer.post(
        f"/staff/setup/{token}", data={"password": "Qianduo2026", "confirm": "Qianduo2026"}
    )
    assert r.status_code == 303
    assert newcomer.get(f"/staff/setup/{token}").status_code == 404  # used once
    r = newcomer.post("/staff/login", data={"username": "newclerk", "password": "Qianduo2026"})
    assert r.headers["Location"].endswith("/staff/login/enrol")
    secret = StaffUser.get_by_id(user.id).totp_secret
    r = newcomer.post("/staff/login/enrol", data={"code": pyotp.TOTP(secret).now()})
    assert r.status_code == 303
    assert newcomer.get("/staff/").status_code == 200


@pytest.mark.parametrize(
    "data, message",
    [
        ({"username": "Bad Name", "name": "甲", "role": "auditor"}, "小写字母"),
        ({"username": "clerk", "name": "甲", "role": "auditor"}, "已被使用"),
        (
            {"username": "nodept", "name": "甲", "role": "handler", "department": ""},
            "须选择所属管理部",
        ),
    ],
)
def test_invalid_staff_is_refused(client, data, message):
    login_staff(client, "admin")
    before = StaffUser.select().count()
    r = client.post("/staff/admin/staff", data=data)
    assert r.status_code == 422 and message in r.get_data(as_text=True)
    assert StaffUser.select().count() == before


def test_expired_setup_link_is_refused(client):
    user, token = admin.create_staff("test", "late", "迟到", "auditor", None)
    StaffSetupToken.update(expires_at=utcnow() - timedelta(seconds=1)).execute()
    r = client.get(f"/staff/setup/{token}")
    assert r.status_code == 404 and "无效或已过期" in r.get_data(as_text=True)


def test_disabling_ends_sessions_and_blocks_login(app, client):
    victim = app.test_client()
    login_staff(victim, "auditor")
    auditor = StaffUser.get(StaffUser.username == "auditor")
    assert WebSession.select().where(WebSession.principal == f"s:{auditor.id}").exists()
    login_staff(client, "admin")
    r = client.post(f"/staff/admin/staff/{auditor.id}/disable")
    assert r.status_code == 303
    assert not WebSession.select().where(WebSession.principal == f"s:{auditor.id}").exists()
    assert victim.get("/staff/").status_code == 302
    with pytest.raises(identity.LoginFailed):
        identity.authenticate_staff("auditor", "Staff2026")


def test_admin_cannot_disable_themselves(client):
    login_staff(client, "admin")
    me = StaffUser.get(StaffUser.username == "admin")
    client.post(f"/staff/admin/staff/{me.id}/disable")
    assert StaffUser.get_by_id(me.id).active


def test_reset_totp_forces_enrolment(client):
    login_staff(client, "admin")
    official = StaffUser.get(StaffUser.username == "official")
    client.post(f"/staff/admin/staff/{official.id}/reset_totp")
    refreshed = StaffUser.get_by_id(official.id)
    assert refreshed.totp_secret is None and not refreshed.totp_confirmed
    assert AuditLog.select().where(AuditLog.action == "staff.reset_totp").exists()


def test_unknown_staff_id_is_404(client):
    login_staff(client, "admin")
    assert client.post("/staff/admin/staff/999999/disable").status_code == 404


def test_first_admin_command_only_when_no_admin(runner):
    result = runner.invoke(args=["staff", "create-first-admin", "root2", "--name", "甲"])
    assert result.exit_code != 0 and "已存在管理员" in result.output
    StaffUser.update(role="auditor").where(StaffUser.role == "admin").execute()
    result = runner.invoke(args=["staff", "create-first-admin", "root2", "--name", "甲"])
    assert result.exit_code == 0, result.output
    assert "/staff/setup/" in result.output
    assert StaffUser.get(StaffUser.username == "root2").password_hash is None


def test_calendar_override_changes_deadlines(client):
    login_staff(client, "admin")
    r = client.post(
        "/staff/admin/calendar", data={"day": "2027-01-04", "kind": "holiday", "note": "元旦调休"}
    )
    assert r.status_code == 303
    assert settings.holiday_overrides()[date(2027, 1, 4)] is False
    page = client.get("/staff/admin/calendar?year=2027").get_data(as_text=True)
    assert "元旦调休" in page and "未收录" in page
    r = client.post("/staff/admin/calendar/2027-01-04/delete")
    assert r.status_code == 303
    assert not HolidayOverride.select().exists()


def test_calendar_rejects_bad_dates(client):
    login_staff(client, "admin")
    r = client.post("/staff/admin/calendar", data={"day": "2027-02-30", "kind": "holiday"})
    assert r.status_code == 422
    assert client.post("/staff/admin/calendar/not-a-date/delete").status_code == 404


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("deposit_rate", "abc", "请输入数字"),
        ("deposit_rate", "0.5", "取值须在"),
        ("ratio_max", "12.5", "整数"),
        ("deposit_base_floor", "1980.123", "两位小数"),
        ("loan_rates", '{"first_le5": "0.02"}', "须包含"),
        ("loan_rates", "not json", "JSON"),
    ],
)
def test_settings_are_validated(key, value, message):
    admin_user = StaffUser.get(StaffUser.username == "admin")
    with pytest.raises(admin.AdminError, match=message):
        admin.add_setting("t", admin_user, key, value, TODAY, TODAY)


def test_setting_takes_effect_on_its_date(client):
    login_staff(client, "admin")
    future = TODAY + timedelta(days=400)
    r = client.post(
        "/staff/admin/settings",
        data={"key": "deposit_rate", "value": "0.0175", "effective_from": future.isoformat()},
    )
    assert r.status_code == 303
    assert settings.value_on("deposit_rate", future) == "0.0175"
    assert settings.value_on("deposit_rate", future - timedelta(days=1)) == "0.015"


def test_settings_cannot_rewrite_the_past():
    admin_user = StaffUser.get(StaffUser.username == "admin")
    with pytest.raises(admin.AdminError, match="早于今天"):
        admin.add_setting("t", admin_user, "deposit_rate", "0.02", TODAY - timedelta(days=1), TODAY)
    assert Setting.select().where(Setting.value == "0.02").count() == 0


def test_center_online_items_and_key_are_managed_and_audited(client):
    login_staff(client, "admin")
    key = "A" * 43 + "="  # 32 zero-ish bytes in base64
    r = client.post(
        "/staff/admin/centers/640100",
        data={
            "online_items": ["query", "usage_certificate"],
            "public_key": key,
            "hall_url": "https://gjj.example.invalid/640100",
            "active": "y",
        },
    )
    assert r.status_code == 303
    center = Center.get(Center.code == "640100")
    assert center.online_items == ["query", "usage_certificate"]
    assert center.public_key == key
    row = (
        AuditLog.select()
        .where(AuditLog.action == "center.update")
        .order_by(AuditLog.id.desc())
        .first()
    )
    assert row.detail["after"]["key_changed"] is True


def test_bad_public_key_is_refused(client):
    login_staff(client, "admin")
    r = client.post("/staff/admin/centers/640100", data={"public_key": "too-short"})
    assert r.status_code == 422 and "公钥" in r.get_data(as_text=True)
    assert client.get("/staff/admin/centers/152900").status_code == 404  # our own center


def test_common_passwords_are_refused():
    with pytest.raises(identity.PasswordRejected, match="过于常见"):
        identity.validate_new_password("woaini1314", "woaini1314")


def test_admin_manages_departments(client):
    from portal.models import Department

    login_staff(client, "admin")
    assert client.get("/staff/admin/departments").status_code == 200
    r = client.post(
        "/staff/admin/departments",
        data={
            "code": "ALS",
            "name": "阿拉善高新区管理部",
            "address": "乌兰布和路 1 号",
            "phone": "0483-1",
        },
    )
    assert r.status_code == 303
    assert Department.get(Department.code == "ALS").name == "阿拉善高新区管理部"
    r = client.post("/staff/admin/departments", data={"code": "ALS", "name": "高新区管理部"})
    assert r.status_code == 303 and Department.get(Department.code == "ALS").name == "高新区管理部"
    assert AuditLog.select().where(AuditLog.action == "department.update").exists()


@pytest.mark.parametrize(
    "data, message",
    [
        ({"code": "a-1", "name": "甲"}, "大写字母"),
        ({"code": "ZZZ", "name": "阿拉善左旗管理部"}, "同名"),
    ],
)
def test_bad_departments_are_refused(client, data, message):
    from portal.models import Department

    login_staff(client, "admin")
    before = Department.select().count()
    r = client.post("/staff/admin/departments", data=data)
    assert r.status_code == 422 and message in r.get_data(as_text=True)
    assert Department.select().count() == before
