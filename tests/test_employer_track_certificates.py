"""Registration tracking without login (receipt number + credit code) and the employer
deposit certificate (单位缴存证明) with its public verification."""

from __future__ import annotations

import pytest

from portal.models import AuditLog, Certificate, ProxyCase
from portal.rules.ids import mask_resident_id
from portal.services import employer_certificates, employers
from tests import employer_helpers as helpers
from tests.conftest import TODAY, login_operator, pdf_text
from tests.employer_helpers import soup

fixed_today = helpers.fixed_today  # fixture
foreign_operator = helpers.foreign_operator  # fixture
pytestmark = pytest.mark.usefixtures("fixed_today")


@pytest.fixture
def registration_case():
    return (
        ProxyCase.select()
        .where(ProxyCase.item == "employer_registration")
        .order_by(ProxyCase.id)
        .first()
    )


def _track(client, receipt_no, credit_code):
    return client.post(
        "/employer/track", data={"receipt_no": receipt_no, "credit_code": credit_code}
    )


def test_track_registration_by_receipt_and_credit_code(client, registration_case):
    case = registration_case
    r = client.get("/employer/track")
    assert r.status_code == 200 and soup(r).select_one("h1").get_text() == "单位登记开户进度查询"
    r = _track(client, case.receipt_no.lower(), case.application["credit_code"])
    assert r.status_code == 200, r.get_data(as_text=True)[:2000]
    page = soup(r)
    assert page.select_one("#case-h").get_text() == "住房公积金单位登记开户"
    assert case.receipt_no in page.get_text()
    assert len(page.select(".timeline li")) >= 1
    html = r.get_data(as_text=True)
    assert case.applicant_id_no not in html and mask_resident_id(case.applicant_id_no) in html


def test_track_shows_the_account_once_registered(client, registration_case):
    case = registration_case
    employer = employers.register_employer(
        name=case.application["employer_name"],
        credit_code=case.application["credit_code"],
        address=case.application["employer_address"],
        operator_name=case.applicant_name,
        operator_resident_id=case.applicant_id_no,
        operator_phone="13600004444",
        today=TODAY,
        actor="staff:handler",
        case=case,
    )
    r = _track(client, case.receipt_no, case.application["credit_code"])
    done = soup(r).select_one(".registration-done")
    assert done is not None and employer.account_no in done.get_text()


def test_track_wrong_pairs_are_not_found_and_rate_limited(client, registration_case, operator):
    case = registration_case
    r = _track(client, case.receipt_no, operator.employer.credit_code)
    assert r.status_code == 404 and "未查询到单位登记开户办件" in r.get_data(as_text=True)
    other = ProxyCase.select().where(ProxyCase.item != "employer_registration").first()
    assert _track(client, other.receipt_no, case.application["credit_code"]).status_code == 404
    r = _track(client, case.receipt_no, "not-a-code")
    assert r.status_code == 422 and "统一社会信用代码不正确" in r.get_data(as_text=True)
    statuses = [
        _track(client, case.receipt_no, operator.employer.credit_code).status_code
        for _ in range(10)
    ]
    assert statuses[-1] == 429
    # even the right pair is refused while blocked
    assert _track(client, case.receipt_no, case.application["credit_code"]).status_code == 429


def test_employer_certificate_pdf_and_verification(client, operator):
    login_operator(client, operator)
    r = client.post("/employer/certificates", data={"addressee": "阿拉善盟公共资源交易中心"})
    assert r.status_code == 303
    certificate = Certificate.select().order_by(Certificate.id.desc()).first()
    assert (
        certificate.kind == "employer_deposit" and certificate.employer_id == operator.employer_id
    )
    assert r.headers["Location"] == f"/employer/certificates/{certificate.id}"
    page = soup(client.get(r.headers["Location"]))
    assert page.select_one("h1").get_text() == "单位住房公积金缴存证明"
    pdf = client.get(f"/employer/certificates/{certificate.id}.pdf")
    assert pdf.status_code == 200 and pdf.headers["Content-Type"] == "application/pdf"
    text = pdf_text(pdf.data)
    employer = operator.employer
    for expected in (
        "单位住房公积金缴存证明",
        employer.name,
        employer.credit_code,
        employer.account_no,
        "阿拉善盟公共资源交易中心",
        "无欠缴",
        certificate.number,
    ):
        assert expected in text
    assert (
        AuditLog.select()
        .where(
            (AuditLog.action == "certificate.issued") & (AuditLog.target_id == str(certificate.id))
        )
        .exists()
    )
    # the public verification shows masked data only
    v = client.get(f"/verify/{certificate.verify_code}")
    assert v.status_code == 200
    html = v.get_data(as_text=True)
    assert "单位住房公积金缴存证明" in html and "真实有效" in html
    assert employer.credit_code not in html and mask_resident_id(employer.credit_code) in html
    # listed on the certificates page
    listed = soup(client.get("/employer/certificates")).select(".cert-list .cert")
    assert len(listed) == 1 and certificate.number in listed[0].get_text()


def test_certificate_needs_an_addressee(client, operator):
    login_operator(client, operator)
    r = client.post("/employer/certificates", data={"addressee": ""})
    assert r.status_code == 422 and "此项必填" in r.get_data(as_text=True)
    assert not Certificate.select().where(Certificate.employer == operator.employer_id).exists()


def test_another_employers_certificate_is_not_found(client, operator, foreign_operator):
    certificate = employer_certificates.issue(
        foreign_operator, "某单位", TODAY, lambda code: f"http://x/verify/{code}", "中心"
    )
    login_operator(client, operator)
    assert client.get(f"/employer/certificates/{certificate.id}").status_code == 404
    assert client.get(f"/employer/certificates/{certificate.id}.pdf").status_code == 404
    assert certificate.number not in client.get("/employer/certificates").get_data(as_text=True)


def test_arrears_are_stated(operator):
    from portal.models import Employer

    Employer.update(paid_up_to="2026-07").where(Employer.id == operator.employer_id).execute()
    facts = employer_certificates.facts(operator, TODAY)
    assert facts.arrears_text == "欠缴 3 个月"


def test_last_twelve_months_total(operator):
    from decimal import Decimal

    from portal.models import DepositRecord

    records = DepositRecord.select().where(
        (DepositRecord.employer == operator.employer_id)
        & DepositRecord.kind.in_(("汇缴", "补缴"))
        & (DepositRecord.period >= "2025-11")
    )
    expected = sum((r.amount for r in records), Decimal("0.00"))
    assert expected > 0
    assert employer_certificates.facts(operator, TODAY).last_year_total == expected
