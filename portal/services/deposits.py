"""The deposit detail (缴存明细) with paging and filters, and the annual statement (年度对账单)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from peewee import fn

from portal.db import Prepared, Shapes
from portal.documents import Document
from portal.models import DEPOSIT_KINDS as KINDS
from portal.models import Account, Depositor, DepositRecord, Employer
from portal.rules.ids import mask_resident_id

PER_PAGE = 20
ZERO = Decimal("0.00")


@dataclass
class DetailPage:
    rows: list[DepositRecord]
    total: int
    page: int
    pages: int
    year: int | None
    kind: str | None
    years: list[int]
    kinds: tuple[str, ...] = KINDS

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages

    @property
    def first_index(self) -> int:
        return (self.page - 1) * PER_PAGE + 1 if self.total else 0

    @property
    def last_index(self) -> int:
        return min(self.page * PER_PAGE, self.total)


_ACCOUNT_OF = Prepared(lambda pk: Account.select().where(Account.depositor == pk).limit(1), 1)


def account_of(depositor: Depositor) -> Account | None:
    return _ACCOUNT_OF.first(depositor.id)  # every hall page of the account: built once


_SPAN = Prepared(
    lambda pk: (
        DepositRecord.select(fn.MIN(DepositRecord.posted_on), fn.MAX(DepositRecord.posted_on))
        .where(DepositRecord.account == pk)
        .tuples()
    ),
    1,
)


def years(account: Account) -> list[int]:
    """Years with records, newest first."""
    first, last = _SPAN.first(account.id) or (None, None)
    if first is None:
        return []
    return list(range(last.year, first.year - 1, -1))


def _year_bounds(year: int) -> tuple[date, date]:
    return date(year, 1, 1), date(year, 12, 31)


def _posted_between(first, last):
    """Records posted from ``first`` to ``last`` inclusive (values or prepared Slots)."""
    return (DepositRecord.posted_on >= first) & (DepositRecord.posted_on <= last)


def _detail_query(shape, account, first, last, kind):
    """The detail's rows; ``shape`` says whether a year and a kind narrow them."""
    with_year, with_kind = shape
    query = DepositRecord.select().where(DepositRecord.account == account)
    if with_year:
        query = query.where(_posted_between(first, last))
    if with_kind:
        query = query.where(DepositRecord.kind == kind)
    return query


# The detail's count and page, built once per shape (issue 10: a page of the 缴存明细 is the
# hall's most frequent htmx request).
_DETAIL_COUNT = Shapes(
    lambda shape, account, first, last, kind: (
        _detail_query(shape, account, first, last, kind).select(fn.COUNT(DepositRecord.id)).tuples()
    ),
    4,
)
_DETAIL_PAGE = Shapes(
    lambda shape, account, first, last, kind, limit, offset: (
        _detail_query(shape, account, first, last, kind)
        .order_by(DepositRecord.posted_on.desc(), DepositRecord.id.desc())
        .limit(limit)
        .offset(offset)
    ),
    6,
)


def detail(
    account: Account,
    year: int | None = None,
    kind: str | None = None,
    page: int = 1,
    known_years: list[int] | None = None,
) -> DetailPage:
    """One page (20 rows) of the detail, newest first; an out-of-range page gives the last.
    ``known_years``: ``years(account)`` when the caller has just read it."""
    if kind not in KINDS:
        kind = None
    shape = (bool(year), kind is not None)
    first, last = _year_bounds(year) if year else (None, None)
    total = _DETAIL_COUNT[shape].scalar(account.id, first, last, kind) or 0
    pages = max(1, -(-total // PER_PAGE))
    page = min(max(1, page), pages)
    rows = _DETAIL_PAGE[shape].all(account.id, first, last, kind, PER_PAGE, (page - 1) * PER_PAGE)
    if known_years is None:
        known_years = years(account)
    return DetailPage(rows, total, page, pages, year, kind, known_years)


@dataclass
class Statement:
    account: Account
    depositor: Depositor
    employer_name: str
    year: int
    opening: Decimal
    lines: list[DepositRecord]
    closing: Decimal
    until: date
    partial: bool  # the year is not over yet
    totals: dict[str, Decimal] = field(default_factory=dict)

    @property
    def deposits(self) -> Decimal:
        return self.totals.get("汇缴", ZERO) + self.totals.get("补缴", ZERO)

    @property
    def interest(self) -> Decimal:
        return self.totals.get("结息", ZERO)

    @property
    def withdrawals(self) -> Decimal:
        return -self.totals.get("提取", ZERO)


def annual_statement(account: Account, year: int, today: date) -> Statement:
    """Opening balance on 1 January, every line of the year, totals by kind, closing balance."""
    opening = (
        DepositRecord.select(DepositRecord.balance_after)
        .where((DepositRecord.account == account) & (DepositRecord.posted_on < date(year, 1, 1)))
        .order_by(DepositRecord.posted_on.desc(), DepositRecord.id.desc())
        .scalar()
    )
    opening = opening if opening is not None else ZERO
    lines = list(
        DepositRecord.select()
        .where((DepositRecord.account == account) & _posted_between(*_year_bounds(year)))
        .order_by(DepositRecord.posted_on, DepositRecord.id)
    )
    totals: dict[str, Decimal] = {}
    for line in lines:
        totals[line.kind] = totals.get(line.kind, ZERO) + line.amount
    closing = lines[-1].balance_after if lines else opening
    employer = Employer.get_or_none(Employer.id == account.employer_id)
    partial = year >= today.year
    return Statement(
        account=account,
        depositor=account.depositor,
        employer_name=employer.name if employer else "—",
        year=year,
        opening=opening,
        lines=lines,
        closing=closing,
        until=today if partial else date(year, 12, 31),
        partial=partial,
        totals=totals,
    )


def statement_pdf(statement: Statement, center_name: str, today: date) -> bytes:
    """The annual statement as a PDF (masked ID: a statement is not an identity document)."""
    s = statement
    doc = Document(center_name, f"住房公积金个人账户 {s.year} 年度对账单", issued_on=today)
    doc.fields(
        [
            ("姓名", s.depositor.name),
            ("身份证号码", mask_resident_id(s.depositor.resident_id)),
            ("个人账号", s.account.account_no),
            ("缴存单位", s.employer_name),
            ("对账期间", f"{s.year}年1月1日至{s.until:%Y年%m月%d日}"),
            ("上年结转余额（元）", f"{s.opening:,.2f}"),
            ("本年缴存（元）", f"{s.deposits:,.2f}"),
            ("本年结息（元）", f"{s.interest:,.2f}"),
            ("本年提取（元）", f"{s.withdrawals:,.2f}"),
            ("期末余额（元）", f"{s.closing:,.2f}"),
        ]
    )
    doc.heading("本年明细")
    rows = [
        [
            f"{line.posted_on:%Y-%m-%d}",
            line.kind,
            line.period or "",
            f"{line.amount:,.2f}",
            f"{line.balance_after:,.2f}",
            line.memo or "",
        ]
        for line in s.lines
    ]
    if not rows:
        rows = [["", "本年无发生额", "", "", "", ""]]
    doc.table(
        ["日期", "业务", "所属年月", "发生额（元）", "余额（元）", "摘要"],
        rows,
        [24, 16, 20, 30, 30, 50],
        "CCCRRL",
    )
    if s.partial:
        doc.paragraph(f"本年度尚未结束，截至 {s.until:%Y年%m月%d日}。", size=9)
    doc.paragraph("本对账单由系统生成，如有疑问请拨打 12329。", size=9)
    return doc.output()
