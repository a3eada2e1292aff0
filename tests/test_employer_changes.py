"""Employer deposit-information change (单位缴存信息变更): contact, address, ratios, one
depositor's deposit base; a fresh code each time, exact refusals, history, effective months."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from portal.models import Account, AuditLog, ChangeRecord, Employer
from portal.services import employers
from tests import employer_helpers as helpers
from tests.conftest import TODAY, login_operator
from tests.employer_helpers import account_of, field_error, send_code, setting, soup

fixed_today = helpers.fixed_today  # fixture
secondary = helpers.secondary  # fixture
pytestmark = pytest.mark.usefixtures("fixed_today")


def _history(employer_id):
    return list(
        ChangeRecord.select()
        .where((ChangeRecord.subject_type == "employer") & (ChangeRecord.subject_id == employer_id))
        .order_by(ChangeRecord.id)
    )


def _ratios(client, mine, theirs, month="2026-11", code="000000"):
    return client.post(
        "/employer/changes/ratios",
        data={
            "ratio-employer_ratio": str(mine),
            "ratio-employee_ratio": str(theirs),
            "ratio-effective_from": month,
            "ratio-code": code,
        },
    )


def _other_ratio(employer):
    return 10 if employer.employer_ratio != 10 else 8


def test_ratio_change_applies_to_the_employer_and_its_accounts(client, operator):
    login_operator(client, operator)
    employer = operator.employer
    new = _other_ratio(employer)
    code = send_code(client, operator)
    r = _ratios(client, new, new, "2026-11", code)
    assert r.status_code == 303, r.get_data(as_text=True)[:2000]
    fresh = Employer.get_by_id(employer.id)
    assert (fresh.employer_ratio, fresh.employee_ratio) == (new, new)
    accounts = Account.select().where((Account.employer == employer) & (Account.status != "销户"))
    assert {(a.employer_ratio, a.employee_ratio) for a in accounts} == {(new, new)}
    records = _history(employer.id)
    assert [(r.field, r.old_value, r.new_value, r.status) for r in records] == [
        ("employer_ratio", f"{employer.employer_ratio}%", f"{new}%", "applied"),
        ("employee_ratio", f"{employer.employee_ratio}%", f"{new}%", "applied"),
    ]
    assert all(
        r.channel == "online"
        and r.actor == f"operator:{operator.id}"
        and r.effective_from == "2026-11"
        for r in records
    )
    assert AuditLog.select().where(AuditLog.action == "employer.ratios_changed").exists()
    page = soup(client.get("/employer/changes"))
    table = page.select_one("#history table").get_text()
    assert "单位缴存比例" in table and f"{new}%" in table and operator.name in table
    assert "已生效" in table and "网上业务大厅" in table and "2026年11月" in table
    assert (
        f"单位 {new}%"
        in soup(client.get("/employer/")).select_one("#emp-h").find_parent("section").get_text()
    )


def test_ratio_change_for_a_later_month_waits_until_then(client, operator):
    login_operator(client, operator)
    employer = operator.employer
    old, new = employer.employer_ratio, _other_ratio(employer)
    code = send_code(client, operator)
    r = _ratios(client, new, new, "2027-01", code)
    assert r.status_code == 303
    assert Employer.get_by_id(employer.id).employer_ratio == old
    assert {r.status for r in _history(employer.id)} == {"scheduled"}
    overview = soup(client.get("/employer/")).get_text()
    assert "待生效的变更" in overview and "2027年1月" in overview
    # nothing due in November, applied once January has begun
    assert employers.apply_due(TODAY) == 0
    assert employers.apply_due(date(2027, 1, 1), employer) == 2
    assert employers.apply_due(date(2027, 1, 1), employer) == 0
    assert Employer.get_by_id(employer.id).employer_ratio == new
    account = account_of(employer.id)
    assert (account.employer_ratio, account.employee_ratio) == (new, new)
    assert {r.status for r in _history(employer.id)} == {"applied"}


def test_a_new_change_supersedes_a_scheduled_one(client, operator):
    login_operator(client, operator)
    employer = operator.employer
    code = send_code(client, operator)
    assert _ratios(client, 8, 8, "2027-02", code).status_code == 303
    with client.session_transaction() as s:
        s["employer_otp"] = {}  # allow an immediate resend
    code = send_code(client, operator)
    assert _ratios(client, 9, 9, "2027-01", code).status_code == 303
    statuses = [(r.new_value, r.status) for r in _history(employer.id)]
    assert statuses == [
        ("8%", "superseded"),
        ("8%", "superseded"),
        ("9%", "scheduled"),
        ("9%", "scheduled"),
    ]
    employers.apply_due(date(2027, 3, 1))
    assert Employer.get_by_id(employer.id).employer_ratio == 9


@pytest.mark.parametrize(
    ("mine", "theirs", "field", "message"),
    [
        (4, 12, "ratio-employer_ratio", "单位缴存比例须在 5%–12% 之间，您填写的是 4%"),
        (12, 13, "ratio-employee_ratio", "个人缴存比例须在 5%–12% 之间，您填写的是 13%"),
        ("x", 12, "ratio-employer_ratio", "请填写整数百分比，如 10"),
    ],
)
def test_ratios_out_of_range_are_refused(client, operator, mine, theirs, field, message):
    login_operator(client, operator)
    code = send_code(client, operator)
    r = _ratios(client, mine, theirs, "2026-11", code)
    assert r.status_code == 422
    assert field_error(r, field) == message
    assert not _history(operator.employer_id)
    # the code was not spent on a refused change
    r = _ratios(client, 6, 6, "2026-11", code)
    assert r.status_code == 303


def test_ratio_range_follows_the_settings(client, operator):
    setting("ratio_max", "10", date(2026, 11, 1))
    login_operator(client, operator)
    code = send_code(client, operator)
    r = _ratios(client, 11, 11, "2026-11", code)
    assert field_error(r, "ratio-employer_ratio") == "单位缴存比例须在 5%–10% 之间，您填写的是 11%"
    assert "5%–10%" in soup(client.get("/employer/changes")).select_one("#ratios").get_text()


def test_unequal_ratios_refused_when_the_center_requires_equal(client, operator):
    login_operator(client, operator)
    code = send_code(client, operator)
    setting("ratio_equal", "1")
    r = _ratios(client, 10, 8, "2026-11", code)
    assert r.status_code == 422
    assert field_error(r, "ratio-employee_ratio") == (
        "本中心规定单位和个人缴存比例须相同（您填写的是单位 10%、个人 8%）"
    )
    assert "且须相同" in soup(r).select_one("#ratios").get_text()
    setting("ratio_equal", "0")
    assert _ratios(client, 10, 8, "2026-11", code).status_code == 303
    fresh = Employer.get_by_id(operator.employer_id)
    assert (fresh.employer_ratio, fresh.employee_ratio) == (10, 8)


@pytest.mark.parametrize(
    ("month", "message"),
    [
        ("2026-10", "生效月份不能早于本月（2026年11月）；已缴存的月份不能追溯变更"),
        ("2028-01", "生效月份最晚为 2027年11月"),
        ("2026-13", "请按“年-月”填写生效月份，例如 2026-12"),
    ],
)
def test_effective_month_rules(client, operator, month, message):
    login_operator(client, operator)
    code = send_code(client, operator)
    r = _ratios(client, 6, 6, month, code)
    assert r.status_code == 422
    assert field_error(r, "ratio-effective_from") == message
    assert not _history(operator.employer_id)


def test_changes_need_a_fresh_code(client, operator):
    login_operator(client, operator)
    employer = operator.employer
    r = _ratios(client, 6, 6, "2026-11", "123456")  # no code requested yet
    assert r.status_code == 422
    assert field_error(r, "ratio-code") == "验证码无效或已过期，请重新获取"
    code = send_code(client, operator)
    wrong = "000000" if code != "000000" else "111111"
    r = _ratios(client, 6, 6, "2026-11", wrong)
    assert field_error(r, "ratio-code") == "验证码不正确"
    assert _ratios(client, 6, 6, "2026-11", code).status_code == 303
    # used once: the same code cannot confirm another change
    r = client.post(
        "/employer/changes/address",
        data={"addr-address": "阿拉善左旗巴彦浩特镇新华街 99 号", "addr-code": code},
    )
    assert r.status_code == 422
    assert Employer.get_by_id(employer.id).address == employer.address


def test_contact_change_with_history_and_masked_phone(client, operator):
    login_operator(client, operator)
    employer = operator.employer
    code = send_code(client, operator)
    r = client.post(
        "/employer/changes/contact",
        data={
            "contact-contact_name": "新联系人",
            "contact-contact_phone": "13912345678",
            "contact-code": code,
        },
    )
    assert r.status_code == 303
    fresh = Employer.get_by_id(employer.id)
    assert (fresh.contact_name, fresh.contact_phone) == ("新联系人", "13912345678")
    records = {r.field: r for r in _history(employer.id)}
    assert records["contact_name"].old_value == employer.contact_name
    assert records["contact_phone"].new_value == "139****5678"
    html = client.get("/employer/changes").get_data(as_text=True)
    assert "13912345678" not in html and "139****5678" in html


@pytest.mark.parametrize("phone", ["1391234567", "23912345678", "0483-12", "电话"])
def test_bad_contact_phone_is_refused(client, operator, phone):
    login_operator(client, operator)
    code = send_code(client, operator)
    r = client.post(
        "/employer/changes/contact",
        data={
            "contact-contact_name": "新联系人",
            "contact-contact_phone": phone,
            "contact-code": code,
        },
    )
    assert r.status_code == 422
    assert "请输入 11 位手机号码，或带区号的固定电话" in field_error(r, "contact-contact_phone")
    assert Employer.get_by_id(operator.employer_id).contact_phone == operator.employer.contact_phone


def test_landline_contact_phone_is_accepted(client, operator):
    login_operator(client, operator)
    code = send_code(client, operator)
    r = client.post(
        "/employer/changes/contact",
        data={
            "contact-contact_name": "新联系人",
            "contact-contact_phone": "0483-8123456",
            "contact-code": code,
        },
    )
    assert r.status_code == 303


def test_address_change_and_same_address_refused(client, operator):
    login_operator(client, operator)
    employer = operator.employer
    code = send_code(client, operator)
    r = client.post(
        "/employer/changes/address",
        data={"addr-address": employer.address, "addr-code": code},
    )
    assert field_error(r, "addr-address") == "新地址与当前登记的单位地址相同"
    r = client.post(
        "/employer/changes/address",
        data={"addr-address": "阿拉善左旗巴彦浩特镇新华街 99 号", "addr-code": code},
    )
    assert r.status_code == 303
    [record] = _history(employer.id)
    assert (record.field, record.old_value, record.new_value) == (
        "address",
        employer.address,
        "阿拉善左旗巴彦浩特镇新华街 99 号",
    )


def _base(client, account, value, month="2026-11", code="000000"):
    return client.post(
        f"/employer/roster/{account.id}/base",
        data={"deposit_base": value, "effective_from": month, "code": code},
    )


def test_deposit_base_change_within_floor_and_ceiling(client, operator):
    login_operator(client, operator)
    account = account_of(operator.employer_id)
    code = send_code(client, operator)
    r = _base(client, account, "1979.99", code=code)
    assert r.status_code == 422
    assert field_error(r, "deposit_base") == (
        "缴存基数不得低于本地下限 1,980.00 元（您填写的是 1,979.99 元）"
    )
    r = _base(client, account, "27000.01", code=code)
    assert field_error(r, "deposit_base") == (
        "缴存基数不得高于本地上限 27,000.00 元（您填写的是 27,000.01 元）"
    )
    r = _base(client, account, "12.345", code=code)
    assert "最多两位小数" in field_error(r, "deposit_base")
    assert Account.get_by_id(account.id).deposit_base == account.deposit_base
    r = _base(client, account, "8,800.00", code=code)
    assert r.status_code == 303
    fresh = Account.get_by_id(account.id)
    assert fresh.deposit_base == Decimal("8800.00")
    [record] = _history(operator.employer_id)
    assert (record.field, record.account_id, record.old_value, record.new_value) == (
        "deposit_base",
        account.id,
        f"{account.deposit_base:.2f}",
        "8800.00",
    )
    page = soup(client.get(f"/employer/roster/{account.id}/base"))
    assert "8,800.00" in page.select_one("#who-h").find_parent("section").get_text()
    assert account.depositor.name in page.select_one("#history").get_text()


def test_deposit_base_floor_of_the_effective_month(client, operator):
    setting("deposit_base_floor", "2200.00", date(2027, 1, 1))
    login_operator(client, operator)
    account = account_of(operator.employer_id)
    code = send_code(client, operator)
    r = _base(client, account, "2100.00", "2027-01", code)
    assert "不得低于本地下限 2,200.00 元" in field_error(r, "deposit_base")
    r = _base(client, account, "2100.00", "2026-12", code)
    assert r.status_code == 303
    assert Account.get_by_id(account.id).deposit_base == account.deposit_base  # waits
    employers.apply_due(date(2026, 12, 1))
    assert Account.get_by_id(account.id).deposit_base == Decimal("2100.00")


def test_closed_account_base_cannot_change(client, operator):
    login_operator(client, operator)
    account = account_of(operator.employer_id)
    Account.update(status="销户").where(Account.id == account.id).execute()
    code = send_code(client, operator)
    r = _base(client, account, "5000.00", code=code)
    assert field_error(r, "deposit_base") == "该职工账户已销户，不能调整缴存基数"


def test_history_names_the_operator_who_changed(client, secondary):
    login_operator(client, secondary)
    code = send_code(client, secondary)
    r = client.post(
        "/employer/changes/address",
        data={"addr-address": "阿拉善右旗额肯呼都格镇 1 号", "addr-code": code},
    )
    assert r.status_code == 303
    [row] = employers.history(secondary.employer)
    assert row.operator_name == secondary.name and row.channel_label == "网上业务大厅"


def test_code_button_with_and_without_htmx(client, operator):
    login_operator(client, operator)
    r = client.post(
        "/employer/code/change", data={"next": "/employer/changes"}, headers={"HX-Request": "true"}
    )
    assert r.status_code == 200 and "验证码已发送至手机" in r.get_data(as_text=True)
    assert soup(r).select_one("h1") is None
    r = client.post("/employer/code/change", data={"next": "/employer/changes"})
    assert r.status_code == 303 and r.headers["Location"] == "/employer/changes"
    page = client.get("/employer/changes").get_data(as_text=True)
    assert "1 分钟后再重新获取" in page
