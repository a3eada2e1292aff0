"""Logins for every kind of user, first login, reset, one-time codes, TOTP."""

from __future__ import annotations

import time

import pyotp
import pytest

from portal.models import AuditLog, Depositor, OtpChallenge, SmsMessage, StaffUser, WebSession
from portal.services import identity
from tests.conftest import last_code, login_depositor, login_operator, login_staff, totp_code


def test_depositor_login_with_sms_code_lands_on_account(client, depositor):
    r = client.post("/login", data={"resident_id": depositor.resident_id, "password": "Demo1234"})
    assert r.status_code == 303 and r.headers["Location"].endswith("/login/code")
    page = client.get("/login/code").get_data(as_text=True)
    assert depositor.phone not in page  # masked
    assert depositor.phone[:3] + "****" + depositor.phone[-4:] in page
    r = client.post("/login/code", data={"code": last_code(depositor.phone)})
    assert r.status_code == 303 and r.headers["Location"].endswith("/me/")
    home = client.get("/me/").get_data(as_text=True)
    assert depositor.name in home
    assert depositor.resident_id not in home
    assert depositor.resident_id[:4] + "**********" + depositor.resident_id[-4:] in home


@pytest.mark.parametrize("field, value", [("password", "WrongPass1"), ("resident_id", None)])
def test_wrong_credentials_get_one_message(client, depositor, other_depositor, field, value):
    data = {"resident_id": depositor.resident_id, "password": "Demo1234"}
    data[field] = value or other_depositor.resident_id
    if field == "resident_id":
        data["password"] = "NotTheirPassword1"
    r = client.post("/login", data=data)
    assert r.status_code == 422
    assert "登录信息不正确" in r.get_data(as_text=True)


def test_unknown_person_gets_the_same_message(client):
    from portal.rules.ids import resident_id_check_char

    first17 = "15292119800101123"
    r = client.post(
        "/login",
        data={"resident_id": first17 + resident_id_check_char(first17), "password": "Demo1234"},
    )
    assert r.status_code == 422
    assert "登录信息不正确" in r.get_data(as_text=True)


def test_malformed_id_is_explained_next_to_the_field(client):
    r = client.post("/login", data={"resident_id": "123", "password": "x"})
    html = r.get_data(as_text=True)
    assert r.status_code == 422
    assert "身份证号码格式不正确" in html
    assert (
        'aria-invalid="true"' in html
        and 'aria-describedby="resident_id-hint resident_id-error"' in html
    )


def test_wrong_code_then_right_code(client, depositor):
    client.post("/login", data={"resident_id": depositor.resident_id, "password": "Demo1234"})
    code = last_code(depositor.phone)
    wrong = "000000" if code != "000000" else "111111"
    r = client.post("/login/code", data={"code": wrong})
    assert r.status_code == 422 and "验证码不正确" in r.get_data(as_text=True)
    assert client.post("/login/code", data={"code": code}).status_code == 303


def test_a_code_works_once(client, app, depositor):
    client.post("/login", data={"resident_id": depositor.resident_id, "password": "Demo1234"})
    code = last_code(depositor.phone)
    assert client.post("/login/code", data={"code": code}).status_code == 303
    challenge = OtpChallenge.select().order_by(OtpChallenge.id.desc()).first()
    with pytest.raises(identity.CodeFailed):
        identity.verify_code(challenge.id, "login", f"d:{depositor.id}", code)


def test_code_for_someone_else_is_refused(depositor, other_depositor):
    challenge = identity.send_code("login", f"d:{depositor.id}", depositor.phone)
    code = last_code(depositor.phone)
    with pytest.raises(identity.CodeFailed):
        identity.verify_code(challenge.id, "login", f"d:{other_depositor.id}", code)
    with pytest.raises(identity.CodeFailed):
        identity.verify_code(challenge.id, "reset", f"d:{depositor.id}", code)


def test_code_attempts_are_limited(depositor):
    challenge = identity.send_code("login", f"d:{depositor.id}", depositor.phone)
    code = last_code(depositor.phone)
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(identity.MAX_CODE_ATTEMPTS):
        with pytest.raises(identity.CodeFailed):
            identity.verify_code(challenge.id, "login", f"d:{depositor.id}", wrong)
    with pytest.raises(identity.CodeFailed, match="无效或已过期"):
        identity.verify_code(challenge.id, "login", f"d:{depositor.id}", code)


def test_expired_code_is_refused(depositor):
    challenge = identity.send_code("login", f"d:{depositor.id}", depositor.phone)
    code = last_code(depositor.phone)
    OtpChallenge.update(expires_at=challenge.created_at).where(
        OtpChallenge.id == challenge.id
    ).execute()
    with pytest.raises(identity.CodeFailed):
        identity.verify_code(challenge.id, "login", f"d:{depositor.id}", code)


def test_code_page_without_pending_login_restarts(client):
    r = client.get("/login/code")
    assert r.status_code == 303 and r.headers["Location"].endswith("/login")


def test_resend_is_rate_limited(client, depositor):
    client.post("/login", data={"resident_id": depositor.resident_id, "password": "Demo1234"})
    before = SmsMessage.select().where(SmsMessage.phone == depositor.phone).count()
    r = client.post("/login/resend", headers={"Referer": "http://localhost/login/code"})
    assert r.status_code == 303
    assert SmsMessage.select().where(SmsMessage.phone == depositor.phone).count() == before
    assert "过于频繁" in client.get("/login/code").get_data(as_text=True)


def first_login_depositor():
    return (
        Depositor.select().where(Depositor.password_hash.is_null()).order_by(Depositor.id).first()
    )


def test_first_login_sets_password_then_logs_in(client):
    person = first_login_depositor()
    assert (
        client.post(
            "/login", data={"resident_id": person.resident_id, "password": "Anything1"}
        ).status_code
        == 422
    )
    r = client.post("/activate", data={"resident_id": person.resident_id, "name": person.name})
    assert r.status_code == 303 and r.headers["Location"].endswith("/password/activate")
    r = client.post(
        "/password/activate",
        data={"code": last_code(person.phone), "password": "NewPass2026", "confirm": "NewPass2026"},
    )
    assert r.status_code == 303 and r.headers["Location"].endswith("/login")
    login_depositor(client, person, password="NewPass2026")
    assert person.name in client.get("/me/").get_data(as_text=True)
    assert AuditLog.select().where(AuditLog.action == "password.activate").exists()


def test_activation_needs_matching_name(client):
    person = first_login_depositor()
    r = client.post("/activate", data={"resident_id": person.resident_id, "name": "不是本人"})
    assert r.status_code == 422
    assert "不匹配" in r.get_data(as_text=True)
    assert not SmsMessage.select().where(SmsMessage.phone == person.phone).exists()


@pytest.mark.parametrize(
    "password, confirm, message",
    [
        ("short1", "short1", "至少 8 位"),
        ("abcdefghij", "abcdefghij", "字母和数字"),
        ("Password123", "Password124", "不一致"),
    ],
)
def test_weak_or_mismatched_password_is_refused(client, password, confirm, message):
    person = first_login_depositor()
    client.post("/activate", data={"resident_id": person.resident_id, "name": person.name})
    r = client.post(
        "/password/activate",
        data={"code": last_code(person.phone), "password": password, "confirm": confirm},
    )
    assert r.status_code == 422 and message in r.get_data(as_text=True)
    assert Depositor.get_by_id(person.id).password_hash is None


def test_forgotten_password_reset(client, depositor):
    client.post("/reset", data={"resident_id": depositor.resident_id, "name": depositor.name})
    r = client.post(
        "/password/reset",
        data={
            "code": last_code(depositor.phone),
            "password": "Reset2026x",
            "confirm": "Reset2026x",
        },
    )
    assert r.status_code == 303
    r = client.post("/login", data={"resident_id": depositor.resident_id, "password": "Demo1234"})
    assert r.status_code == 422
    login_depositor(client, depositor, password="Reset2026x")


def test_operator_login_lands_on_employer_overview(client, operator):
    login_operator(client, operator)
    html = client.get("/employer/").get_data(as_text=True)
    assert operator.employer.name in html
    assert operator.employer.credit_code in html


def test_operator_with_wrong_credit_code_is_refused(client, operator):
    from portal.models import Employer

    other = Employer.select().where(Employer.id != operator.employer_id).first()
    r = client.post(
        "/employer/login",
        data={
            "credit_code": other.credit_code,
            "resident_id": operator.resident_id,
            "password": "Demo1234",
        },
    )
    assert r.status_code == 422 and "登录信息不正确" in r.get_data(as_text=True)


@pytest.mark.parametrize(
    "username", ["clerk", "liaison", "handler", "official", "admin", "auditor"]
)
def test_staff_login_with_totp_lands_on_intranet(client, username):
    login_staff(client, username)
    r = client.get("/staff/")
    assert r.status_code == 200 and "工作台" in r.get_data(as_text=True)


def test_staff_totp_replay_is_refused():
    user = StaffUser.get(StaffUser.username == "clerk")
    code = totp_code(user.totp_secret)
    identity.verify_totp(user, code)
    with pytest.raises(identity.CodeFailed, match="已使用"):
        identity.verify_totp(StaffUser.get_by_id(user.id), code)


def test_staff_totp_tolerates_one_step_of_skew_only():
    user = StaffUser.get(StaffUser.username == "liaison")
    now = time.time()
    identity.verify_totp(user, pyotp.TOTP(user.totp_secret).at(now - 30), now=now)
    with pytest.raises(identity.CodeFailed):
        identity.verify_totp(user, pyotp.TOTP(user.totp_secret).at(now + 120), now=now)


def test_staff_without_totp_enrols_by_qr_code(client):
    user = StaffUser.get(StaffUser.username == "admin")
    StaffUser.update(totp_secret=None, totp_confirmed=False).where(
        StaffUser.id == user.id
    ).execute()
    r = client.post("/staff/login", data={"username": "admin", "password": "Staff2026"})
    assert r.headers["Location"].endswith("/staff/login/enrol")
    page = client.get("/staff/login/enrol").get_data(as_text=True)
    assert "data:image/svg+xml;base64," in page
    secret = StaffUser.get_by_id(user.id).totp_secret
    assert secret and secret in page
    r = client.post("/staff/login/enrol", data={"code": pyotp.TOTP(secret).now()})
    assert r.status_code == 303
    assert StaffUser.get_by_id(user.id).totp_confirmed


def test_depositor_cannot_use_staff_or_employer_pages(client, depositor):
    login_depositor(client, depositor)
    assert client.get("/staff/").status_code == 403
    assert client.get("/employer/").status_code == 403


def test_anonymous_is_sent_to_the_right_login(client):
    assert client.get("/me/").headers["Location"].startswith("/login?next=")
    assert client.get("/employer/").headers["Location"].startswith("/employer/login")
    assert client.get("/staff/").headers["Location"].startswith("/staff/login")
    assert client.get("/staff/", headers={"HX-Request": "true"}).status_code == 401


def test_login_redirects_only_to_local_next(client, depositor):
    client.post(
        "/login?next=https://evil.example/",
        data={"resident_id": depositor.resident_id, "password": "Demo1234"},
    )
    r = client.post("/login/code", data={"code": last_code(depositor.phone)})
    assert r.headers["Location"].endswith("/me/")


def test_logout_ends_the_session_on_the_server(app, client, depositor):
    login_depositor(client, depositor)
    cookie = client.get_cookie("hpf_session").value
    assert WebSession.get_or_none(WebSession.sid == cookie) is not None
    r = client.post("/logout")
    assert r.status_code == 303
    assert WebSession.get_or_none(WebSession.sid == cookie) is None
    thief = app.test_client()
    thief.set_cookie("hpf_session", cookie)
    assert thief.get("/me/").status_code == 302


def test_session_id_changes_at_login(client, depositor):
    client.get("/login")
    before = client.get_cookie("hpf_session").value
    login_depositor(client, depositor)
    after = client.get_cookie("hpf_session").value
    assert before != after
    assert WebSession.get_or_none(WebSession.sid == before) is None


def test_disabled_account_loses_its_session(client, depositor):
    login_depositor(client, depositor)
    Depositor.update(active=False).where(Depositor.id == depositor.id).execute()
    assert client.get("/me/").status_code == 302


def test_logins_are_audited_without_id_numbers(client, depositor):
    login_depositor(client, depositor)
    row = AuditLog.select().where(AuditLog.action == "login").order_by(AuditLog.id.desc()).first()
    assert row.actor == f"depositor:{depositor.id}"
    assert depositor.resident_id not in str(row.detail) + row.actor


def test_failed_logins_are_audited_with_a_masked_identifier(client, depositor):
    client.post("/login", data={"resident_id": depositor.resident_id, "password": "Wrong1234"})
    row = (
        AuditLog.select()
        .where(AuditLog.action == "login.failed")
        .order_by(AuditLog.id.desc())
        .first()
    )
    rid = depositor.resident_id
    assert row.detail["who"] == rid[:4] + "**********" + rid[-4:]
    assert depositor.resident_id not in str(row.detail)


# --- lockout (security checks 1) ------------------------------------------------------------


def _fail(client, resident_id, times):
    for _ in range(times):
        r = client.post("/login", data={"resident_id": resident_id, "password": "Wrong12345"})
    return r


def test_five_failures_lock_the_account_even_for_the_right_password(client, depositor):
    r = _fail(client, depositor.resident_id, 5)
    assert r.status_code == 422  # the fifth failure itself still says "wrong"
    r = client.post("/login", data={"resident_id": depositor.resident_id, "password": "Demo1234"})
    assert r.status_code == 429 and "15 分钟后再试" in r.get_data(as_text=True)


def test_lock_message_is_the_same_for_an_unknown_person(client):
    from portal.rules.ids import resident_id_check_char

    first17 = "15292119800101123"
    unknown = first17 + resident_id_check_char(first17)
    _fail(client, unknown, 5)
    r = client.post("/login", data={"resident_id": unknown, "password": "Demo1234"})
    assert r.status_code == 429 and "15 分钟后再试" in r.get_data(as_text=True)


def test_lock_expires_after_15_minutes(depositor):
    from portal.services import lockout, ratelimit

    for _ in range(5):
        lockout.failed("depositor", depositor.resident_id)
    with pytest.raises(lockout.Locked):
        lockout.check("depositor", depositor.resident_id, "")
    ident = lockout._ident("depositor", depositor.resident_id)
    count, seconds = ratelimit.alive(f"lock:{ident}")
    assert count == 1 and 14 * 60 < seconds <= 15 * 60
    later = __import__("time").time() + 15 * 60 + 1
    assert ratelimit.alive(f"lock:{ident}", now=later) == (0, 0)


def test_success_resets_the_failure_count(client, depositor):
    _fail(client, depositor.resident_id, 4)
    login_depositor(client, depositor)
    client.post("/logout")
    r = _fail(client, depositor.resident_id, 4)
    assert r.status_code == 422  # not locked: the count started again


def test_wrong_totp_codes_count_towards_the_staff_lockout(client):
    from portal.services import lockout

    for _ in range(5):
        r = client.post("/staff/login", data={"username": "official", "password": "Staff2026"})
        assert r.status_code == 303
        client.post("/staff/login/totp", data={"code": "000000"})
    r = client.post("/staff/login", data={"username": "official", "password": "Staff2026"})
    assert r.status_code == 429
    with pytest.raises(lockout.Locked):
        lockout.check("staff", "official", "")


def test_per_address_limit(client, depositor, monkeypatch):
    from portal.services import lockout

    monkeypatch.setattr(lockout, "ADDRESS_LIMIT", 3)
    for _ in range(3):
        client.post("/login", data={"resident_id": depositor.resident_id, "password": "x1234567"})
    r = client.post("/login", data={"resident_id": depositor.resident_id, "password": "Demo1234"})
    assert r.status_code == 429 and "过于频繁" in r.get_data(as_text=True)


def test_lockout_counters_hold_no_id_numbers(client, depositor):
    from portal.models import RateLimitHit

    _fail(client, depositor.resident_id, 2)
    keys = [row.key for row in RateLimitHit.select()]
    assert keys and not any(depositor.resident_id in k for k in keys)
