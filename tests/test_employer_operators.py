"""Operators: the primary operator adds, disables, enables and removes others (each with a
code to the primary operator's phone, audited); activation of a new operator; registering an
employer whose 单位登记开户 case was processed."""

from __future__ import annotations

import pytest

from portal.models import AuditLog, Employer, EmployerOperator, ProxyCase, SmsMessage
from portal.rules.ids import org_code_check_char, resident_id_check_char, uscc_check_char
from portal.services import employers, identity
from tests import employer_helpers as helpers
from tests.conftest import TODAY, last_code, login_operator
from tests.employer_helpers import field_error, send_code, soup

fixed_today = helpers.fixed_today  # fixture
foreign_operator = helpers.foreign_operator  # fixture
primary_of_secondary = helpers.primary_of_secondary  # fixture
secondary = helpers.secondary  # fixture
pytestmark = pytest.mark.usefixtures("fixed_today")
NEW_ID = "152921199003070016"[:17]
NEW_ID = NEW_ID + resident_id_check_char(NEW_ID)
STRANGER_ID = "15292119880505001" + resident_id_check_char("15292119880505001")


def uscc(body: str = "MA0TEXT01", region: str = "152921") -> str:
    org = body[:8] + org_code_check_char(body[:8])
    first17 = f"91{region}{org}"
    return first17 + uscc_check_char(first17)


def _add(client, code, resident_id=NEW_ID, phone="13600001111", name="新经办"):
    return client.post(
        "/employer/operators",
        data={"op-name": name, "op-resident_id": resident_id, "op-phone": phone, "op-code": code},
    )


def _activate(client, operator, code, password="Newpass2026", confirm=None):
    return client.post(
        "/employer/activate",
        data={
            "credit_code": operator.employer.credit_code,
            "resident_id": operator.resident_id,
            "code": code,
            "password": password,
            "confirm": confirm or password,
        },
    )


def test_primary_adds_an_operator_who_activates_and_logs_in(client, app, operator):
    login_operator(client, operator)
    code = send_code(client, operator, "operator")
    assert "【经办人管理】" in SmsMessage.select().order_by(SmsMessage.id.desc()).first().body
    r = _add(client, code)
    assert r.status_code == 303, r.get_data(as_text=True)[:3000]
    new = EmployerOperator.get(
        (EmployerOperator.employer == operator.employer_id)
        & (EmployerOperator.resident_id == NEW_ID)
    )
    assert not new.is_primary and new.active and new.password_hash is None
    notices = [m.body for m in SmsMessage.select().where(SmsMessage.phone == "13600001111")]
    assert any("/employer/activate" in b for b in notices)
    assert (
        AuditLog.select()
        .where((AuditLog.action == "operator.added") & (AuditLog.target_id == str(new.id)))
        .exists()
    )
    page = soup(client.get("/employer/operators"))
    row = page.select_one(f"#operator-{new.id}")
    assert "待激活" in row.get_text() and NEW_ID not in row.get_text()
    # the new operator cannot log in before activation
    other = app.test_client()
    r = other.post(
        "/employer/login",
        data={
            "credit_code": operator.employer.credit_code,
            "resident_id": NEW_ID,
            "password": "Newpass2026",
        },
    )
    assert r.status_code == 422
    r = _activate(other, new, last_code("13600001111"))
    assert r.status_code == 303 and r.headers["Location"] == "/employer/login"
    fresh = EmployerOperator.get_by_id(new.id)
    assert fresh.password_hash and fresh.activated_at
    login_operator(other, fresh, password="Newpass2026")
    assert other.get("/employer/").status_code == 200


def test_duplicate_and_invalid_operators_are_refused(client, operator):
    login_operator(client, operator)
    code = send_code(client, operator, "operator")
    r = _add(client, code, resident_id=operator.resident_id)
    assert field_error(r, "op-resident_id") == "该身份证号码已登记为本单位经办人"
    r = _add(client, code, resident_id="152921199003070011")
    assert r.status_code == 422 and "身份证号码格式不正确" in field_error(r, "op-resident_id")
    r = _add(client, code, phone="1360000111")
    assert field_error(r, "op-phone") == "请输入 11 位手机号码"
    wrong = "000000" if code != "000000" else "111111"
    r = _add(client, wrong)
    assert field_error(r, "op-code") == "验证码不正确"
    assert EmployerOperator.select().where(EmployerOperator.resident_id == NEW_ID).count() == 0


def test_change_code_does_not_confirm_operator_management(client, operator):
    login_operator(client, operator)
    code = send_code(client, operator, "change")
    r = _add(client, code)
    assert field_error(r, "op-code") == "验证码无效或已过期，请重新获取"


def test_non_primary_cannot_manage_operators(client, secondary, primary_of_secondary):
    login_operator(client, secondary)
    page = soup(client.get("/employer/operators"))
    assert page.select_one("#add") is None
    assert "由本单位主经办人办理" in page.get_text()
    assert client.post("/employer/code/operator", data={"next": "/employer/"}).status_code == 403
    assert _add(client, "123456").status_code == 403
    target = primary_of_secondary.id
    for action in ("disable", "remove", "enable"):
        assert client.get(f"/employer/operators/{target}/{action}").status_code == 403
        r = client.post(f"/employer/operators/{target}/{action}", data={"code": "123456"})
        assert r.status_code == 403
    assert EmployerOperator.get_by_id(target).active


def test_primary_disables_enables_and_removes(client, app, secondary, primary_of_secondary):
    primary = primary_of_secondary
    login_operator(client, primary)
    # the secondary operator is logged in elsewhere
    theirs = app.test_client()
    login_operator(theirs, secondary)
    assert theirs.get("/employer/").status_code == 200
    page = client.get(f"/employer/operators/{secondary.id}/disable")
    assert page.status_code == 200 and secondary.resident_id not in page.get_data(as_text=True)
    code = send_code(client, primary, "operator")
    r = client.post(f"/employer/operators/{secondary.id}/disable", data={"code": code})
    assert r.status_code == 303
    assert not EmployerOperator.get_by_id(secondary.id).active
    assert theirs.get("/employer/").status_code == 302  # logged out
    assert (
        "已停用"
        in soup(client.get("/employer/operators"))
        .select_one(f"#operator-{secondary.id}")
        .get_text()
    )
    r = client.post(f"/employer/operators/{secondary.id}/enable", data={"code": code})
    assert r.status_code == 422 and "验证码无效或已过期" in field_error(r, "code")  # used once
    with client.session_transaction() as s:
        s["employer_otp"] = {}
    code = send_code(client, primary, "operator")
    assert (
        client.post(f"/employer/operators/{secondary.id}/enable", data={"code": code}).status_code
        == 303
    )
    assert EmployerOperator.get_by_id(secondary.id).active
    with client.session_transaction() as s:
        s["employer_otp"] = {}
    code = send_code(client, primary, "operator")
    assert (
        client.post(f"/employer/operators/{secondary.id}/remove", data={"code": code}).status_code
        == 303
    )
    assert EmployerOperator.get_or_none(EmployerOperator.id == secondary.id) is None
    actions = [
        a.action
        for a in AuditLog.select()
        .where((AuditLog.target_type == "operator") & (AuditLog.target_id == str(secondary.id)))
        .order_by(AuditLog.id)
    ]
    assert actions[-3:] == ["operator.disabled", "operator.enabled", "operator.removed"]


def test_primary_cannot_disable_or_remove_self(client, operator):
    login_operator(client, operator)
    code = send_code(client, operator, "operator")
    r = client.post(f"/employer/operators/{operator.id}/disable", data={"code": code})
    assert r.status_code == 422 and field_error(r, "code") == "不能停用主经办人"
    r = client.post(f"/employer/operators/{operator.id}/remove", data={"code": code})
    assert field_error(r, "code") == "不能删除主经办人"
    assert EmployerOperator.get_by_id(operator.id).active


def test_another_employers_operator_is_not_found(client, operator, secondary):
    login_operator(client, operator)
    assert secondary.employer_id != operator.employer_id
    for action in ("disable", "enable", "remove"):
        assert client.get(f"/employer/operators/{secondary.id}/{action}").status_code == 404
        r = client.post(f"/employer/operators/{secondary.id}/{action}", data={"code": "1"})
        assert r.status_code == 404
    assert EmployerOperator.get_by_id(secondary.id).active


# --- activation ---------------------------------------------------------------------------


@pytest.fixture
def pending_operator(operator):
    return EmployerOperator.create(
        employer=operator.employer,
        resident_id=NEW_ID,
        name="待激活",
        phone="13600002222",
        is_primary=False,
        active=True,
    )


def test_activation_page_and_resend(client, pending_operator):
    r = client.get("/employer/activate")
    assert r.status_code == 200 and soup(r).select_one("h1").get_text() == "单位经办人激活"
    data = {
        "credit_code": pending_operator.employer.credit_code,
        "resident_id": pending_operator.resident_id,
    }
    r = client.post("/employer/activate/code", data=data)
    assert r.status_code == 200 and "激活验证码已发送" in r.get_data(as_text=True)
    code = last_code("13600002222")
    assert "【首次登录设置密码】" in SmsMessage.select().order_by(SmsMessage.id.desc()).first().body
    # the same answer for someone who is not waiting to be activated
    before = SmsMessage.select().count()
    r = client.post("/employer/activate/code", data={**data, "resident_id": STRANGER_ID})
    assert r.status_code == 200 and "激活验证码已发送" in r.get_data(as_text=True)
    assert SmsMessage.select().count() == before
    r = _activate(client, pending_operator, code, password="short1")
    assert r.status_code == 422 and "密码至少 8 位" in field_error(r, "password")
    r = _activate(client, pending_operator, code, confirm="Different2026")
    assert field_error(r, "password") == "两次输入的密码不一致"
    r = _activate(client, pending_operator, code)
    assert r.status_code == 303
    # once activated, the page cannot set the password again
    r = client.post("/employer/activate/code", data=data)
    r = _activate(client, pending_operator, code, password="Another2026")
    assert r.status_code == 422 and employers.ACTIVATION_FAILED in r.get_data(as_text=True)
    fresh = EmployerOperator.get_by_id(pending_operator.id)
    assert identity.check_password(fresh.password_hash, "Newpass2026")


def test_wrong_activation_codes_are_rate_limited(client, pending_operator):
    identity.send_code("activate", f"o:{pending_operator.id}", pending_operator.phone)
    from portal.public.employer import LOOKUP_LIMIT

    statuses = [
        _activate(client, pending_operator, "000001").status_code for _ in range(LOOKUP_LIMIT + 1)
    ]
    assert set(statuses[:5]) == {422} and statuses[-1] == 429
    assert EmployerOperator.get_by_id(pending_operator.id).password_hash is None
    assert AuditLog.select().where(AuditLog.action == "operator.activate_failed").count() >= 5


def test_activation_for_another_employer_fails(client, pending_operator, foreign_operator):
    identity.send_code("activate", f"o:{pending_operator.id}", pending_operator.phone)
    code = last_code(pending_operator.phone)
    r = client.post(
        "/employer/activate",
        data={
            "credit_code": foreign_operator.employer.credit_code,
            "resident_id": NEW_ID,
            "code": code,
            "password": "Newpass2026",
            "confirm": "Newpass2026",
        },
    )
    assert r.status_code == 422
    assert EmployerOperator.get_by_id(pending_operator.id).password_hash is None


# --- registration -------------------------------------------------------------------------


def _register(**overrides):
    data = dict(
        name="北京示例科技有限公司阿拉善分公司",
        credit_code=uscc(),
        address="阿拉善左旗巴彦浩特镇新华街 1 号",
        operator_name="开户人",
        operator_resident_id=NEW_ID,
        operator_phone="13600003333",
        today=TODAY,
        actor="staff:handler",
    )
    data.update(overrides)
    return employers.register_employer(**data)


def test_register_employer_creates_it_with_a_primary_operator(client):
    employer = _register(employer_ratio=10, employee_ratio=10)
    assert employer.account_no.startswith("15290001") and employer.opened_on == TODAY
    assert (employer.employer_ratio, employer.employee_ratio, employer.status) == (10, 10, "正常")
    [op] = list(employer.operators)
    assert op.is_primary and op.password_hash is None and op.resident_id == NEW_ID
    bodies = [m.body for m in SmsMessage.select().where(SmsMessage.phone == "13600003333")]
    assert any(employer.account_no in b and "/employer/activate" in b for b in bodies)
    code = last_code("13600003333")
    r = _activate(client, op, code)
    assert r.status_code == 303
    login_operator(client, EmployerOperator.get_by_id(op.id), password="Newpass2026")
    assert soup(client.get("/employer/")).select_one("h1").get_text() == employer.name
    assert AuditLog.select().where(AuditLog.action == "employer.registered").exists()


def test_register_employer_refuses_duplicates_and_bad_codes(operator):
    with pytest.raises(employers.Refused, match="已登记开户") as exc:
        _register(credit_code=operator.employer.credit_code)
    assert exc.value.field == "credit_code"
    bad = uscc()[:-1] + ("1" if uscc()[-1] != "1" else "2")
    with pytest.raises(employers.Refused, match="统一社会信用代码不正确"):
        _register(credit_code=bad)
    with pytest.raises(employers.Refused, match="缴存比例须在 5%–12%"):
        _register(employer_ratio=15)
    with pytest.raises(employers.Refused, match="11 位手机号码"):
        _register(operator_phone="123")
    first = _register()
    with pytest.raises(employers.Refused, match="不能重复开户"):
        _register(credit_code=first.credit_code.lower())
    assert Employer.select().where(Employer.credit_code == first.credit_code).count() == 1


def test_register_employer_links_the_case():
    case = ProxyCase.select().where(ProxyCase.item == "employer_registration").first()
    employer = _register(case=case)
    assert ProxyCase.get_by_id(case.id).employer_id == employer.id
