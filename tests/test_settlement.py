"""Officials and the loan-settlement certificate (issue 7): the queue, issuing with a TOTP
step-up, the PDF, /verify, revocation, permissions and the auditor's view."""

from __future__ import annotations

from decimal import Decimal

import pytest

from portal.models import AuditLog, Certificate, CertificateRequest, Depositor, Loan, StaffUser
from portal.services import loans, settlement
from portal.storage import get_storage
from tests.conftest import TODAY, login_depositor, login_staff, pdf_text
from tests.processing_helpers import (
    CENTER,
    HX,
    later,
    second_handler,  # noqa: F401 - fixture
    settled_loan,
    soup,
    staff,
    step_code,
    verify_url,
    wrong_code,
)

pytestmark = pytest.mark.usefixtures("second_handler")


@pytest.fixture
def loan():
    return settled_loan()


@pytest.fixture
def borrower(loan):
    return Depositor.get_by_id(loan.depositor_id)


@pytest.fixture
def online_request(loan, borrower):
    return loans.request_settlement_certificate(borrower, loan.id)


@pytest.fixture
def official():
    return staff("official")


def issue(official, request, code=None):
    return settlement.issue(
        official, request.id, code or step_code(official), TODAY, verify_url, CENTER
    )


def test_the_queue_holds_online_case_and_counter_requests(official, online_request, loan):
    view = settlement.queue(official)
    row = next(r for r in view.rows if r.id == online_request.id)
    assert row.source_label == "网上申请" and row.loan_status == "已结清"
    assert row.borrower_id.count("*") == 10  # masked
    other = settled_loan(exclude=[loan])
    person = Depositor.get_by_id(other.depositor_id)
    counter = settlement.request_at_counter(official, other.contract_no, person.resident_id)
    assert counter.source == "counter" and counter.requested_by == "staff:official"
    assert any(r.id == counter.id for r in settlement.queue(official).rows)


def test_issue_makes_the_pdf_once_and_records_the_issuer(official, online_request, borrower, loan):
    certificate = issue(official, online_request)
    assert certificate.kind == "settlement" and certificate.issued_by_id == official.id
    assert certificate.loan_id == loan.id and certificate.sha256
    request = CertificateRequest.get_by_id(online_request.id)
    assert request.status == "issued" and request.certificate_id == certificate.id
    assert request.decided_by_id == official.id
    data = get_storage().get(certificate.storage_key, certificate.sha256)
    text = pdf_text(data)
    for expected in (
        "住房公积金个人住房贷款全部还清证明",
        borrower.name,
        borrower.resident_id,  # the holder's document carries the full ID
        loan.contract_no,
        loan.loan_account_no,
        f"{loan.amount:,.2f}",
        f"{loan.term_months} 个月",
        "放款日期",
        "结清日期",
        {"early": "提前还清", "normal": "正常还清"}[loan.settled_kind],
        "不动产登记证明号",
        "贷款银行",
        "解除抵押",
        certificate.number,
        "核验码",
        CENTER,
    ):
        assert expected.replace(" ", "") in text.replace(" ", ""), expected
    audit = AuditLog.get(
        (AuditLog.action == "certificate.issued") & (AuditLog.target_id == str(certificate.id))
    )
    assert audit.actor == "staff:official" and audit.detail["step_up"] == "totp"
    with pytest.raises(settlement.Refused, match="已签发"):
        issue(official, online_request, step_code(official, 2))
    assert Certificate.select().where(Certificate.loan == loan).count() == 1


def test_step_up_refuses_a_wrong_and_a_replayed_code(official, online_request, loan):
    with pytest.raises(settlement.Refused) as exc:
        issue(official, online_request, wrong_code(official))
    assert exc.value.field == "code" and "动态口令不正确" in str(exc.value)
    code = step_code(official)
    from portal.services import identity

    identity.verify_totp(StaffUser.get_by_id(official.id), code)  # used once already
    with pytest.raises(settlement.Refused, match="已使用"):
        issue(StaffUser.get_by_id(official.id), online_request, code)
    assert CertificateRequest.get_by_id(online_request.id).status == "pending"
    assert not Certificate.select().where(Certificate.loan == loan).exists()
    assert AuditLog.select().where(AuditLog.action == "staff.step_up_failed").count() >= 2


def test_issue_requires_the_loan_settled_on_the_record(official, online_request, loan):
    Loan.update(status="active", outstanding=Decimal("1000.00")).where(Loan.id == loan.id).execute()
    with pytest.raises(settlement.Refused, match="贷款尚未结清"):
        issue(official, online_request)


@pytest.mark.parametrize("username", ["handler", "clerk", "liaison", "admin", "auditor"])
def test_nobody_else_can_issue_or_revoke(username, online_request, official):
    user = staff(username)
    with pytest.raises(settlement.Forbidden):
        settlement.issue(user, online_request.id, "123456", TODAY, verify_url, CENTER)
    certificate = issue(official, online_request)
    with pytest.raises(settlement.Forbidden):
        settlement.revoke(user, certificate.id, "错误", "123456")


def test_revocation_shows_on_verify(client, official, online_request):
    certificate = issue(official, online_request, step_code(official, 0))
    page = client.get(f"/verify/{certificate.verify_code}")
    body = page.get_data(as_text=True)
    assert (
        page.status_code == 200
        and "真实有效" in body
        and "住房公积金个人住房贷款全部还清证明" in body
    )
    holder = Depositor.get_by_id(certificate.depositor_id)
    assert holder.resident_id not in body and holder.name not in body  # masked
    with pytest.raises(settlement.Refused, match="请填写撤销原因"):
        settlement.revoke(official, certificate.id, "", step_code(official, 1))
    revoked = settlement.revoke(
        official, certificate.id, "借款人信息登记有误", step_code(official, 1)
    )
    assert revoked.revoked_by_id == official.id and revoked.revoked_reason == "借款人信息登记有误"
    body = client.get(f"/verify/{certificate.verify_code}").get_data(as_text=True)
    assert "已撤销" in body and "不再具有证明效力" in body
    assert (
        AuditLog.select()
        .where(
            (AuditLog.action == "certificate.revoked") & (AuditLog.target_id == str(certificate.id))
        )
        .exists()
    )


def test_refusing_a_request_needs_a_reason(official, online_request):
    with pytest.raises(settlement.Refused):
        settlement.refuse(official, online_request.id, "  ")
    refused = settlement.refuse(official, online_request.id, "贷款台账与申请不符")
    assert refused.status == "refused" and refused.decided_by_id == official.id


def test_counter_request_checks_the_borrower(official, loan, borrower):
    with pytest.raises(settlement.Refused, match="不匹配"):
        settlement.request_at_counter(official, loan.contract_no, "110105198001010016")
    settlement.request_at_counter(staff("clerk"), loan.contract_no, borrower.resident_id)
    with pytest.raises(settlement.Refused, match="请勿重复申请"):
        settlement.request_at_counter(official, loan.contract_no, borrower.resident_id)


# --- the pages ----------------------------------------------------------------------------


def test_queue_page_with_and_without_htmx(client, online_request):
    login_staff(client, "official")
    page = soup(client.get("/staff/officials/"))
    assert page.select_one(f'a[href="/staff/officials/requests/{online_request.id}"]')
    r = client.get("/staff/officials/?status=issued", headers=HX)
    assert r.status_code == 200 and "<html" not in r.get_data(as_text=True)
    assert "HX-Request" in r.headers["Vary"]


@pytest.mark.parametrize(
    "username,status", [("handler", 403), ("clerk", 403), ("liaison", 403), ("admin", 403)]
)
def test_queue_page_access(client, username, status):
    login_staff(client, username)
    assert client.get("/staff/officials/").status_code == status


def test_issue_page_refuses_a_wrong_code_next_to_the_field(client, official, online_request):
    login_staff(client, "official")
    url = f"/staff/officials/requests/{online_request.id}/issue"
    r = client.post(url, data={"code": "12ab"}, headers=HX)
    assert r.status_code == 422 and soup(r).select_one("#code-error")
    r = client.post(url, data={"code": wrong_code(official)})
    assert r.status_code == 422
    assert "动态口令不正确" in soup(r).select_one("#code-error").get_text()
    assert CertificateRequest.get_by_id(online_request.id).status == "pending"


def test_issue_page_then_the_depositor_downloads(client, app, official, online_request, borrower):
    login_staff(client, "official")
    r = client.post(
        f"/staff/officials/requests/{online_request.id}/issue",
        data={"code": step_code(official)},
        headers=HX,
    )
    certificate = Certificate.get(Certificate.loan == online_request.loan_id)
    assert r.status_code == 200 and "已签发贷款结清证明" in soup(r).select_one(".flash").get_text()
    link = soup(r).select_one("#official-request dd a.mono")
    assert link["href"] == f"/staff/officials/certificates/{certificate.id}"
    pdf = client.get(f"/staff/officials/certificates/{certificate.id}.pdf")
    assert pdf.status_code == 200 and pdf.data == get_storage().get(certificate.storage_key)
    depositor_client = app.test_client()
    login_depositor(depositor_client, borrower)
    page = soup(depositor_client.get(f"/me/loans/{online_request.loan_id}"))
    link = page.select_one(f'a[href="/me/certificates/{certificate.id}.pdf"]')
    assert link is not None
    download = depositor_client.get(link["href"])
    assert download.status_code == 200 and borrower.resident_id in pdf_text(download.data)


def test_revoke_page_and_auditor_register(client, app, official, online_request):
    certificate = issue(official, online_request)
    official = later(official)
    login_staff(client, "official")
    url = f"/staff/officials/certificates/{certificate.id}/revoke"
    r = client.post(url, data={"reason": "", "code": step_code(official)})
    assert r.status_code == 422 and soup(r).select_one("#reason-error")
    r = client.post(url, data={"reason": "重复签发", "code": step_code(official)})
    assert r.status_code == 303
    auditor = app.test_client()
    login_staff(auditor, "auditor")
    page = soup(auditor.get("/staff/officials/certificates?revoked=1"))
    row = page.select_one(f'a[href="/staff/officials/certificates/{certificate.id}"]')
    assert row is not None and "已撤销" in page.get_text()
    detail = soup(auditor.get(f"/staff/officials/certificates/{certificate.id}"))
    assert (
        "重复签发" in detail.get_text() and detail.select_one("#official-certificate form") is None
    )  # read only
    assert auditor.get(f"/staff/officials/certificates/{certificate.id}.pdf").status_code == 403
    assert auditor.post(url, data={"reason": "x", "code": "123456"}).status_code == 403
    assert (
        auditor.post(
            f"/staff/officials/requests/{online_request.id}/issue", data={"code": "123456"}
        ).status_code
        == 403
    )
    audit = soup(auditor.get("/staff/audit/?action=certificate."))
    actions = {row.select("td")[3].get_text(strip=True) for row in audit.select("tr.audit-row")}
    assert {"certificate.issued", "certificate.revoked"} <= actions


def test_counter_page_for_clerks(client, loan, borrower):
    login_staff(client, "clerk")
    r = client.post(
        "/staff/officials/counter",
        data={"contract_no": loan.contract_no, "resident_id": "110105198001010016"},
    )
    assert r.status_code == 422 and "不匹配" in soup(r).select_one("#contract_no-error").get_text()
    r = client.post(
        "/staff/officials/counter",
        data={"contract_no": loan.contract_no, "resident_id": borrower.resident_id},
    )
    assert r.status_code == 303
    assert CertificateRequest.get(CertificateRequest.loan == loan).source == "counter"
