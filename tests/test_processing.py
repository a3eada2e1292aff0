"""Processing inbound cases (issue 7): the home-purchase withdrawal rule, approval (复核),
exactly-once payouts, and each item's happy path and refusals, at the service level."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from portal.models import (
    Account,
    Attachment,
    AuditLog,
    BankTransfer,
    CaseEvent,
    CasePayout,
    Certificate,
    CertificateRequest,
    ChangeRecord,
    Depositor,
    DepositRecord,
    Employer,
    EmployerOperator,
    Loan,
    Payout,
    ProxyCase,
    Setting,
    SmsMessage,
)
from portal.rules.ids import org_code_check_char, uscc_check_char
from portal.services import processing, settlement
from portal.storage import get_storage
from tests.conftest import TODAY, pdf_text
from tests.processing_helpers import (
    CENTER,
    account_of,
    depositors,
    inbound,
    prepare_and_approve,
    purchase,
    second_handler,  # noqa: F401 - fixture
    staff,
    step_code,
    verify_url,
)

pytestmark = pytest.mark.usefixtures("second_handler")

D = Decimal


# --- the pure rule ------------------------------------------------------------------------


def allowance(**kw):
    values = dict(
        balance=D("50000.00"),
        price=D("300000.00"),
        withdrawn=D("0.00"),
        purchase_date=date(2026, 10, 1),
        today=TODAY,
        window_months=12,
    )
    values.update(kw)
    return processing.purchase_allowance(**values)


def test_allowance_is_the_smaller_of_balance_and_price_left():
    assert allowance().allowed == D("50000.00")
    a = allowance(balance=D("80000.00"), price=D("100000.00"), withdrawn=D("60000.00"))
    assert a.ok and a.room == D("40000.00") and a.allowed == D("40000.00")
    assert a.amount == a.allowed  # no request: the maximum


def test_allowance_window_includes_its_last_day_and_refuses_after():
    assert allowance(purchase_date=date(2025, 11, 25)).ok  # 12 months ago today
    late = allowance(purchase_date=date(2025, 11, 24))
    assert late.reasons == (
        "购房提取须在购房之日起 12 个月内申请（购房日期 2025年11月24日，"
        "申请期限至 2026年11月24日），已超过期限",
    )


def test_allowance_refusals_are_exact():
    assert allowance(purchase_date=TODAY + timedelta(days=1)).reasons == (
        "购房日期（2026年11月26日）不能晚于今天",
    )
    assert allowance(balance=D("0.00")).reasons == ("职工账户余额为零，无可提取金额",)
    full = allowance(withdrawn=D("300000.00"))
    assert full.reasons == (
        "该房产已累计提取 300,000.00 元，已达到房屋总价 300,000.00 元，不能再提取",
    )
    over = allowance(requested=D("50000.01"))
    assert over.reasons == (
        "申请提取金额 50,000.01 元超过可提取额度 50,000.00 元（不超过账户余额 50,000.00 元，"
        "且不超过房屋总价减去已提取金额后的 300,000.00 元）",
    )
    assert allowance(requested=D("1234.56")).amount == D("1234.56")


# --- home-purchase withdrawal -------------------------------------------------------------


@pytest.fixture
def person():
    return depositors()[0]


def test_prepare_records_the_computation_for_approval(person):
    case = inbound("purchase_withdrawal", person)
    balance = account_of(person).balance
    record = processing.prepare_purchase(staff("handler"), case.id, purchase(), TODAY)
    assert record.status == "pending_approval" and record.kind == "purchase"
    assert record.amount == min(balance, D("300000.00"))
    assert record.prepared_by.username == "handler" and record.approved_by_id is None
    assert (
        record.detail["window_end"] == (TODAY - timedelta(days=40)).replace(year=2027).isoformat()
    )
    assert Payout.select().where(Payout.proxy_case_id == case.id).count() == 0  # nothing paid
    event = CaseEvent.select().where(CaseEvent.case == case).order_by(CaseEvent.id.desc()).get()
    assert event.action == "prepare" and event.actor.username == "handler"
    assert (
        AuditLog.select()
        .where((AuditLog.action == "case_payout.prepared") & (AuditLog.target_id == str(record.id)))
        .exists()
    )


def test_prepare_refuses_with_every_reason(person):
    case = inbound("purchase_withdrawal", person)
    Account.update(status="冻结").where(Account.depositor == person).execute()
    data = purchase(purchase_date=TODAY - timedelta(days=500))
    with pytest.raises(processing.Refused) as exc:
        processing.prepare_purchase(staff("handler"), case.id, data, TODAY)
    assert exc.value.reasons[0] == "职工住房公积金账户已冻结，暂不能办理提取，请核实冻结原因"
    assert any("个月内申请" in r for r in exc.value.reasons)
    assert not CasePayout.select().where(CasePayout.case == case).exists()


def test_closed_account_and_excess_amount_are_refused(person):
    case = inbound("purchase_withdrawal", person)
    balance = account_of(person).balance
    with pytest.raises(processing.Refused) as exc:
        processing.prepare_purchase(
            staff("handler"), case.id, purchase(amount=balance + D("0.01")), TODAY
        )
    assert "超过可提取额度" in exc.value.message
    Account.update(status="销户").where(Account.depositor == person).execute()
    with pytest.raises(processing.Refused, match="账户已销户"):
        processing.prepare_purchase(staff("handler"), case.id, purchase(), TODAY)


def test_an_outstanding_hpf_loan_does_not_block_a_purchase_withdrawal():
    borrower = next(
        d
        for d in depositors(with_loan=None)
        if Loan.select().where((Loan.depositor == d) & (Loan.status == "active")).exists()
    )
    case = inbound("purchase_withdrawal", borrower)
    record = processing.prepare_purchase(staff("handler"), case.id, purchase(), TODAY)
    assert record.status == "pending_approval"


def test_bad_input_names_the_field(person):
    case = inbound("purchase_withdrawal", person)
    with pytest.raises(processing.Refused) as exc:
        processing.prepare_purchase(
            staff("handler"), case.id, purchase(spouse_name="某某", spouse_id_no="123"), TODAY
        )
    assert exc.value.field == "spouse_id_no"
    with pytest.raises(processing.Refused) as exc:
        processing.parse_co_owners("张三 110105198001010016\n李四")
    assert exc.value.field == "co_owners" and "第 2 行" in exc.value.message


def test_only_the_assignee_processes_and_only_in_processing(person):
    case = inbound("purchase_withdrawal", person)
    with pytest.raises(processing.Refused, match="只有其经办人可以办理"):
        processing.prepare_purchase(staff("handler3"), case.id, purchase(), TODAY)
    with pytest.raises(processing.NotFound):  # another department's handler
        processing.prepare_purchase(staff("handler2"), case.id, purchase(), TODAY)
    done = inbound("purchase_withdrawal", person, state="done")
    with pytest.raises(processing.Refused, match="只有“办理中”的办件可以办理"):
        processing.prepare_purchase(staff("handler"), done.id, purchase(), TODAY)


def test_second_preparation_while_one_is_open_is_refused(person):
    case = inbound("purchase_withdrawal", person)
    processing.prepare_purchase(staff("handler"), case.id, purchase(), TODAY)
    with pytest.raises(processing.Refused, match="不能重复经办"):
        processing.prepare_purchase(staff("handler"), case.id, purchase(), TODAY)


# --- approval and the payout ----------------------------------------------------------------


def test_nobody_approves_their_own_payout(person):
    case = inbound("purchase_withdrawal", person)
    record = processing.prepare_purchase(staff("handler"), case.id, purchase(), TODAY)
    with pytest.raises(processing.Refused, match="不能复核自己经办的支付"):
        processing.approve(staff("handler"), record.id, record.version, TODAY, CENTER, verify_url)
    with pytest.raises(processing.NotFound):  # handler2 is in another department
        processing.approve(staff("handler2"), record.id, record.version, TODAY, CENTER, verify_url)
    assert CasePayout.get_by_id(record.id).status == "pending_approval"
    assert not Payout.select().where(Payout.proxy_case_id == case.id).exists()


def test_approval_pays_once_and_the_handler_finishes(person):
    case = inbound("purchase_withdrawal", person)
    balance = account_of(person).balance
    amount = min(balance, D("300000.00"))
    record = prepare_and_approve(case)
    assert record.status == "paid" and record.approved_by.username == "handler3"
    payout = Payout.get_by_id(record.payout_id)
    assert payout.status == "confirmed" and payout.kind == "purchase"
    assert (
        payout.idempotency_key == f"case:{record.id}" and payout.approved_by.username == "handler3"
    )
    assert BankTransfer.get(BankTransfer.idempotency_key == payout.idempotency_key).amount == amount
    assert account_of(person).balance == balance - amount
    line = (
        DepositRecord.select()
        .where(DepositRecord.account == account_of(person))
        .order_by(DepositRecord.id.desc())
        .get()
    )
    assert line.kind == "提取" and line.amount == -amount and "购房提取" in line.memo
    # approving again (a second click) pays nothing more
    again = processing.approve(staff("handler3"), record.id, None, TODAY, CENTER, verify_url)
    assert again.payout_id == record.payout_id
    assert Payout.select().where(Payout.proxy_case_id == case.id).count() == 1
    assert account_of(person).balance == balance - amount
    # the receipt is attached; the case is still the handler's to finish
    receipt = Attachment.get((Attachment.case == case) & (Attachment.kind == "result"))
    text = pdf_text(get_storage().get(receipt.storage_key, receipt.sha256))
    assert "住房公积金提取凭证（购房提取）" in text and f"{amount:,.2f}" in text
    assert person.resident_id not in text  # masked on a receipt
    assert ProxyCase.get_by_id(case.id).state == "processing"
    done = processing.finish(
        staff("handler"), case.id, ProxyCase.get_by_id(case.id).version, TODAY, CENTER, verify_url
    )
    assert done.state == "done" and done.result["outcome"] == "办结"
    assert f"购房提取 {amount:,.2f} 元已支付" in done.result["note"]
    move = CaseEvent.select().where((CaseEvent.case == case) & (CaseEvent.action == "move")).get()
    assert (move.from_state, move.to_state) == ("processing", "done")


def test_another_approver_after_approval_is_told(person):
    case = inbound("purchase_withdrawal", person)
    record = prepare_and_approve(case)
    from portal.models import StaffUser

    fourth = StaffUser.create(
        username="handler4", name="冯雪", role="handler", department=staff("handler").department
    )
    with pytest.raises(processing.Refused, match="已支付"):
        processing.approve(fourth, record.id, None, TODAY, CENTER, verify_url)


def test_refusal_by_the_approver_lets_the_handler_prepare_again(person):
    case = inbound("purchase_withdrawal", person)
    record = processing.prepare_purchase(staff("handler"), case.id, purchase(), TODAY)
    with pytest.raises(processing.Refused, match="请填写退回原因"):
        processing.refuse(staff("handler3"), record.id, " ")
    refused = processing.refuse(staff("handler3"), record.id, "购房合同编号与扫描件不一致")
    assert refused.status == "refused" and refused.refused_by.username == "handler3"
    again = processing.prepare_purchase(staff("handler"), case.id, purchase(), TODAY)
    assert again.status == "pending_approval"


def test_the_preparer_can_withdraw_before_approval(person):
    case = inbound("purchase_withdrawal", person)
    record = processing.prepare_purchase(staff("handler"), case.id, purchase(), TODAY)
    with pytest.raises(processing.Refused, match="只有经办人本人可以撤回"):
        processing.withdraw_prepared(staff("handler3"), record.id)
    assert processing.withdraw_prepared(staff("handler"), record.id).status == "refused"


def test_approval_rechecks_the_rules(person):
    case = inbound("purchase_withdrawal", person)
    record = processing.prepare_purchase(staff("handler"), case.id, purchase(), TODAY)
    Account.update(status="冻结").where(Account.depositor == person).execute()
    with pytest.raises(processing.Refused) as exc:
        processing.approve(staff("handler3"), record.id, record.version, TODAY, CENTER, verify_url)
    assert exc.value.reasons[0] == "复核时重新核算未通过："
    assert CasePayout.get_by_id(record.id).status == "pending_approval"


def test_a_bank_refusal_marks_the_record_failed(person, monkeypatch):
    from portal.services import bank

    case = inbound("purchase_withdrawal", person)
    record = processing.prepare_purchase(staff("handler"), case.id, purchase(), TODAY)

    def refuse(*_a, **_k):
        raise bank.BankError("收款账户状态异常")

    monkeypatch.setattr(bank.bank(), "pay_out", refuse)
    balance = account_of(person).balance
    with pytest.raises(processing.Refused, match="支付未成功"):
        processing.approve(staff("handler3"), record.id, record.version, TODAY, CENTER, verify_url)
    assert CasePayout.get_by_id(record.id).status == "failed"
    assert account_of(person).balance == balance
    # a failed payout does not block a new preparation
    assert processing.prepare_purchase(staff("handler"), case.id, purchase(), TODAY).id != record.id


# --- the shared-property cap --------------------------------------------------------------


def test_spouses_share_one_cap_for_the_same_property():
    husband, wife = depositors()[:2]
    price = D("300000.00")
    first = prepare_and_approve(
        inbound("purchase_withdrawal", husband),
        purchase(price=price, spouse_name=wife.name, spouse_id_no=wife.resident_id),
    )
    assert first.status == "paid"
    Account.update(balance=D("400000.00")).where(Account.depositor == wife).execute()
    case = inbound("purchase_withdrawal", wife)
    data = purchase(price=price, spouse_name=husband.name, spouse_id_no=husband.resident_id)
    quote = processing.quote_purchase(staff("handler"), case.id, data, TODAY)
    assert quote.withdrawn == first.amount
    assert quote.allowance.allowed == price - first.amount
    assert [p.relation for p in quote.priors] == ["配偶"]
    with pytest.raises(processing.Refused, match="超过可提取额度"):
        processing.prepare_purchase(
            staff("handler"), case.id, purchase(**{**data.__dict__, "amount": price}), TODAY
        )
    second = prepare_and_approve(case, data)
    assert second.amount == price - first.amount
    third = inbound("purchase_withdrawal", husband)
    with pytest.raises(processing.Refused, match="已达到房屋总价"):
        processing.prepare_purchase(
            staff("handler"),
            third.id,
            purchase(price=price, spouse_name=wife.name, spouse_id_no=wife.resident_id),
            TODAY,
        )


def test_the_same_address_under_another_number_is_the_same_property():
    husband, wife = depositors()[:2]
    prepare_and_approve(
        inbound("purchase_withdrawal", husband),
        purchase(price=D("20000.00"), spouse_name=wife.name, spouse_id_no=wife.resident_id),
    )
    case = inbound("purchase_withdrawal", wife)
    quote = processing.quote_purchase(
        staff("handler"),
        case.id,
        purchase(
            property_no="HT-OTHER-NUMBER-1",
            price=D("20000.00"),
            spouse_name=husband.name,
            spouse_id_no=husband.resident_id,
        ),
        TODAY,
    )
    assert not quote.ok and "已达到房屋总价" in quote.reasons[0]


def test_other_co_owners_count_only_when_the_setting_says_so():
    owner, other = depositors()[:2]
    prepare_and_approve(inbound("purchase_withdrawal", owner), purchase(price=D("30000.00")))
    case = inbound("purchase_withdrawal", other)
    data = purchase(price=D("30000.00"), co_owners=[(owner.name, owner.resident_id)])
    quote = processing.quote_purchase(staff("handler"), case.id, data, TODAY)
    assert quote.withdrawn == 0 and not quote.co_owners_counted
    Setting.create(key="purchase_withdrawal_co_owners", value="1", effective_from=TODAY)
    quote = processing.quote_purchase(staff("handler"), case.id, data, TODAY)
    assert quote.co_owners_counted and quote.withdrawn > 0
    assert [p.relation for p in quote.priors] == ["共有人"]


def test_the_window_comes_from_the_settings(person):
    case = inbound("purchase_withdrawal", person)
    data = purchase(purchase_date=TODAY - timedelta(days=200))
    assert processing.quote_purchase(staff("handler"), case.id, data, TODAY).ok
    Setting.create(key="purchase_withdrawal_months", value="6", effective_from=TODAY)
    quote = processing.quote_purchase(staff("handler"), case.id, data, TODAY)
    assert "6 个月内申请" in quote.reasons[0]


# --- 不予办理 -----------------------------------------------------------------------------


def test_decline_attaches_the_notice_and_ends_the_case(person):
    case = inbound("purchase_withdrawal", person)
    record = processing.prepare_purchase(staff("handler"), case.id, purchase(), TODAY)
    reason = "购房日期超过 12 个月，已超过申请期限"
    done = processing.decline(staff("handler"), case.id, case.version, reason, TODAY, CENTER)
    assert done.state == "done" and done.result == {"outcome": "不予办理", "note": reason}
    assert CasePayout.get_by_id(record.id).status == "refused"
    notice = Attachment.get((Attachment.case == case) & (Attachment.kind == "result"))
    text = pdf_text(get_storage().get(notice.storage_key, notice.sha256))
    assert "不予办理告知书" in text and "已超过申请期限" in text and CENTER in text


def test_a_paid_case_cannot_be_declined(person):
    case = inbound("purchase_withdrawal", person)
    prepare_and_approve(case)
    with pytest.raises(processing.Refused, match="不能不予办理"):
        processing.decline(
            staff("handler"), case.id, ProxyCase.get_by_id(case.id).version, "x", TODAY, CENTER
        )


# --- retirement withdrawal and early repayment received as cases ---------------------------


def retired_person():
    from portal.services import payouts

    for d in (
        Depositor.select().join(Account).where(Account.status == "正常").order_by(Depositor.id)
    ):
        if payouts.retirement_quote(d, TODAY).eligible and d.department_id:
            return d
    pytest.skip("no eligible retired depositor in the demo")


def test_retirement_by_proxy_pays_the_whole_balance_after_approval():
    from portal.models import StaffUser

    person = retired_person()
    dept = person.department
    preparer, approver = (
        StaffUser.create(username=f"rt_{n}", name=name, role="handler", department=dept)
        for n, name in (("a", "甲经办"), ("b", "乙复核"))
    )
    case = inbound("retirement_withdrawal", person, dept=dept.code, assignee=preparer.username)
    record = processing.prepare_retirement(preparer, case.id, "file", TODAY)
    assert record.kind == "retirement" and record.status == "pending_approval"
    with pytest.raises(processing.Refused, match="不能复核自己经办的支付"):
        processing.approve(preparer, record.id, None, TODAY, CENTER, verify_url)
    paid = processing.approve(approver, record.id, None, TODAY, CENTER, verify_url)
    assert paid.status == "paid"
    account = account_of(person)
    assert account.status == "销户" and account.balance == 0
    receipt = Certificate.get(
        (Certificate.case == case) & (Certificate.kind == "retirement_receipt")
    )
    text = pdf_text(get_storage().get(receipt.storage_key, receipt.sha256))
    assert "正常退休提取" in text and "跨省通办" in text and "网上业务大厅" not in text
    done = processing.finish(preparer, case.id, None, TODAY, CENTER, verify_url)
    assert done.state == "done" and "账户已销户" in done.result["note"]


def test_retirement_by_proxy_is_refused_for_someone_not_retired():
    young = next(d for d in depositors() if d.birth_date.year >= 1985)
    case = inbound("retirement_withdrawal", young)
    with pytest.raises(processing.Refused, match="尚未达到法定退休年龄"):
        processing.prepare_retirement(staff("handler"), case.id, "file", TODAY)


def test_early_repayment_by_proxy_settles_the_loan_after_approval(person):
    loan = Loan.create(
        contract_no=f"PRX{person.id:06d}",
        loan_account_no=f"PRXA{person.id:06d}",
        depositor=person,
        amount=D("1000.00"),
        term_months=12,
        annual_rate=D("0.026"),
        method="annuity",
        disbursed_on=TODAY - timedelta(days=10),
        first_due_on=TODAY + timedelta(days=20),
        outstanding=D("1000.00"),
    )
    case = inbound("early_repayment", person, application={"loan_contract_no": loan.contract_no})
    record = processing.prepare_payoff(staff("handler"), case.id, loan.id, "file", TODAY)
    assert record.kind == "loan_offset" and record.amount > D("1000.00")
    paid = processing.approve(staff("handler3"), record.id, None, TODAY, CENTER, verify_url)
    assert paid.status == "paid"
    loan = Loan.get_by_id(loan.id)
    assert loan.status == "settled" and loan.settled_kind == "early" and loan.outstanding == 0
    done = processing.finish(staff("handler"), case.id, None, TODAY, CENTER, verify_url)
    assert done.state == "done" and "已提前还清" in done.result["note"]


# --- employer registration -----------------------------------------------------------------


def credit_code(seq: int) -> str:
    body = f"MA7{seq:05d}"
    first17 = f"91152921{body}{org_code_check_char(body)}"
    return first17 + uscc_check_char(first17)


def employer_input(code: str, **kw) -> processing.EmployerInput:
    values = dict(
        name="阿拉善盟测试沙产业有限公司",
        credit_code=code,
        address="阿拉善左旗巴彦浩特镇新华街 18 号",
        contact_name="",
        contact_phone="",
        employer_ratio=10,
        employee_ratio=10,
        operator_name="韩梅",
        operator_resident_id="110105198001010016",
        operator_phone="13912345678",
    )
    values.update(kw)
    return processing.EmployerInput(**values)


def test_employer_registration_creates_the_employer_and_finishes():
    code = credit_code(101)
    case = inbound("employer_registration", None, application={"credit_code": code})
    done = processing.register_employer(
        staff("handler"), case.id, case.version, employer_input(code), TODAY, CENTER
    )
    employer = Employer.get(Employer.credit_code == code)
    assert done.state == "done" and done.employer_id == employer.id
    assert employer.employer_ratio == 10 and employer.department.code == "AZQ"
    operator = EmployerOperator.get(EmployerOperator.employer == employer)
    assert operator.is_primary and operator.password_hash is None
    assert SmsMessage.select().where(SmsMessage.phone == "13912345678").exists()
    notice = Attachment.get((Attachment.case == case) & (Attachment.kind == "result"))
    text = pdf_text(get_storage().get(notice.storage_key, notice.sha256))
    assert "单位登记开户通知书" in text and employer.account_no in text
    assert "110105198001010016" not in text


def test_employer_registration_refuses_duplicates_and_bad_ratios():
    existing = Employer.select().order_by(Employer.id).first()
    case = inbound("employer_registration", None)
    with pytest.raises(processing.Refused) as exc:
        processing.register_employer(
            staff("handler"), case.id, None, employer_input(existing.credit_code), TODAY, CENTER
        )
    assert exc.value.field == "credit_code" and "不能重复开户" in exc.value.message
    with pytest.raises(processing.Refused) as exc:
        processing.register_employer(
            staff("handler"),
            case.id,
            None,
            employer_input(credit_code(102), employer_ratio=15),
            TODAY,
            CENTER,
        )
    assert exc.value.field == "employer_ratio"
    assert ProxyCase.get_by_id(case.id).state == "processing"


# --- the loan-settlement certificate item ------------------------------------------------


def test_settlement_case_goes_to_the_official_and_comes_back_attached():
    loan = Loan.select().where(Loan.status == "settled").order_by(Loan.id).first()
    CertificateRequest.delete().where(CertificateRequest.loan == loan).execute()
    person = Depositor.get_by_id(loan.depositor_id)
    case = inbound(
        "settlement_certificate",
        person,
        dept=person.department.code,
        assignee="handler" if person.department.code == "AZQ" else "handler2",
    )
    handler = case.assignee
    request = processing.request_certificate(handler, case.id, loan.id, TODAY)
    assert request.source == "case" and request.status == "pending" and request.case_id == case.id
    with pytest.raises(processing.Refused, match="证明尚未签发"):
        processing.finish(handler, case.id, None, TODAY, CENTER, verify_url)
    official = staff("official")
    certificate = settlement.issue(
        official, request.id, step_code(official), TODAY, verify_url, CENTER
    )
    attachment = Attachment.get((Attachment.case == case) & (Attachment.kind == "result"))
    assert attachment.sha256 == certificate.sha256
    done = processing.finish(handler, case.id, None, TODAY, CENTER, verify_url)
    assert done.state == "done" and certificate.number in done.result["note"]


def test_settlement_case_refuses_an_unsettled_or_foreign_loan(person):
    case = inbound("settlement_certificate", person)
    active = Loan.select().where(Loan.status == "active").first()
    with pytest.raises(processing.Refused, match="请选择该职工作为借款人"):
        processing.request_certificate(staff("handler"), case.id, active.id, TODAY)
    own = Loan.create(
        contract_no=f"PRS{person.id:06d}",
        loan_account_no=f"PRSA{person.id:06d}",
        depositor=person,
        amount=D("1000.00"),
        term_months=12,
        annual_rate=D("0.026"),
        method="annuity",
        disbursed_on=TODAY - timedelta(days=10),
        first_due_on=TODAY + timedelta(days=20),
        outstanding=D("1000.00"),
    )
    with pytest.raises(processing.Refused, match="尚未结清"):
        processing.request_certificate(staff("handler"), case.id, own.id, TODAY)


# --- online items received as cases --------------------------------------------------------


def test_query_case_gets_the_information_pdf(person):
    case = inbound("query", person, application={"scope": "缴存和贷款信息"})
    done = processing.process_query(staff("handler"), case.id, case.version, TODAY, CENTER)
    assert done.state == "done"
    a = Attachment.get((Attachment.case == case) & (Attachment.kind == "result"))
    text = pdf_text(get_storage().get(a.storage_key, a.sha256))
    account = account_of(person)
    assert "个人住房公积金缴存贷款信息查询结果" in text
    assert account.account_no in text and f"{account.balance:,.2f}" in text
    assert "贷款信息" in text and person.resident_id not in text


def test_usage_certificate_case_is_verifiable(client, person):
    case = inbound("usage_certificate", person, application={"addressee": "北京住房公积金管理中心"})
    done = processing.process_usage(
        staff("handler"), case.id, case.version, "北京住房公积金管理中心", TODAY, CENTER, verify_url
    )
    assert done.state == "done"
    certificate = Certificate.get((Certificate.case == case) & (Certificate.kind == "usage"))
    text = pdf_text(get_storage().get(certificate.storage_key, certificate.sha256))
    assert "住房公积金缴存使用证明" in text and person.resident_id in text  # the holder's PDF
    page = client.get(f"/verify/{certificate.verify_code}").get_data(as_text=True)
    assert "真实有效" in page and person.resident_id not in page


def test_individual_change_case_records_history(person):
    case = inbound("individual_change", person)
    data = processing.ChangeInput(phone="13712345678", address="阿拉善左旗巴彦浩特镇新华街 1 号")
    done = processing.process_individual_change(
        staff("handler"), case.id, case.version, data, TODAY, CENTER
    )
    assert done.state == "done" and "手机号码" in done.result["note"]
    fresh = Depositor.get_by_id(person.id)
    assert fresh.phone == "13712345678" and fresh.address.startswith("阿拉善左旗巴彦浩特镇新华街")
    records = ChangeRecord.select().where(
        (ChangeRecord.subject_type == "depositor") & (ChangeRecord.subject_id == person.id)
    )
    assert {r.channel for r in records} == {"case"}
    assert SmsMessage.select().where(SmsMessage.phone == "13712345678").exists()
    with pytest.raises(processing.Refused):
        processing.process_individual_change(
            staff("handler"), case.id, None, data, TODAY, CENTER
        )  # the case is done now


def test_individual_change_refuses_a_bad_card(person):
    case = inbound("individual_change", person)
    with pytest.raises(processing.Refused) as exc:
        processing.process_individual_change(
            staff("handler"),
            case.id,
            None,
            processing.ChangeInput(bank_card="6222021234567890123", bank_name="中国银行"),
            TODAY,
            CENTER,
        )
    assert exc.value.field == "bank_card"


def test_employer_change_case_schedules_ratios():
    employer = Employer.select().where(Employer.employer_ratio == 12).order_by(Employer.id).first()
    case = inbound("employer_change", None, application={"credit_code": employer.credit_code})
    data = processing.EmployerChangeInput(
        contact_name="周全", employer_ratio="8", employee_ratio="8", effective_from="2027-01"
    )
    done = processing.process_employer_change(
        staff("handler"), case.id, case.version, data, TODAY, CENTER
    )
    assert done.state == "done"
    fresh = Employer.get_by_id(employer.id)
    assert fresh.contact_name == "周全" and fresh.employer_ratio == 12  # from 2027-01
    scheduled = ChangeRecord.get(
        (ChangeRecord.subject_id == employer.id)
        & (ChangeRecord.field == "employer_ratio")
        & (ChangeRecord.status == "scheduled")
    )
    assert scheduled.channel == "case" and scheduled.effective_from == "2027-01"


@pytest.mark.parametrize("bank_paid", [True, False], ids=["bank-paid", "bank-lost"])
def test_a_crash_after_approval_is_reconciled(person, monkeypatch, bank_paid):
    """The approval recorded the payout but the process died before the bank answered:
    ``payouts.reconcile`` completes it (effects applied once) or reverses it."""
    from portal.services import bank, payouts

    case = inbound("purchase_withdrawal", person)
    record = processing.prepare_purchase(staff("handler"), case.id, purchase(), TODAY)
    balance = account_of(person).balance

    def unavailable(*_a, **_k):
        raise bank.BankUnavailable("timeout")

    monkeypatch.setattr(bank.bank(), "pay_out", unavailable)
    with pytest.raises(processing.Refused, match="已复核"):
        processing.approve(staff("handler3"), record.id, None, TODAY, CENTER, verify_url)
    monkeypatch.undo()
    payout = Payout.get_by_id(CasePayout.get_by_id(record.id).payout_id)
    assert payout.status == "pending" and account_of(person).balance == balance
    if bank_paid:
        bank.bank().pay_out(payout.idempotency_key, payout.bank_card, payout.amount)
    result = payouts.reconcile(older_than_seconds=0, account=account_of(person))
    assert (result.confirmed, result.reversed) == ((1, 0) if bank_paid else (0, 1))
    view = processing.panel(staff("handler"), case.id, TODAY)
    status = view.payouts[0].record.status
    if bank_paid:
        assert status == "paid" and account_of(person).balance == balance - payout.amount
        assert view.finish_ready
    else:
        assert status == "failed" and account_of(person).balance == balance
        assert view.open_payout is None  # the handler may prepare again


# --- identifiers at rest ------------------------------------------------------------------


def test_the_payees_card_and_the_household_ids_are_encrypted_at_rest():
    """What a handler records on a purchase withdrawal (the payee's card, the spouse's and the
    co-owners' resident IDs) is stored as ciphertext, and reads back as entered."""
    husband, wife, other = depositors()[:3]
    case = inbound("purchase_withdrawal", husband)
    data = purchase(
        spouse_name=wife.name,
        spouse_id_no=wife.resident_id,
        co_owners=[(other.name, other.resident_id)],
    )
    record = processing.prepare_purchase(staff("handler"), case.id, data, TODAY)
    card, spouse, owners = (
        CasePayout.select(
            CasePayout.bank_card.cast("TEXT"),  # the stored text, not the field's conversion
            CasePayout.spouse_id_no.cast("TEXT"),
            CasePayout.co_owners.cast("TEXT"),
        )
        .where(CasePayout.id == record.id)
        .tuples()
        .get()
    )
    assert husband.bank_card and husband.bank_card not in card
    assert wife.resident_id not in spouse
    assert other.resident_id not in owners and other.name not in owners
    fresh = CasePayout.get_by_id(record.id)
    assert fresh.bank_card == husband.bank_card
    assert fresh.spouse_id_no == wife.resident_id
    assert fresh.co_owners == [{"id_no": other.resident_id, "name": other.name}]
