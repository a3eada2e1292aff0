"""The deposit-usage certificate: PDF content, stored once, own-only downloads, and the public
verification page (genuine / expired / revoked / unknown, masked, rate-limited)."""

from __future__ import annotations

import hashlib
import re
import subprocess
from datetime import timedelta

import pytest

from portal.models import Account, Certificate, Loan, utcnow
from portal.services import certificates
from portal.storage import get_storage
from tests.conftest import TODAY, login_depositor, pdf_text
from tests.hall_helpers import fixed_today, loan_of_kind, soup  # noqa: F401

pytestmark = pytest.mark.usefixtures("fixed_today")
CENTER = "北京住房公积金管理中心"


def _issue(client, depositor, addressee=CENTER):
    login_depositor(client, depositor)
    r = client.post("/me/certificates", data={"addressee": addressee})
    assert r.status_code == 303, r.get_data(as_text=True)[:400]
    certificate_id = int(re.search(r"/me/certificates/(\d+)$", r.headers["Location"]).group(1))
    return Certificate.get_by_id(certificate_id)


def test_issue_makes_a_stored_pdf_with_the_full_facts(client):
    loan = loan_of_kind("current")
    depositor = loan.depositor
    account = Account.get(Account.depositor == depositor)
    cert = _issue(client, depositor)
    assert cert.kind == "usage" and cert.addressee == CENTER
    assert cert.valid_until == TODAY.replace(month=1, year=TODAY.year + 1)  # two months
    pdf = client.get(f"/me/certificates/{cert.id}.pdf")
    assert pdf.status_code == 200 and pdf.headers["Content-Type"] == "application/pdf"
    assert hashlib.sha256(pdf.data).hexdigest() == cert.sha256
    assert get_storage().get(cert.storage_key) == pdf.data
    text = re.sub(r"\s+", "", pdf_text(pdf.data))
    for expected in (
        "住房公积金缴存使用证明",
        CENTER,
        depositor.name,
        depositor.resident_id,
        account.account_no,
        f"{account.balance:,.2f}",
        f"{account.deposit_base:,.2f}",
        f"单位{account.employer_ratio}%",
        f"{account.monthly_amount:,.2f}",
        "连续缴存",
        loan.contract_no,
        "未结清",
        cert.number,
        certificates.format_code(cert.verify_code),
        "2026年11月25日",
    ):
        assert expected in text, expected
    fonts = subprocess.run(
        ["pdffonts", "-"], input=pdf.data, capture_output=True, check=True
    ).stdout.decode()
    assert "yes" in fonts.splitlines()[-1].split()


def test_pdf_is_generated_once_and_served_from_storage(client, depositor, monkeypatch):
    cert = _issue(client, depositor)
    first = client.get(f"/me/certificates/{cert.id}.pdf").data

    def no_pdf(*args, **kwargs):
        raise AssertionError("the PDF must not be generated again")

    monkeypatch.setattr("portal.pdf.Doc.__init__", no_pdf)
    assert client.get(f"/me/certificates/{cert.id}.pdf").data == first
    assert Certificate.select().where(Certificate.depositor == depositor).count() == 1


def test_the_list_and_the_certificate_page(client, depositor):
    cert = _issue(client, depositor)
    listing = soup(client.get("/me/certificates"))
    assert cert.number in listing.get_text() and "真实有效" in listing.get_text()
    page = soup(client.get(f"/me/certificates/{cert.id}"))
    assert certificates.format_code(cert.verify_code) in page.get_text()
    assert page.select_one(f"a[href='/me/certificates/{cert.id}.pdf']")
    assert f"/verify/{cert.verify_code}" in page.get_text()


def test_someone_elses_certificate_is_404(client, depositor, other_depositor):
    cert = _issue(client, depositor)
    client.post("/logout")
    login_depositor(client, other_depositor)
    assert client.get(f"/me/certificates/{cert.id}").status_code == 404
    assert client.get(f"/me/certificates/{cert.id}.pdf").status_code == 404
    assert cert.number not in client.get("/me/certificates").get_data(as_text=True)


@pytest.mark.parametrize(
    "addressee, message",
    [("", "此项必填"), ("京", "请填写 2–60 个字"), ("京" * 61, "请填写 2–60 个字")],
)
def test_addressee_is_required(client, depositor, addressee, message):
    login_depositor(client, depositor)
    before = Certificate.select().count()
    r = client.post("/me/certificates", data={"addressee": addressee})
    assert r.status_code == 422
    assert message in soup(r).select_one("#addressee-error").get_text()
    assert Certificate.select().count() == before


def test_closed_account_gets_no_certificate(client, depositor):
    Account.update(status="销户").where(Account.depositor == depositor).execute()
    login_depositor(client, depositor)
    r = client.post("/me/certificates", data={"addressee": CENTER})
    assert r.status_code == 422 and "已销户" in soup(r).select_one(".alert-error").get_text()


# --- facts --------------------------------------------------------------------------------


def test_continuous_run_ends_at_the_latest_month():
    run = certificates.continuous_run({"2024-11", "2024-12", "2025-01", "2025-03", "2025-04"})
    assert (run.start, run.end, run.months) == ("2025-03", "2025-04", 2)
    assert run.text() == "2个月（2025年3月至2025年4月）"
    assert certificates.continuous_run(set()).text() == "无缴存记录"


def test_loan_history_texts(depositor):
    Loan.delete().where(Loan.depositor == depositor).execute()
    assert certificates.loan_history(depositor)[0] == "无住房公积金贷款记录"
    base = dict(
        depositor=depositor,
        amount=1,
        term_months=120,
        annual_rate="0.026",
        method="annuity",
        disbursed_on=TODAY,
        first_due_on=TODAY,
    )
    from decimal import Decimal

    base["amount"] = Decimal("100000.00")
    Loan.create(
        contract_no="H1",
        loan_account_no="HA1",
        outstanding=Decimal("0.00"),
        status="settled",
        settled_on=TODAY,
        **base,
    )
    full, masked = certificates.loan_history(depositor)
    assert full == "有一笔住房公积金贷款（合同号H1，已于2026年11月25日结清）"
    assert "H1" not in masked
    Loan.create(contract_no="H2", loan_account_no="HA2", outstanding=Decimal("5000.00"), **base)
    full, _ = certificates.loan_history(depositor)
    assert (
        full.startswith("有2笔住房公积金贷款：") and "合同号H2，未结清，剩余本金5,000.00元" in full
    )


def test_mask_name():
    assert [certificates.mask_name(n) for n in ("王", "王芳", "王伟帆", "欧阳娜娜")] == [
        "王",
        "王*",
        "王*帆",
        "欧**娜",
    ]


# --- public verification ------------------------------------------------------------------


def test_verify_genuine_shows_masked_facts_only(client, depositor):
    cert = _issue(client, depositor)
    client.post("/logout")
    for url in (
        f"/verify?code={certificates.format_code(cert.verify_code).lower()}",
        f"/verify/{cert.verify_code}",
    ):
        r = client.get(url)
        assert r.status_code == 200
        page = soup(r)
        assert page.select_one(".verify-badge").get_text() == "真实有效"
        text = page.get_text()
        assert cert.number in text and "1529" in text
        assert depositor.resident_id not in text and depositor.name not in text
        assert depositor.name[0] + "*" in text


def test_verify_expired_and_revoked(client, depositor):
    cert = _issue(client, depositor)
    Certificate.update(valid_until=TODAY - timedelta(days=1)).where(
        Certificate.id == cert.id
    ).execute()
    assert (
        soup(client.get(f"/verify/{cert.verify_code}")).select_one(".verify-badge").get_text()
        == "已过期"
    )
    Certificate.update(revoked_at=utcnow(), revoked_reason="测试").where(
        Certificate.id == cert.id
    ).execute()
    page = soup(client.get(f"/verify/{cert.verify_code}"))
    assert page.select_one(".verify-badge").get_text() == "已撤销"


def test_verify_unknown_and_malformed(client):
    r = client.get("/verify?code=ABCD-EFGH-JKLM-NPQR")
    assert r.status_code == 404
    assert soup(r).select_one(".verify-badge").get_text() == "未查到"
    r = client.get("/verify?code=12")
    assert r.status_code == 422 and "16 位" in soup(r).select_one("#code-error").get_text()
    r = client.get("/verify?code=")
    assert r.status_code == 422 and "此项必填" in r.get_data(as_text=True)
    assert client.get("/verify").status_code == 200


def test_wrong_codes_are_rate_limited_per_address(client):
    for _ in range(10):
        assert client.get("/verify?code=ABCD-EFGH-JKLM-NPQR").status_code == 404
    r = client.get("/verify?code=ABCD-EFGH-JKLM-NPQR")
    assert r.status_code == 429
    assert "查询次数过多，请 10 分钟后再试" in soup(r).select_one(".alert-error").get_text()
    other = client.get("/verify?code=ABCD-EFGH-JKLM-NPQR", environ_base={"REMOTE_ADDR": "10.9.9.9"})
    assert other.status_code == 404


def test_verification_service_states():
    cert = Certificate.create(
        kind="usage",
        number="T-1",
        verify_code="ABCDEFGHJKLMNPQR",
        valid_until=TODAY,
        summary={"facts": [["持有人", "王*"]]},
    )
    assert certificates.verify("abcd efgh jklm npqr", TODAY).state == "genuine"
    assert certificates.verify("ABCDEFGHJKLMNPQR", TODAY + timedelta(days=1)).state == "expired"
    assert certificates.verify("nonsense", TODAY).state == "unknown"
    assert certificates.verify("ABCDEFGHJKLMNPQR", TODAY).facts == [("持有人", "王*")]
    assert cert.number == "T-1"
