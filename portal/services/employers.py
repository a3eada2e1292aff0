"""The employer hall (单位网上业务大厅, DESIGN.md sections 2, 3 and 5).

An operator (单位经办人) acts only for their own employer: the overview with the employer
account detail (单位账户明细, derived from the employer's remittance lines), the roster, the
employer deposit-information change (单位缴存信息变更: contact, address, ratios, one depositor's
deposit base) and, for the primary operator, the other operators. Every change needs a fresh
one-time code, keeps history in ``ChangeRecord`` (subject_type "employer") and is audited.
Ratio and base changes apply from a stated month: now when that month has begun, otherwise
they wait as "scheduled" until :func:`apply_due` (on the next employer-hall request, or
``flask employer apply-due`` at the start of a month) applies them.

``register_employer`` creates an employer whose 单位登记开户 case was processed, with its first
operator, who receives an activation code by SMS and sets a password at ``/employer/activate``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation

from peewee import JOIN, IntegrityError, fn

from portal.db import locked, write_tx
from portal.models import (
    Account,
    Center,
    ChangeRecord,
    Department,
    Depositor,
    DepositRecord,
    Employer,
    EmployerOperator,
    OtpChallenge,
    ProxyCase,
    utcnow,
)
from portal.rules.dates import add_months
from portal.rules.ids import (
    is_valid_resident_id,
    is_valid_uscc,
    mask_phone,
    mask_resident_id,
    normalize_resident_id,
    normalize_uscc,
)
from portal.rules.money import quantize
from portal.services import accounts, audit, identity, ratelimit, settings, sms, tracking

# the SMS text of this module's own one-time-code purpose (identity's table knows the others)
identity.PURPOSE_TEXT.setdefault("operator", "经办人管理")

ACTION_PURPOSES = {"change": "信息变更", "operator": "经办人管理"}
SMS_LIMIT = 6  # codes per operator per window
SMS_WINDOW = 600
ACTIVATION_PURPOSE = "activate"
MAX_MONTHS_AHEAD = 12  # a change may be dated at most this many months ahead
PER_PAGE = 20

MOBILE_RE = re.compile(r"^1[3-9]\d{9}$")
LANDLINE_RE = re.compile(r"^0\d{2,3}-\d{7,8}$")
MONTH_RE = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")

FIELD_LABELS = {
    "contact_name": "联系人",
    "contact_phone": "联系电话",
    "address": "单位地址",
    "employer_ratio": "单位缴存比例",
    "employee_ratio": "个人缴存比例",
    "deposit_base": "缴存基数",
}
STATUS_LABELS = {"applied": "已生效", "scheduled": "待生效", "superseded": "已被后续变更取代"}
CHANNEL_LABELS = {"online": "网上业务大厅", "counter": "服务大厅柜台", "case": "跨省通办代办"}
RATIO_FIELDS = ("employer_ratio", "employee_ratio")
REMITTANCE_KINDS = ("汇缴", "补缴")
DEFAULT_RATIO_MIN, DEFAULT_RATIO_MAX = 5, 12


class Refused(Exception):
    """Nothing was changed; ``field`` names the form field the message belongs to."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


class NotFound(LookupError):
    """Not this employer's depositor, operator or record (the view answers 404)."""


class Forbidden(Exception):
    """Only the primary operator manages operators (the view answers 403)."""


# --- months and the center's limits -------------------------------------------------------


def month_of(day: date) -> str:
    return f"{day:%Y-%m}"


def first_day(month: str) -> date:
    year, mon = month.split("-")
    return date(int(year), int(mon), 1)


def month_label(month: str | None) -> str:
    if not month:
        return "—"
    year, mon = month.split("-")
    return f"{year}年{int(mon)}月"


def parse_month(text: str | None, today: date) -> str:
    """A change's first month: YYYY-MM, not before this month, at most a year ahead."""
    month = (text or "").strip()
    if not MONTH_RE.match(month):
        raise Refused("请按“年-月”填写生效月份，例如 2026-12", "effective_from")
    current = month_of(today)
    if month < current:
        raise Refused(
            f"生效月份不能早于本月（{month_label(current)}）；已缴存的月份不能追溯变更",
            "effective_from",
        )
    latest = month_of(add_months(first_day(current), MAX_MONTHS_AHEAD))
    if month > latest:
        raise Refused(f"生效月份最晚为 {month_label(latest)}", "effective_from")
    return month


@dataclass
class Limits:
    """What the center allows in the month a change takes effect (settings with dates)."""

    ratio_min: int
    ratio_max: int
    ratio_equal: bool
    base_floor: Decimal | None
    base_ceiling: Decimal | None


def _decimal_setting(key: str, on: date) -> Decimal | None:
    raw = settings.value_on(key, on)
    try:
        return Decimal(raw) if raw not in (None, "") else None
    except InvalidOperation:
        return None


def limits_on(day: date) -> Limits:
    ratio_min = _decimal_setting("ratio_min", day)
    ratio_max = _decimal_setting("ratio_max", day)
    equal = settings.value_on("ratio_equal", day, "0")
    return Limits(
        ratio_min=int(ratio_min) if ratio_min is not None else DEFAULT_RATIO_MIN,
        ratio_max=int(ratio_max) if ratio_max is not None else DEFAULT_RATIO_MAX,
        ratio_equal=(equal or "0").strip() not in ("", "0", "false", "False"),
        base_floor=_decimal_setting("deposit_base_floor", day),
        base_ceiling=_decimal_setting("deposit_base_ceiling", day),
    )


def normalize_phone(text: str | None) -> str:
    return "".join((text or "").split())


def check_phone(phone: str, field_name: str = "contact_phone") -> str:
    phone = normalize_phone(phone)
    if not (MOBILE_RE.match(phone) or LANDLINE_RE.match(phone)):
        raise Refused("请输入 11 位手机号码，或带区号的固定电话（如 0483-8123456）", field_name)
    return phone


def check_mobile(phone: str, field_name: str = "phone") -> str:
    phone = normalize_phone(phone)
    if not MOBILE_RE.match(phone):
        raise Refused("请输入 11 位手机号码", field_name)
    return phone


# --- one-time codes -----------------------------------------------------------------------


def subject(operator: EmployerOperator) -> str:
    return f"o:{operator.id}"


def send_action_code(operator: EmployerOperator, purpose: str) -> OtpChallenge:
    """Text a code for ``purpose`` to the operator's own phone (at most 6 per 10 minutes)."""
    if purpose not in ACTION_PURPOSES:
        raise ValueError(f"unknown purpose {purpose!r}")
    if purpose == "operator" and not operator.is_primary:
        raise Forbidden
    if not ratelimit.hit(f"sms:o:{operator.id}", SMS_LIMIT, SMS_WINDOW):
        raise Refused("验证码发送过于频繁，请 10 分钟后再试。", "code")
    return identity.send_code(purpose, subject(operator), operator.phone)


def _verify(operator: EmployerOperator, purpose: str, challenge_id, code: str) -> None:
    try:
        identity.verify_code(challenge_id, purpose, subject(operator), code)
    except identity.CodeFailed as exc:
        raise Refused(str(exc), "code") from None


def _actor(operator: EmployerOperator) -> str:
    return f"operator:{operator.id}"


def _fresh_employer(operator: EmployerOperator) -> Employer:
    return Employer.get_by_id(operator.employer_id)


# --- overview and the employer account detail ---------------------------------------------


@dataclass
class Overview:
    employer: Employer
    operator: EmployerOperator
    counts: dict[str, int]
    monthly_total: Decimal
    depositors: int
    scheduled: list[HistoryRow]


def overview(operator: EmployerOperator, today: date) -> Overview:
    base = accounts.employer_overview(operator)
    employer = _fresh_employer(operator)
    return Overview(
        employer=employer,
        operator=operator,
        counts=base.counts,
        monthly_total=base.monthly_total,
        depositors=sum(base.counts.values()),
        scheduled=[h for h in history(employer) if h.record.status == "scheduled"],
    )


@dataclass
class LedgerLine:
    """One posting of the employer's remittance (all its depositors' lines of one kind and
    month posted on one day), with the running total of remittances through it."""

    posted_on: date
    kind: str
    period: str | None
    persons: int
    amount: Decimal
    balance: Decimal


@dataclass
class Page:
    rows: list
    total: int
    page: int
    pages: int

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


def _paginate(total: int, page: int) -> tuple[int, int]:
    pages = max(1, -(-total // PER_PAGE))
    return min(max(1, page), pages), pages


def ledger_lines(employer: Employer) -> list[LedgerLine]:
    """The employer account detail, oldest first, with the running total of remittances."""
    grouped = (
        DepositRecord.select(
            DepositRecord.posted_on,
            DepositRecord.kind,
            DepositRecord.period,
            fn.COUNT(DepositRecord.id),
            fn.SUM(DepositRecord.amount).coerce(False),  # integer fen, converted below
        )
        .where((DepositRecord.employer == employer) & DepositRecord.kind.in_(REMITTANCE_KINDS))
        .group_by(DepositRecord.posted_on, DepositRecord.kind, DepositRecord.period)
        .order_by(DepositRecord.posted_on, DepositRecord.kind, DepositRecord.period)
        .tuples()
    )
    lines, running = [], Decimal("0.00")
    for posted_on, kind, period, persons, fen in grouped:
        amount = DepositRecord.amount.python_value(int(fen))
        running += amount
        lines.append(LedgerLine(posted_on, kind, period, int(persons), amount, running))
    return lines


@dataclass
class LedgerPage(Page):
    remitted: Decimal = Decimal("0.00")


def ledger_page(employer: Employer, page: int = 1) -> LedgerPage:
    """One page (20 lines) of the detail, newest first; an out-of-range page gives the last."""
    lines = ledger_lines(employer)
    page, pages = _paginate(len(lines), page)
    newest = lines[::-1]
    rows = newest[(page - 1) * PER_PAGE : page * PER_PAGE]
    return LedgerPage(
        rows, len(lines), page, pages, remitted=lines[-1].balance if lines else Decimal("0.00")
    )


# --- roster -------------------------------------------------------------------------------


@dataclass
class RosterRow:
    account: Account
    name: str
    masked_id: str
    monthly: Decimal


@dataclass
class RosterPage(Page):
    q: str = ""
    status: str = ""


ROSTER_STATUSES = ("正常", "封存", "冻结", "销户")


def roster(employer: Employer, q: str = "", status: str = "", page: int = 1) -> RosterPage:
    """The employer's depositors, searched by name or account number, masked IDs."""
    q = " ".join((q or "").split())[:40]
    status = status if status in ROSTER_STATUSES else ""
    query = (
        Account.select(Account, Depositor)
        .join(Depositor, on=(Account.depositor == Depositor.id))
        .where(Account.employer == employer)
    )
    if q:  # peewee's contains() escapes % and _ in the search text
        query = query.where(Depositor.name.contains(q) | Account.account_no.contains(q))
    if status:
        query = query.where(Account.status == status)
    total = query.count()
    page, pages = _paginate(total, page)
    rows = [
        RosterRow(a, a.depositor.name, mask_resident_id(a.depositor.resident_id), a.monthly_amount)
        for a in query.order_by(Account.account_no).paginate(page, PER_PAGE)
    ]
    return RosterPage(rows, total, page, pages, q=q, status=status)


def own_account(employer: Employer, account_id: int) -> Account:
    account = (
        Account.select(Account, Depositor)
        .join(Depositor, on=(Account.depositor == Depositor.id))
        .where((Account.id == account_id) & (Account.employer == employer))
        .first()
    )
    if account is None:
        raise NotFound(account_id)
    return account


# --- history ------------------------------------------------------------------------------


@dataclass
class HistoryRow:
    record: ChangeRecord
    field_label: str
    operator_name: str
    channel_label: str
    status_label: str
    effective_label: str


def _actor_names(actors: set[str]) -> dict[str, str]:
    ids = [int(a.split(":", 1)[1]) for a in actors if re.fullmatch(r"operator:\d+", a)]
    names = {
        f"operator:{o.id}": o.name
        for o in EmployerOperator.select(EmployerOperator.id, EmployerOperator.name).where(
            EmployerOperator.id.in_(ids or [0])
        )
    }
    for actor in actors:
        if actor not in names:
            names[actor] = (
                "中心工作人员"
                if actor.startswith("staff:")
                else ("系统" if actor == "system" else "已删除的经办人")
            )
    return names


def history(employer: Employer, limit: int | None = None) -> list[HistoryRow]:
    query = (
        ChangeRecord.select(ChangeRecord, Account, Depositor)
        .join(Account, on=(ChangeRecord.account == Account.id), join_type=JOIN.LEFT_OUTER)
        .join(Depositor, on=(Account.depositor == Depositor.id), join_type=JOIN.LEFT_OUTER)
        .where((ChangeRecord.subject_type == "employer") & (ChangeRecord.subject_id == employer.id))
        .order_by(ChangeRecord.changed_at.desc(), ChangeRecord.id.desc())
    )
    if limit:
        query = query.limit(limit)
    records = list(query)
    names = _actor_names({r.actor for r in records})
    rows = []
    for r in records:
        label = FIELD_LABELS.get(r.field, r.field)
        if r.field == "deposit_base" and r.account_id:
            label = f"{label}（{r.account.depositor.name} {r.account.account_no}）"
        rows.append(
            HistoryRow(
                record=r,
                field_label=label,
                operator_name=names[r.actor],
                channel_label=CHANNEL_LABELS.get(r.channel, r.channel),
                status_label=STATUS_LABELS.get(r.status, r.status),
                effective_label=month_label(r.effective_from),
            )
        )
    return rows


def _record(
    employer_id: int,
    field_name: str,
    old,
    new,
    actor: str,
    effective_from: str,
    status: str = "applied",
    account: Account | None = None,
) -> ChangeRecord:
    return ChangeRecord.create(
        subject_type="employer",
        subject_id=employer_id,
        field=field_name,
        old_value=None if old in (None, "") else str(old),
        new_value=None if new in (None, "") else str(new),
        channel="online",
        effective_from=effective_from,
        actor=actor,
        changed_at=utcnow(),
        account=account,
        status=status,
    )


def _supersede(employer_id: int, field_name: str, account_id: int | None = None) -> None:
    """A new change of a field replaces a change of it still waiting for its month."""
    query = ChangeRecord.update(status="superseded").where(
        (ChangeRecord.subject_type == "employer")
        & (ChangeRecord.subject_id == employer_id)
        & (ChangeRecord.field == field_name)
        & (ChangeRecord.status == "scheduled")
    )
    if account_id is not None:
        query = query.where(ChangeRecord.account == account_id)
    query.execute()


# --- contact and address (instant) --------------------------------------------------------


def change_contact(
    operator: EmployerOperator, name: str, phone: str, challenge_id, code: str, today: date
) -> list[ChangeRecord]:
    name = " ".join((name or "").split())
    if not 2 <= len(name) <= 40:
        raise Refused("请填写 2–40 个字的联系人姓名", "contact_name")
    phone = check_phone(phone)
    employer = _fresh_employer(operator)
    if name == employer.contact_name and phone == employer.contact_phone:
        raise Refused("联系人和联系电话与当前登记的相同", "contact_name")
    actor = _actor(operator)
    with write_tx():
        _verify(operator, "change", challenge_id, code)
        current = locked(Employer.select().where(Employer.id == employer.id)).get()
        records = []
        if name != current.contact_name:
            records.append(
                _record(
                    current.id, "contact_name", current.contact_name, name, actor, month_of(today)
                )
            )
        if phone != current.contact_phone:
            records.append(
                _record(
                    current.id,
                    "contact_phone",
                    mask_phone(current.contact_phone) if current.contact_phone else None,
                    mask_phone(phone),
                    actor,
                    month_of(today),
                )
            )
        Employer.update(contact_name=name, contact_phone=phone).where(
            Employer.id == current.id
        ).execute()
        audit.record(actor, "employer.contact_changed", "employer", current.id)
    return records


def change_address(
    operator: EmployerOperator, address: str, challenge_id, code: str, today: date
) -> ChangeRecord:
    address = " ".join((address or "").split())
    if not 4 <= len(address) <= 200:
        raise Refused("请填写 4–200 个字的单位地址", "address")
    employer = _fresh_employer(operator)
    if address == employer.address:
        raise Refused("新地址与当前登记的单位地址相同", "address")
    actor = _actor(operator)
    with write_tx():
        _verify(operator, "change", challenge_id, code)
        current = locked(Employer.select().where(Employer.id == employer.id)).get()
        record = _record(current.id, "address", current.address, address, actor, month_of(today))
        Employer.update(address=address).where(Employer.id == current.id).execute()
        audit.record(actor, "employer.address_changed", "employer", current.id)
    return record


# --- ratios and deposit base (from a stated month) ----------------------------------------


def _ratio(text, field_name: str, label: str, limits: Limits) -> int:
    try:
        value = Decimal(str(text).strip().rstrip("%"))
    except (InvalidOperation, AttributeError):
        raise Refused(f"{label}请填写整数百分比", field_name) from None
    if not value.is_finite() or value != value.to_integral_value():
        raise Refused(f"{label}请填写整数百分比", field_name)
    value = int(value)
    if not limits.ratio_min <= value <= limits.ratio_max:
        raise Refused(
            f"{label}须在 {limits.ratio_min}%–{limits.ratio_max}% 之间，您填写的是 {value}%",
            field_name,
        )
    return value


def check_ratios(employer_ratio, employee_ratio, month: str) -> tuple[int, int]:
    """Each ratio within the range in force in ``month``; equal when the center requires it."""
    limits = limits_on(first_day(month))
    mine = _ratio(employer_ratio, "employer_ratio", "单位缴存比例", limits)
    theirs = _ratio(employee_ratio, "employee_ratio", "个人缴存比例", limits)
    if limits.ratio_equal and mine != theirs:
        raise Refused(
            f"本中心规定单位和个人缴存比例须相同（您填写的是单位 {mine}%、个人 {theirs}%）",
            "employee_ratio",
        )
    return mine, theirs


def _apply_ratio(employer_id: int, field_name: str, value: int) -> None:
    Employer.update({getattr(Employer, field_name): value}).where(
        Employer.id == employer_id
    ).execute()
    Account.update({getattr(Account, field_name): value}).where(
        (Account.employer == employer_id) & (Account.status != "销户")
    ).execute()


def change_ratios(
    operator: EmployerOperator,
    employer_ratio,
    employee_ratio,
    effective_from: str,
    challenge_id,
    code: str,
    today: date,
) -> list[ChangeRecord]:
    """New ratios for the employer and all its accounts from ``effective_from``."""
    month = parse_month(effective_from, today)
    mine, theirs = check_ratios(employer_ratio, employee_ratio, month)
    employer = _fresh_employer(operator)
    wanted = {"employer_ratio": mine, "employee_ratio": theirs}
    if all(getattr(employer, f) == v for f, v in wanted.items()) and not _scheduled(
        employer.id, RATIO_FIELDS
    ):
        raise Refused("缴存比例与当前相同，无需变更", "employer_ratio")
    due = month <= month_of(today)
    actor = _actor(operator)
    with write_tx():
        _verify(operator, "change", challenge_id, code)
        current = locked(Employer.select().where(Employer.id == employer.id)).get()
        records = []
        for name, value in wanted.items():
            old = getattr(current, name)
            if old == value and not _scheduled(current.id, (name,)):
                continue
            _supersede(current.id, name)
            records.append(
                _record(
                    current.id,
                    name,
                    f"{old}%",
                    f"{value}%",
                    actor,
                    month,
                    "applied" if due else "scheduled",
                )
            )
            if due:
                _apply_ratio(current.id, name, value)
        audit.record(
            actor,
            "employer.ratios_changed" if due else "employer.ratios_scheduled",
            "employer",
            current.id,
            employer_ratio=mine,
            employee_ratio=theirs,
            effective_from=month,
        )
    return records


def _scheduled(employer_id: int, fields: tuple[str, ...], account_id: int | None = None) -> bool:
    query = ChangeRecord.select().where(
        (ChangeRecord.subject_type == "employer")
        & (ChangeRecord.subject_id == employer_id)
        & ChangeRecord.field.in_(fields)
        & (ChangeRecord.status == "scheduled")
    )
    if account_id is not None:
        query = query.where(ChangeRecord.account == account_id)
    return query.exists()


def parse_base(text) -> Decimal:
    try:
        value = Decimal(str(text).replace(",", "").strip())
    except (InvalidOperation, AttributeError):
        raise Refused("请填写金额，例如 6500.00", "deposit_base") from None
    if not value.is_finite() or value <= 0:
        raise Refused("缴存基数须大于 0", "deposit_base")
    if value != value.quantize(Decimal("0.01")):
        raise Refused("金额最多两位小数", "deposit_base")
    return quantize(value)


def check_base(value: Decimal, month: str) -> Decimal:
    limits = limits_on(first_day(month))
    if limits.base_floor is not None and value < limits.base_floor:
        raise Refused(
            f"缴存基数不得低于本地下限 {limits.base_floor:,.2f} 元（您填写的是 {value:,.2f} 元）",
            "deposit_base",
        )
    if limits.base_ceiling is not None and value > limits.base_ceiling:
        raise Refused(
            f"缴存基数不得高于本地上限 {limits.base_ceiling:,.2f} 元（您填写的是 {value:,.2f} 元）",
            "deposit_base",
        )
    return value


def change_base(
    operator: EmployerOperator,
    account_id: int,
    new_base,
    effective_from: str,
    challenge_id,
    code: str,
    today: date,
) -> ChangeRecord:
    """One depositor's deposit base, within the floor and ceiling of the effective month."""
    employer = _fresh_employer(operator)
    account = own_account(employer, account_id)
    if account.status == "销户":
        raise Refused("该职工账户已销户，不能调整缴存基数", "deposit_base")
    value = parse_base(new_base)
    month = parse_month(effective_from, today)
    check_base(value, month)
    if value == account.deposit_base and not _scheduled(employer.id, ("deposit_base",), account.id):
        raise Refused("新缴存基数与当前相同", "deposit_base")
    due = month <= month_of(today)
    actor = _actor(operator)
    with write_tx():
        _verify(operator, "change", challenge_id, code)
        current = locked(
            Account.select().where((Account.id == account.id) & (Account.employer == employer))
        ).first()
        if current is None:
            raise NotFound(account_id)
        _supersede(employer.id, "deposit_base", current.id)
        record = _record(
            employer.id,
            "deposit_base",
            f"{current.deposit_base:.2f}",
            f"{value:.2f}",
            actor,
            month,
            "applied" if due else "scheduled",
            account=current,
        )
        if due:
            Account.update(deposit_base=value).where(Account.id == current.id).execute()
        audit.record(
            actor,
            "account.base_changed" if due else "account.base_scheduled",
            "account",
            current.id,
            effective_from=month,
        )
    return record


def apply_due(today: date, employer: Employer | None = None) -> int:
    """Apply scheduled ratio and base changes whose month has begun; returns how many.

    Each change flips from "scheduled" to "applied" by a conditional update, so two
    requests (or the CLI and a request) never apply one twice."""
    month = month_of(today)
    query = ChangeRecord.select().where(
        (ChangeRecord.subject_type == "employer")
        & (ChangeRecord.status == "scheduled")
        & (ChangeRecord.effective_from <= month)
    )
    if employer is not None:
        query = query.where(ChangeRecord.subject_id == employer.id)
    if not query.exists():
        return 0
    done = 0
    with write_tx():
        for record in query.order_by(ChangeRecord.effective_from, ChangeRecord.id):
            won = (
                ChangeRecord.update(status="applied")
                .where((ChangeRecord.id == record.id) & (ChangeRecord.status == "scheduled"))
                .execute()
            )
            if not won:
                continue
            value = (record.new_value or "").rstrip("%")
            if record.field in RATIO_FIELDS:
                _apply_ratio(record.subject_id, record.field, int(value))
            elif record.field == "deposit_base" and record.account_id:
                Account.update(deposit_base=Decimal(value)).where(
                    (Account.id == record.account_id) & (Account.employer == record.subject_id)
                ).execute()
            audit.record(
                "system",
                "employer.change_applied",
                "employer",
                record.subject_id,
                field=record.field,
                effective_from=record.effective_from,
            )
            done += 1
    return done


# --- operators ----------------------------------------------------------------------------


@dataclass
class OperatorRow:
    operator: EmployerOperator
    masked_id: str
    masked_phone: str
    state: str  # active / pending / disabled
    state_label: str
    is_me: bool


OPERATOR_STATES = {"active": "已激活", "pending": "待激活", "disabled": "已停用"}


def operator_rows(operator: EmployerOperator) -> list[OperatorRow]:
    rows = []
    for o in (
        EmployerOperator.select()
        .where(EmployerOperator.employer == operator.employer_id)
        .order_by(EmployerOperator.is_primary.desc(), EmployerOperator.id)
    ):
        state = "disabled" if not o.active else ("active" if o.password_hash else "pending")
        rows.append(
            OperatorRow(
                operator=o,
                masked_id=mask_resident_id(o.resident_id),
                masked_phone=mask_phone(o.phone),
                state=state,
                state_label=OPERATOR_STATES[state],
                is_me=o.id == operator.id,
            )
        )
    return rows


def _require_primary(operator: EmployerOperator) -> None:
    fresh = EmployerOperator.get_or_none(EmployerOperator.id == operator.id)
    if fresh is None or not fresh.is_primary or not fresh.active:
        raise Forbidden


def managed_operator(primary: EmployerOperator, operator_id: int) -> EmployerOperator:
    """Another operator of the primary operator's own employer (NotFound otherwise)."""
    _require_primary(primary)
    other = EmployerOperator.get_or_none(
        (EmployerOperator.id == operator_id) & (EmployerOperator.employer == primary.employer_id)
    )
    if other is None:
        raise NotFound(operator_id)
    return other


def _send_activation(operator: EmployerOperator, employer: Employer, notice: str) -> OtpChallenge:
    """The notice first, then the code (its own SMS, so the code's SMS is the newest)."""
    sms.send(operator.phone, notice)
    return identity.send_code(ACTIVATION_PURPOSE, subject(operator), operator.phone)


def _activation_notice(employer: Employer, operator_name: str, first: bool) -> str:
    what = (
        f"贵单位“{employer.name}”已在住房公积金中心登记开户（单位账号 {employer.account_no}），"
        f"{operator_name}为单位主经办人。"
        if first
        else f"{operator_name}您好，您已被登记为“{employer.name}”的住房公积金单位经办人。"
    )
    return (
        f"【经办人激活】{what}请访问单位网上业务大厅“经办人激活”页面（/employer/activate），"
        "凭统一社会信用代码、本人身份证号码和激活验证码设置登录密码；验证码过期可在页面重新获取。"
    )


def add_operator(
    primary: EmployerOperator, name: str, resident_id: str, phone: str, challenge_id, code: str
) -> EmployerOperator:
    _require_primary(primary)
    name = " ".join((name or "").split())
    if not 2 <= len(name) <= 40:
        raise Refused("请填写 2–40 个字的姓名", "name")
    resident_id = normalize_resident_id(resident_id)
    if not is_valid_resident_id(resident_id):
        raise Refused("身份证号码格式不正确", "resident_id")
    phone = check_mobile(phone)
    employer = _fresh_employer(primary)
    if (
        EmployerOperator.select()
        .where(
            (EmployerOperator.employer == employer) & (EmployerOperator.resident_id == resident_id)
        )
        .exists()
    ):
        raise Refused("该身份证号码已登记为本单位经办人", "resident_id")
    actor = _actor(primary)
    try:
        with write_tx():
            _verify(primary, "operator", challenge_id, code)
            new = EmployerOperator.create(
                employer=employer,
                resident_id=resident_id,
                name=name,
                phone=phone,
                password_hash=None,
                is_primary=False,
                active=True,
            )
            audit.record(
                actor,
                "operator.added",
                "operator",
                new.id,
                employer=employer.id,
                who=mask_resident_id(resident_id),
            )
    except IntegrityError:
        raise Refused("该身份证号码已登记为本单位经办人", "resident_id") from None
    _send_activation(new, employer, _activation_notice(employer, name, first=False))
    return new


def set_operator_active(
    primary: EmployerOperator, operator_id: int, active: bool, challenge_id, code: str
) -> EmployerOperator:
    other = managed_operator(primary, operator_id)
    if other.id == primary.id or other.is_primary:
        raise Refused("不能停用主经办人", "code")
    if other.active == active:
        raise Refused("该经办人已是“%s”状态" % ("启用" if active else "停用"), "code")
    with write_tx():
        _verify(primary, "operator", challenge_id, code)
        EmployerOperator.update(active=active).where(EmployerOperator.id == other.id).execute()
        audit.record(
            _actor(primary),
            "operator.enabled" if active else "operator.disabled",
            "operator",
            other.id,
            employer=other.employer_id,
        )
    other.active = active
    return other


def remove_operator(primary: EmployerOperator, operator_id: int, challenge_id, code: str) -> None:
    other = managed_operator(primary, operator_id)
    if other.id == primary.id or other.is_primary:
        raise Refused("不能删除主经办人", "code")
    with write_tx():
        _verify(primary, "operator", challenge_id, code)
        EmployerOperator.delete().where(EmployerOperator.id == other.id).execute()
        audit.record(
            _actor(primary),
            "operator.removed",
            "operator",
            other.id,
            employer=other.employer_id,
            who=mask_resident_id(other.resident_id),
        )


# --- activation (first password) ----------------------------------------------------------


def _pending_operator(credit_code: str, resident_id: str) -> EmployerOperator | None:
    return (
        EmployerOperator.select(EmployerOperator, Employer)
        .join(Employer)
        .where(
            (Employer.credit_code == normalize_uscc(credit_code))
            & (EmployerOperator.resident_id == normalize_resident_id(resident_id))
            & EmployerOperator.active
            & EmployerOperator.password_hash.is_null()
            & (Employer.status != "注销")
        )
        .first()
    )


def resend_activation(credit_code: str, resident_id: str) -> bool:
    """A fresh activation code for an operator who has not set a password yet. Says whether
    one was sent; the page does not tell the visitor (no hint who is registered)."""
    operator = _pending_operator(credit_code, resident_id)
    if operator is None:
        return False
    if not ratelimit.hit(f"sms:o:{operator.id}", SMS_LIMIT, SMS_WINDOW):
        raise Refused("验证码发送过于频繁，请 10 分钟后再试。", "code")
    identity.send_code(ACTIVATION_PURPOSE, subject(operator), operator.phone)
    return True


ACTIVATION_FAILED = "统一社会信用代码、身份证号码或激活验证码不正确，或验证码已过期"


def activate(
    credit_code: str, resident_id: str, code: str, password: str, confirm: str, ip: str = ""
) -> EmployerOperator:
    """Check the newest activation code and set the operator's first password."""
    try:
        identity.validate_new_password(password, confirm)
    except identity.PasswordRejected as exc:
        raise Refused(str(exc), "password") from None
    operator = _pending_operator(credit_code, resident_id)
    if operator is None:
        audit.record(
            "anonymous",
            "operator.activate_failed",
            "operator",
            "",
            ip=ip,
            who=mask_resident_id(resident_id),
        )
        raise Refused(ACTIVATION_FAILED, "code")
    challenge = (
        OtpChallenge.select(OtpChallenge.id)
        .where(
            (OtpChallenge.purpose == ACTIVATION_PURPOSE)
            & (OtpChallenge.subject == subject(operator))
            & OtpChallenge.used_at.is_null()
        )
        .order_by(OtpChallenge.id.desc())
        .first()
    )
    try:
        identity.verify_code(
            challenge.id if challenge else None, ACTIVATION_PURPOSE, subject(operator), code
        )
    except identity.CodeFailed:
        audit.record(
            "anonymous",
            "operator.activate_failed",
            "operator",
            operator.id,
            ip=ip,
            who=mask_resident_id(resident_id),
        )
        raise Refused(ACTIVATION_FAILED, "code") from None
    with write_tx():
        won = (
            EmployerOperator.update(
                password_hash=identity.hash_password(password), activated_at=utcnow()
            )
            .where((EmployerOperator.id == operator.id) & EmployerOperator.password_hash.is_null())
            .execute()
        )
        if not won:
            raise Refused(ACTIVATION_FAILED, "code")
        audit.record(
            f"operator:{operator.id}", "operator.activated", "operator", operator.id, ip=ip
        )
    return operator


# --- registration (the 单位登记开户 case, processed by the intranet) ----------------------


def _next_account_no() -> str:
    center = Center.get_or_none(Center.is_self)
    prefix = f"{center.code if center else '152900'}01"
    highest = (
        Employer.select(fn.MAX(Employer.account_no))
        .where(Employer.account_no.startswith(prefix))
        .scalar()
    )
    seq = int(highest[len(prefix) :]) + 1 if highest and highest[len(prefix) :].isdigit() else 1
    return f"{prefix}{seq:06d}"


def register_employer(
    *,
    name: str,
    credit_code: str,
    address: str,
    operator_name: str,
    operator_resident_id: str,
    operator_phone: str,
    today: date,
    actor: str,
    contact_name: str | None = None,
    contact_phone: str | None = None,
    employer_ratio: int | None = None,
    employee_ratio: int | None = None,
    department: Department | None = None,
    case: ProxyCase | None = None,
) -> Employer:
    """Open the employer account (单位登记开户) with its first, primary operator, who is sent
    an activation code. Refuses an invalid or already-registered credit code."""
    credit_code = normalize_uscc(credit_code)
    if not is_valid_uscc(credit_code):
        raise Refused("统一社会信用代码不正确（校验位不符）", "credit_code")
    name = " ".join((name or "").split())
    if not 2 <= len(name) <= 120:
        raise Refused("请填写单位名称", "name")
    address = " ".join((address or "").split())
    if not 4 <= len(address) <= 200:
        raise Refused("请填写 4–200 个字的单位地址", "address")
    operator_name = " ".join((operator_name or "").split())
    if not 2 <= len(operator_name) <= 40:
        raise Refused("请填写经办人姓名", "operator_name")
    operator_resident_id = normalize_resident_id(operator_resident_id)
    if not is_valid_resident_id(operator_resident_id):
        raise Refused("经办人身份证号码格式不正确", "operator_resident_id")
    operator_phone = check_mobile(operator_phone, "operator_phone")
    contact_name = " ".join((contact_name or operator_name).split())
    contact_phone = check_phone(contact_phone or operator_phone)
    limits = limits_on(today)
    mine, theirs = check_ratios(
        limits.ratio_max if employer_ratio is None else employer_ratio,
        limits.ratio_max if employee_ratio is None else employee_ratio,
        month_of(today),
    )
    if case is not None and department is None and case.department_id:
        department = Department.get_or_none(Department.id == case.department_id)
    existing = Employer.get_or_none(Employer.credit_code == credit_code)
    if existing is not None:
        raise Refused(
            f"统一社会信用代码 {credit_code} 的单位已登记开户（单位账号 {existing.account_no}），"
            "不能重复开户",
            "credit_code",
        )
    for _attempt in range(5):
        try:
            with write_tx():
                employer = Employer.create(
                    credit_code=credit_code,
                    name=name,
                    address=address,
                    contact_name=contact_name,
                    contact_phone=contact_phone,
                    employer_ratio=mine,
                    employee_ratio=theirs,
                    status="正常",
                    department=department,
                    account_no=_next_account_no(),
                    opened_on=today,
                )
                operator = EmployerOperator.create(
                    employer=employer,
                    resident_id=operator_resident_id,
                    name=operator_name,
                    phone=operator_phone,
                    is_primary=True,
                    active=True,
                )
                if case is not None:
                    ProxyCase.update(employer=employer).where(ProxyCase.id == case.id).execute()
                audit.record(
                    actor,
                    "employer.registered",
                    "employer",
                    employer.id,
                    account_no=employer.account_no,
                    case=case.case_no if case is not None else "",
                )
            break
        except IntegrityError:
            if Employer.select().where(Employer.credit_code == credit_code).exists():
                raise Refused(
                    f"统一社会信用代码 {credit_code} 的单位已登记开户，不能重复开户", "credit_code"
                ) from None
            continue  # the account number was taken meanwhile: draw the next one
    else:
        raise RuntimeError("could not allocate an employer account number")
    _send_activation(operator, employer, _activation_notice(employer, operator_name, first=True))
    return employer


# --- registration tracking without login --------------------------------------------------


@dataclass
class RegistrationTrack:
    view: tracking.CaseView
    account_no: str | None = None
    opened_on: date | None = None
    notes: list[str] = field(default_factory=list)


def track_registration(receipt_no: str, credit_code: str, today: date) -> RegistrationTrack | None:
    """The 单位登记开户 case with this receipt number and credit code, or None."""
    receipt_no = "".join((receipt_no or "").split()).upper()
    credit_code = normalize_uscc(credit_code)
    if not receipt_no or not credit_code:
        return None
    case = ProxyCase.get_or_none(
        (ProxyCase.receipt_no == receipt_no) & (ProxyCase.item == "employer_registration")
    )
    if case is None or normalize_uscc((case.application or {}).get("credit_code")) != credit_code:
        return None
    view = tracking._view(case, today, settings.holiday_overrides())  # one view of a case
    result = RegistrationTrack(view)
    employer = Employer.get_or_none(Employer.id == case.employer_id) if case.employer_id else None
    if employer is not None and employer.credit_code == credit_code:
        result.account_no, result.opened_on = employer.account_no, employer.opened_on
    return result


# --- Excel export -------------------------------------------------------------------------


def detail_xlsx(operator: EmployerOperator, today: date) -> bytes:
    """The employer account detail and the roster as a workbook; ID numbers masked."""
    from io import BytesIO

    from openpyxl import Workbook
    from openpyxl.styles import Font

    employer = _fresh_employer(operator)
    wb = Workbook()
    ws = wb.active
    ws.title = "单位账户明细"
    ws.append([f"{employer.name}（单位账号 {employer.account_no}）单位账户明细"])
    ws.append(["入账日期", "业务类型", "所属年月", "人数", "发生额（元）", "累计汇缴额（元）"])
    for cell in ws[2]:
        cell.font = Font(bold=True)
    for line in reversed(ledger_lines(employer)):
        ws.append(
            [line.posted_on, line.kind, line.period or "", line.persons, line.amount, line.balance]
        )
        ws.cell(row=ws.max_row, column=1).number_format = "yyyy-mm-dd"
        for col in (5, 6):
            ws.cell(row=ws.max_row, column=col).number_format = "#,##0.00"
    for col, width in zip("ABCDEF", (12, 10, 10, 8, 16, 18), strict=True):
        ws.column_dimensions[col].width = width
    ws.freeze_panes = "A3"

    sheet = wb.create_sheet("职工名册")
    sheet.append(
        [
            "个人账号",
            "姓名",
            "身份证号码",
            "缴存基数（元）",
            "单位比例",
            "个人比例",
            "月缴存额（元）",
            "账户状态",
            "缴至年月",
        ]
    )
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    query = (
        Account.select(Account, Depositor)
        .join(Depositor, on=(Account.depositor == Depositor.id))
        .where(Account.employer == employer)
        .order_by(Account.account_no)
    )
    count = 0
    for a in query:
        sheet.append(
            [
                a.account_no,
                a.depositor.name,
                mask_resident_id(a.depositor.resident_id),
                a.deposit_base,
                f"{a.employer_ratio}%",
                f"{a.employee_ratio}%",
                a.monthly_amount,
                a.status,
                a.paid_up_to or "",
            ]
        )
        for col in (4, 7):
            sheet.cell(row=sheet.max_row, column=col).number_format = "#,##0.00"
        count += 1
    for col, width in zip("ABCDEFGHI", (16, 10, 22, 14, 9, 9, 14, 9, 10), strict=True):
        sheet.column_dimensions[col].width = width
    wb.properties.title = "单位账户明细"
    wb.properties.creator = "hpf-portal"
    buffer = BytesIO()
    wb.save(buffer)
    with write_tx():
        audit.record(
            _actor(operator),
            "employer.export",
            "employer",
            employer.id,
            depositors=count,
            on=today.isoformat(),
        )
    return buffer.getvalue()
