"""The employer deposit certificate (单位住房公积金缴存证明), issued online by an operator.

It reuses the depositor certificates' machinery in ``services.certificates``: number and
verification code, one stored PDF with its SHA-256, ``status`` and the public ``/verify`` page
(which reads the masked ``summary``). The employer's own PDF carries the full credit code.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from peewee import fn

from portal.documents import Document
from portal.models import Certificate, DepositRecord, Employer, EmployerOperator
from portal.rules.dates import add_months
from portal.rules.ids import mask_resident_id
from portal.services import accounts, audit
from portal.services.certificates import (
    KIND_LABELS,
    USAGE_VALID_MONTHS,
    ContinuousRun,
    VerifyUrl,
    _store_new,
    continuous_run,
    fmt_day,
    fmt_ym,
    format_code,
)
from portal.services.employers import REMITTANCE_KINDS

KIND = "employer_deposit"
PREFIX = "DW"


class Refused(Exception):
    """The certificate cannot be issued; the message is for the operator."""


class NotFound(LookupError):
    """Not this employer's certificate (the view answers 404)."""


def _months_between(earlier: str, later: str) -> int:
    """Whole months from YYYY-MM ``earlier`` to ``later`` (0 when not later)."""
    start = date(int(earlier[:4]), int(earlier[5:]), 1)
    end = date(int(later[:4]), int(later[5:]), 1)
    months = 0
    while add_months(start, months + 1) <= end:
        months += 1
    return months


@dataclass
class EmployerFacts:
    employer: Employer
    counts: dict[str, int]
    monthly_total: Decimal
    run: ContinuousRun
    last_year_total: Decimal
    arrears_months: int

    @property
    def arrears_text(self) -> str:
        if self.employer.paid_up_to is None:
            return "尚未开始汇缴"
        return "无欠缴" if not self.arrears_months else f"欠缴 {self.arrears_months} 个月"

    def rows(self, full_code: bool) -> list[tuple[str, str]]:
        e = self.employer
        return [
            ("单位名称", e.name),
            ("统一社会信用代码", e.credit_code if full_code else mask_resident_id(e.credit_code)),
            ("单位账号", e.account_no),
            ("开户日期", fmt_day(e.opened_on)),
            ("单位状态", e.status),
            ("缴存比例", f"单位 {e.employer_ratio}%，个人 {e.employee_ratio}%"),
            (
                "缴存人数",
                f"正常缴存 {self.counts.get('正常', 0)} 人，封存 {self.counts.get('封存', 0)} 人",
            ),
            ("月汇缴额（元）", f"{self.monthly_total:,.2f}"),
            ("缴至年月", fmt_ym(e.paid_up_to) if e.paid_up_to else "—"),
            ("连续汇缴", self.run.text()),
            ("近 12 个月汇缴额（元）", f"{self.last_year_total:,.2f}"),
            ("欠缴情况", self.arrears_text),
        ]


def facts(operator: EmployerOperator, today: date) -> EmployerFacts:
    employer = Employer.get_by_id(operator.employer_id)
    if employer.status == "注销":
        raise Refused("单位账户已注销，不能出具缴存证明。")
    base = accounts.employer_overview(operator)
    remitted = DepositRecord.kind.in_(REMITTANCE_KINDS)
    periods = {
        p
        for (p,) in DepositRecord.select(DepositRecord.period)
        .where(
            (DepositRecord.employer == employer) & remitted & DepositRecord.period.is_null(False)
        )
        .distinct()
        .tuples()
    }
    since = f"{add_months(date(today.year, today.month, 1), -12):%Y-%m}"
    fen = (
        DepositRecord.select(fn.SUM(DepositRecord.amount).coerce(False))  # integer fen
        .where((DepositRecord.employer == employer) & remitted & (DepositRecord.period >= since))
        .scalar()
    )
    last_month = f"{add_months(date(today.year, today.month, 1), -1):%Y-%m}"
    arrears = _months_between(employer.paid_up_to, last_month) if employer.paid_up_to else 0
    return EmployerFacts(
        employer=employer,
        counts=base.counts,
        monthly_total=base.monthly_total,
        run=continuous_run(periods),
        last_year_total=DepositRecord.amount.python_value(int(fen or 0)),
        arrears_months=arrears,
    )


def issue(
    operator: EmployerOperator,
    addressee: str,
    today: date,
    verify_url: VerifyUrl,
    center_name: str,
) -> Certificate:
    """出具单位缴存证明: a stored PDF, valid for two months, verifiable by its code."""
    addressee = " ".join((addressee or "").split())
    if not 2 <= len(addressee) <= 60:
        raise Refused("请填写证明的接收单位（2–60 个字）。")
    f = facts(operator, today)
    employer = f.employer
    valid_until = add_months(today, USAGE_VALID_MONTHS)

    def build(number: str, code: str) -> tuple[bytes, dict]:
        doc = Document(center_name, KIND_LABELS[KIND], number=number, issued_on=today)
        doc.paragraph(f"{addressee}：")
        doc.paragraph(
            f"\u3000\u3000兹证明{employer.name}（统一社会信用代码：{employer.credit_code}）在我中心"
            "登记缴存住房公积金，其缴存情况如下："
        )
        doc.fields(f.rows(full_code=True))
        doc.paragraph(
            f"\u3000\u3000特此证明。本证明自出具之日起两个月内有效（有效期至{fmt_day(valid_until)}）。"
            "涂改无效；请扫描二维码或输入核验码核验真伪。"
        )
        doc.qr(verify_url(code), f"核验码：{format_code(code)}\n证明编号：{number}")
        doc.seal(on=today)
        masked = dict(f.rows(full_code=False))
        summary = {
            "facts": [
                ["单位名称", masked["单位名称"]],
                ["统一社会信用代码", masked["统一社会信用代码"]],
                ["单位状态", masked["单位状态"]],
                ["缴存人数", masked["缴存人数"]],
                ["缴至年月", masked["缴至年月"]],
                ["连续汇缴", masked["连续汇缴"]],
                ["欠缴情况", masked["欠缴情况"]],
                ["接收单位", addressee],
            ]
        }
        return doc.output(), summary

    certificate = _store_new(
        KIND, PREFIX, today, build, employer=employer, addressee=addressee, valid_until=valid_until
    )
    audit.record(
        f"operator:{operator.id}",
        "certificate.issued",
        "certificate",
        certificate.id,
        kind=KIND,
        number=certificate.number,
        employer=employer.id,
    )
    return certificate


def _own_query(operator: EmployerOperator):
    return Certificate.select().where(
        (Certificate.employer == operator.employer_id) & (Certificate.kind == KIND)
    )


def own_certificates(operator: EmployerOperator) -> list[Certificate]:
    return list(_own_query(operator).order_by(Certificate.issued_at.desc(), Certificate.id.desc()))


def own_certificate(operator: EmployerOperator, certificate_id: int) -> Certificate:
    certificate = _own_query(operator).where(Certificate.id == certificate_id).first()
    if certificate is None or not certificate.storage_key:
        raise NotFound(certificate_id)
    return certificate
