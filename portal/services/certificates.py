"""Certificates the depositor issues online, their storage, and the public verification.

A certificate is generated once: the PDF is made when it is issued, stored by content
(``portal.storage``) with its SHA-256 on the row, and every later download reads the stored file
and checks the hash. The holder's own usage certificate carries the full resident ID (lending
centers match people by it); ``summary`` keeps only masked facts for the public ``/verify`` page.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from peewee import JOIN, IntegrityError

from portal.db import Prepared, locked, write_tx
from portal.documents import Document
from portal.models import (
    Account,
    Certificate,
    Depositor,
    DepositRecord,
    Employer,
    Loan,
    Payout,
    utcnow,
)
from portal.rules.dates import add_months
from portal.rules.ids import mask_bank_card, mask_resident_id
from portal.services import audit
from portal.storage import get_storage

USAGE_VALID_MONTHS = 2
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I
CODE_LENGTH = 16
KIND_LABELS = {
    "usage": "住房公积金缴存使用证明",
    "settlement": "住房公积金个人住房贷款全部还清证明",
    "employer_deposit": "单位住房公积金缴存证明",
    "retirement_receipt": "住房公积金提取凭证（正常退休提取）",
}
STATE_LABELS = {
    "genuine": "真实有效",
    "expired": "已过期",
    "revoked": "已撤销",
    "unknown": "未查到",
}

VerifyUrl = Callable[[str], str]


class Refused(Exception):
    """The certificate cannot be issued; the message is for the depositor."""


class NotFound(LookupError):
    """Not this depositor's certificate (the view answers 404)."""


# --- codes and numbers --------------------------------------------------------------------


def new_verify_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def format_code(code: str) -> str:
    """``ABCD-EFGH-JKLM-NPQR`` for reading aloud and typing."""
    return "-".join(code[i : i + 4] for i in range(0, len(code), 4))


def normalize_code(text: str | None) -> str:
    """Upper-case, without spaces and dashes; '' when it cannot be a code."""
    code = "".join((text or "").split()).replace("-", "").upper()
    if len(code) != CODE_LENGTH or any(c not in CODE_ALPHABET for c in code):
        return ""
    return code


def _new_number(prefix: str, today: date) -> str:
    return f"{prefix}{today:%Y%m%d}{secrets.randbelow(10**6):06d}"


def mask_name(name: str) -> str:
    """``王*`` / ``王*帆`` / ``欧阳**``: the surname (first character) and the last one kept."""
    name = (name or "").strip()
    if len(name) <= 1:
        return name
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


def fmt_day(d: date) -> str:
    return f"{d.year}年{d.month}月{d.day}日"


def fmt_ym(period: str) -> str:
    year, month = period.split("-")
    return f"{year}年{int(month)}月"


# --- the facts of a usage certificate -----------------------------------------------------


@dataclass
class ContinuousRun:
    start: str | None  # YYYY-MM
    end: str | None
    months: int

    def text(self) -> str:
        if not self.months:
            return "无缴存记录"
        return f"{self.months}个月（{fmt_ym(self.start)}至{fmt_ym(self.end)}）"


def continuous_run(periods: set[str]) -> ContinuousRun:
    """The run of consecutive deposit months that ends at the latest month paid."""
    if not periods:
        return ContinuousRun(None, None, 0)
    end = max(periods)
    year, month = map(int, end.split("-"))
    cursor = date(year, month, 1)
    months = 0
    while f"{cursor:%Y-%m}" in periods:
        months += 1
        cursor = add_months(cursor, -1)
    return ContinuousRun(f"{add_months(cursor, 1):%Y-%m}", end, months)


def loan_history(depositor: Depositor) -> tuple[str, str]:
    """(full text with contract numbers, masked text without them) for the certificate."""
    loans = list(Loan.select().where(Loan.of(depositor)).order_by(Loan.disbursed_on))
    if not loans:
        return "无住房公积金贷款记录", "无住房公积金贷款记录"

    def one(loan: Loan, with_number: bool) -> str:
        number = f"合同号{loan.contract_no}，" if with_number else ""
        who = "（共同借款人）" if loan.depositor_id != depositor.id else ""
        if loan.status == "settled":
            when = fmt_day(loan.settled_on) if loan.settled_on else ""
            return f"{number}已于{when}结清{who}"
        return f"{number}未结清，剩余本金{loan.outstanding:,.2f}元{who}"

    if len(loans) == 1:
        return (
            f"有一笔住房公积金贷款（{one(loans[0], True)}）",
            f"有一笔住房公积金贷款（{one(loans[0], False)}）",
        )
    full = "；".join(one(loan, True) for loan in loans)
    short = "；".join(one(loan, False) for loan in loans)
    return (
        f"有{len(loans)}笔住房公积金贷款：{full}",
        f"有{len(loans)}笔住房公积金贷款：{short}",
    )


@dataclass
class UsageFacts:
    depositor: Depositor
    account: Account
    employer_name: str
    run: ContinuousRun
    loans_full: str
    loans_masked: str

    def rows(self, full_id: bool) -> list[tuple[str, str]]:
        d, a = self.depositor, self.account
        return [
            ("姓名", d.name),
            ("身份证号码", d.resident_id if full_id else mask_resident_id(d.resident_id)),
            ("个人账号", a.account_no),
            ("缴存单位", self.employer_name),
            ("开户日期", fmt_day(a.opened_on)),
            ("缴存基数（元）", f"{a.deposit_base:,.2f}"),
            ("缴存比例", f"单位 {a.employer_ratio}%，个人 {a.employee_ratio}%"),
            ("月缴存额（元）", f"{a.monthly_amount:,.2f}"),
            ("账户状态", a.status),
            ("缴至年月", fmt_ym(a.paid_up_to) if a.paid_up_to else "—"),
            ("连续缴存", self.run.text()),
            ("账户余额（元）", f"{a.balance:,.2f}"),
            ("住房公积金贷款", self.loans_full if full_id else self.loans_masked),
        ]


def usage_facts(depositor: Depositor) -> UsageFacts:
    account = Account.get_or_none(Account.depositor == depositor)
    if account is None:
        raise Refused("未查询到您的住房公积金个人账户，请联系 12329。")
    if account.status == "销户":
        raise Refused("您的住房公积金账户已销户，不能出具缴存使用证明。")
    employer = Employer.get_or_none(Employer.id == account.employer_id)
    periods = {
        p
        for (p,) in DepositRecord.select(DepositRecord.period)
        .where(
            (DepositRecord.account == account)
            & DepositRecord.kind.in_(("汇缴", "补缴"))
            & DepositRecord.period.is_null(False)
        )
        .distinct()
        .tuples()
    }
    full, masked = loan_history(depositor)
    return UsageFacts(
        depositor=depositor,
        account=account,
        employer_name=employer.name if employer else "—",
        run=continuous_run(periods),
        loans_full=full,
        loans_masked=masked,
    )


# --- issuing ------------------------------------------------------------------------------


def _store_new(
    kind: str,
    prefix: str,
    today: date,
    build: Callable[[str, str], tuple[bytes, dict]],
    **fields,
) -> Certificate:
    """Make a number and code, build the PDF, store it, insert the row (retrying a clash)."""
    for _attempt in range(5):
        number, code = _new_number(prefix, today), new_verify_code()
        pdf, summary = build(number, code)
        key, digest = get_storage().put(pdf, "certificates", ".pdf")
        try:
            with write_tx():
                return Certificate.create(
                    kind=kind,
                    number=number,
                    verify_code=code,
                    summary=summary,
                    storage_key=key,
                    sha256=digest,
                    issued_at=utcnow(),
                    **fields,
                )
        except IntegrityError:  # number or code taken: draw again
            continue
    raise RuntimeError("could not allocate a certificate number")


def issue_usage(
    depositor: Depositor,
    addressee: str,
    today: date,
    verify_url: VerifyUrl,
    center_name: str,
    actor: str | None = None,
) -> Certificate:
    """出具缴存使用证明: one click, a stored PDF, valid for two months."""
    addressee = " ".join((addressee or "").split())
    if not addressee:
        raise Refused("请填写贷款受理中心（证明的接收单位）。")
    facts = usage_facts(depositor)
    valid_until = add_months(today, USAGE_VALID_MONTHS)

    def build(number: str, code: str) -> tuple[bytes, dict]:
        doc = Document(center_name, KIND_LABELS["usage"], number=number, issued_on=today)
        doc.paragraph(f"{addressee}：")
        doc.paragraph(
            f"\u3000\u3000兹证明{depositor.name}（身份证号码：{depositor.resident_id}）在我中心缴存住房"
            "公积金，其缴存和使用情况如下："
        )
        doc.fields(facts.rows(full_id=True))
        doc.paragraph(
            f"\u3000\u3000特此证明。本证明自出具之日起两个月内有效（有效期至{fmt_day(valid_until)}）。"
            "涂改无效；请扫描二维码或输入核验码核验真伪。"
        )
        doc.qr(verify_url(code), f"核验码：{format_code(code)}\n证明编号：{number}")
        doc.seal(on=today)
        summary = {
            "facts": [
                ["持有人", mask_name(depositor.name)],
                ["身份证号码", mask_resident_id(depositor.resident_id)],
                ["缴存单位", facts.employer_name],
                ["账户状态", facts.account.status],
                ["连续缴存", facts.run.text()],
                ["账户余额（元）", f"{facts.account.balance:,.2f}"],
                ["住房公积金贷款", facts.loans_masked],
                ["接收单位", addressee],
            ]
        }
        return doc.output(), summary

    certificate = _store_new(
        "usage",
        "ZM",
        today,
        build,
        depositor=depositor,
        addressee=addressee,
        valid_until=valid_until,
    )
    audit.record(
        actor or f"depositor:{depositor.id}",
        "certificate.issued",
        "certificate",
        certificate.id,
        kind="usage",
        number=certificate.number,
    )
    from portal.services import notices  # issue 11: tell the holder (inbox and SMS)

    with write_tx():
        notices.certificate_issued(certificate)
    return certificate


def retirement_receipt(
    payout: Payout, today: date, verify_url: VerifyUrl, center_name: str
) -> Certificate:
    """The receipt of a confirmed retirement withdrawal: generated on first request, then kept."""
    existing = payout.detail.get("receipt_id")
    if existing:
        return Certificate.get_by_id(existing)
    depositor = payout.account.depositor
    account = payout.account
    d = payout.detail
    paid_on = date.fromisoformat(d["on"])

    def build(number: str, code: str) -> tuple[bytes, dict]:
        doc = Document(
            center_name, KIND_LABELS["retirement_receipt"], number=number, issued_on=paid_on
        )
        doc.fields(
            [
                ("姓名", depositor.name),
                ("身份证号码", mask_resident_id(depositor.resident_id)),
                ("个人账号", account.account_no),
                ("提取原因", "正常退休"),
                ("账户余额（元）", f"{Decimal(d['balance']):,.2f}"),
                (
                    "销户结息（元）",
                    f"{Decimal(d['interest']):,.2f}（自{d['interest_since']}起计息）",
                ),
                ("提取金额（元）", f"{payout.amount:,.2f}"),
                ("收款银行卡", f"{d.get('bank_name', '')} {mask_bank_card(payout.bank_card)}"),
                ("银行流水号", payout.bank_ref or "—"),
                ("办理日期", fmt_day(paid_on)),
                ("账户状态", "已销户"),
                ("办理渠道", d.get("channel", "网上业务大厅")),
            ]
        )
        doc.qr(verify_url(code), f"核验码：{format_code(code)}\n凭证编号：{number}")
        doc.seal(on=paid_on)
        summary = {
            "facts": [
                ["持有人", mask_name(depositor.name)],
                ["身份证号码", mask_resident_id(depositor.resident_id)],
                ["提取原因", "正常退休"],
                ["提取金额（元）", f"{payout.amount:,.2f}"],
                ["办理日期", fmt_day(paid_on)],
            ]
        }
        return doc.output(), summary

    with write_tx():
        fresh = locked(Payout.select().where(Payout.id == payout.id)).get()
        if fresh.detail.get("receipt_id"):
            return Certificate.get_by_id(fresh.detail["receipt_id"])
        certificate = _store_new(
            "retirement_receipt", "TQ", today, build, depositor=depositor, addressee=""
        )
        Payout.update(detail={**fresh.detail, "receipt_id": certificate.id}).where(
            Payout.id == payout.id
        ).execute()
    return certificate


# --- the holder's certificates ------------------------------------------------------------


def _own_query(depositor: Depositor):
    return (
        Certificate.select(Certificate)
        .join(Loan, on=(Certificate.loan == Loan.id), join_type=JOIN.LEFT_OUTER)
        .where((Certificate.depositor == depositor) | (Loan.depositor == depositor))
    )


def own_certificates(depositor: Depositor) -> list[Certificate]:
    return list(_own_query(depositor).order_by(Certificate.issued_at.desc(), Certificate.id.desc()))


CERTIFICATES_PER_PAGE = 10


@dataclass
class CertificatePage:
    items: list[Certificate]
    page: int
    pages: int
    total: int


def own_certificates_page(depositor: Depositor, page: int = 1) -> CertificatePage:
    """The holder's certificates, newest first, a page at a time (issue 10: a depositor who
    issued many still gets a small page); an out-of-range page gives the last."""
    query = _own_query(depositor)
    total = query.count()
    pages = max(1, -(-total // CERTIFICATES_PER_PAGE))
    page = min(max(1, page), pages)
    items = list(
        query.order_by(Certificate.issued_at.desc(), Certificate.id.desc()).paginate(
            page, CERTIFICATES_PER_PAGE
        )
    )
    return CertificatePage(items, page, pages, total)


def own_certificate(depositor: Depositor, certificate_id: int) -> Certificate:
    certificate = _own_query(depositor).where(Certificate.id == certificate_id).first()
    if certificate is None or not certificate.storage_key:
        raise NotFound(certificate_id)
    return certificate


def pdf_bytes(certificate: Certificate) -> bytes:
    """The stored PDF, checked against its SHA-256."""
    return get_storage().get(certificate.storage_key, certificate.sha256 or None)


def status(certificate: Certificate, today: date) -> str:
    if certificate.revoked_at is not None:
        return "revoked"
    if certificate.valid_until is not None and today > certificate.valid_until:
        return "expired"
    return "genuine"


# --- public verification ------------------------------------------------------------------


@dataclass
class Verification:
    state: str  # genuine / expired / revoked / unknown
    code: str
    kind_label: str = ""
    number: str = ""
    issued_on: date | None = None
    valid_until: date | None = None
    revoked_on: date | None = None
    facts: list[tuple[str, str]] | None = None
    sha256: str = ""

    @property
    def label(self) -> str:
        return STATE_LABELS[self.state]


# The public verification page's lookup, built once (issue 10: anyone scanning a QR code).
_BY_VERIFY_CODE = Prepared(
    lambda code: Certificate.select().where(Certificate.verify_code == code).limit(1), 1
)


def verify(code_text: str, today: date) -> Verification:
    """Look a code up; only masked facts come back."""
    from portal.services.payouts import local_date

    code = normalize_code(code_text)
    certificate = _BY_VERIFY_CODE.first(code) if code else None
    if certificate is None:
        return Verification("unknown", code)
    summary = certificate.summary or {}
    facts = summary.get("facts")
    if facts is None:  # another issuer's summary: plain label -> value pairs
        facts = [[str(k), str(v)] for k, v in sorted(summary.items())]
    return Verification(
        state=status(certificate, today),
        code=code,
        kind_label=KIND_LABELS.get(certificate.kind, certificate.kind),
        number=certificate.number,
        issued_on=local_date(certificate.issued_at),
        valid_until=certificate.valid_until,
        revoked_on=local_date(certificate.revoked_at) if certificate.revoked_at else None,
        facts=[(str(a), str(b)) for a, b in facts],
        sha256=certificate.sha256,
    )
