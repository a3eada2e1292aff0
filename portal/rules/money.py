"""Money rules: ``Decimal`` yuan rounded to the fen with ROUND_HALF_UP; floats are refused.

Loans (schedules, payoff, rates, quota) and deposit interest by the 积数 method. Day ranges are
"算头不算尾": from ``since`` inclusive to ``until`` exclusive.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from functools import lru_cache
from types import MappingProxyType
from typing import NamedTuple

from portal.rules.dates import add_months, whole_months_between
from portal.rules.retirement import statutory_retirement_date

FEN = Decimal("0.01")
ZERO = Decimal("0.00")
DAY_BASIS = 360
DEPOSIT_RATE = Decimal("0.015")
METHODS = ("annuity", "equal_principal")


def _dec(x: Decimal | int, name: str = "amount") -> Decimal:
    """``x`` as a finite Decimal; TypeError for floats (and anything but Decimal or int)."""
    if isinstance(x, Decimal):
        if not x.is_finite():
            raise ValueError(f"{name} must be finite")
        return x
    if isinstance(x, int) and not isinstance(x, bool):
        return Decimal(x)
    raise TypeError(f"{name} must be Decimal or int, not {type(x).__name__}")


def quantize(x: Decimal | int) -> Decimal:
    """``x`` rounded to the fen (0.01), half up."""
    return _dec(x).quantize(FEN, rounding=ROUND_HALF_UP)


to_fen = quantize


def fen_to_yuan(fen: int) -> Decimal:
    """Integer fen to Decimal yuan: 12345 -> Decimal('123.45')."""
    if not isinstance(fen, int) or isinstance(fen, bool):
        raise TypeError(f"fen must be int, not {type(fen).__name__}")
    return Decimal(fen).scaleb(-2)


def yuan_to_fen(yuan: Decimal | int) -> int:
    """Decimal yuan to integer fen, rounded half up: Decimal('1.005') -> 101."""
    return int(quantize(yuan).scaleb(2))


# Loan repayment


@dataclass(frozen=True)
class Instalment:
    """One row of a repayment schedule; ``remaining`` is the principal left after it."""

    period: int
    due_date: date
    principal: Decimal
    interest: Decimal
    payment: Decimal
    remaining: Decimal


def annuity_payment(principal: Decimal, annual_rate: Decimal, months: int) -> Decimal:
    """Monthly payment of 等额本息 (monthly rate = annual / 12), rounded to the fen."""
    amount, r = _dec(principal, "principal"), _dec(annual_rate, "annual_rate") / 12
    if months < 1:
        raise ValueError("months must be at least 1")
    if r == 0:
        return quantize(amount / months)
    growth = (1 + r) ** months
    return quantize(amount * r * growth / (growth - 1))


def repayment_schedule(
    principal: Decimal,
    annual_rate: Decimal,
    months: int,
    first_due: date,
    method: str = "annuity",
) -> list[Instalment]:
    """Schedule for ``method`` "annuity" (等额本息) or "equal_principal" (等额本金).

    Interest each month is the remaining principal times annual / 12; due dates are monthly from
    ``first_due`` (day clamped to the month's end); the last row takes the rounding remainder, so
    the principals add up exactly to ``principal``.
    """
    amount = _dec(principal, "principal")
    rate = _dec(annual_rate, "annual_rate")
    if amount < 0 or amount != quantize(amount):
        raise ValueError("principal must be a non-negative amount in fen")
    if rate < 0:
        raise ValueError("annual_rate must not be negative")
    if method not in METHODS:
        raise ValueError(f"unknown repayment method: {method!r}")
    if months < 1:
        raise ValueError("months must be at least 1")
    # a loan's page works the same schedule out on every view and for every year it pages
    # through: kept for the last few loans' terms (issue 10; a 30-year schedule is ~200 KB)
    return list(_schedule(str(amount), str(rate), months, first_due, method))


@lru_cache(maxsize=32)
def _schedule(
    amount_text: str, rate_text: str, months: int, first_due: date, method: str
) -> tuple[Instalment, ...]:
    amount, rate = Decimal(amount_text), Decimal(rate_text)
    monthly_rate = rate / 12
    annuity = annuity_payment(amount, rate, months) if method == "annuity" else None
    equal_part = quantize(amount / months)

    rows = []
    remaining = amount
    for period in range(1, months + 1):
        interest = quantize(remaining * monthly_rate)
        if period == months:
            part = remaining
        elif annuity is not None:
            part = min(annuity - interest, remaining)
        else:
            part = min(equal_part, remaining)
        remaining -= part
        due = add_months(first_due, period - 1)
        rows.append(Instalment(period, due, part, interest, part + interest, remaining))
    return tuple(rows)


class Payoff(NamedTuple):
    principal: Decimal
    interest: Decimal
    total: Decimal


def payoff_amount(
    outstanding_principal: Decimal,
    annual_rate: Decimal,
    last_due_date: date,
    on_date: date,
    day_basis: int = DAY_BASIS,
) -> Payoff:
    """Early full repayment: principal plus interest for the actual days since the last due date.

    interest = principal x annual_rate x days / day_basis, days = ``on_date - last_due_date``.
    """
    amount = quantize(_dec(outstanding_principal, "outstanding_principal"))
    rate = _dec(annual_rate, "annual_rate")
    if on_date < last_due_date:
        raise ValueError("on_date is before the last due date")
    interest = quantize(amount * rate * (on_date - last_due_date).days / day_basis)
    return Payoff(amount, interest, amount + interest)


# Deposit interest (积数 method)

BalanceEvent = tuple[date, Decimal]


def balance_product(
    events: Iterable[BalanceEvent],
    since: date,
    until: date,
    opening_balance: Decimal = ZERO,
) -> Decimal:
    """积数: the sum of end-of-day balances for each day from ``since`` to ``until`` (exclusive).

    ``events`` are (date, balance after the change); a change on a day sets that day's balance.
    Events before ``since`` set the opening balance; ``opening_balance`` applies before any event.
    Same-day events apply in the order given.
    """
    if until < since:
        raise ValueError("until is before since")
    balance = _dec(opening_balance, "opening_balance")
    day, total = since, Decimal(0)
    for when, after in sorted(events, key=lambda event: event[0]):
        if when >= until:
            break
        if when > day:
            total += balance * (when - day).days
            day = when
        balance = _dec(after, "balance")
    return total + balance * (until - day).days


def deposit_interest(
    events: Iterable[BalanceEvent],
    since: date,
    until: date,
    annual_rate: Decimal = DEPOSIT_RATE,
    opening_balance: Decimal = ZERO,
) -> Decimal:
    """Interest for days ``since`` (inclusive) to ``until`` (exclusive): 积数 x annual / 360."""
    product = balance_product(events, since, until, opening_balance)
    return quantize(product * _dec(annual_rate, "annual_rate") / DAY_BASIS)


def last_settlement_date(on_date: date) -> date:
    """The most recent 30 June on or before ``on_date`` (结息日)."""
    this_year = date(on_date.year, 6, 30)
    return this_year if this_year <= on_date else date(on_date.year - 1, 6, 30)


def accrued_interest(
    events: Iterable[BalanceEvent],
    since: date | None,
    until: date,
    annual_rate: Decimal = DEPOSIT_RATE,
    opening_balance: Decimal = ZERO,
) -> Decimal:
    """Interest not yet settled, for a withdrawal on ``until``.

    Days from the last settlement ``since`` (inclusive; ``last_settlement_date(until)`` when None)
    to ``until`` (exclusive). A settlement on 30 June covers the year up to 29 June, so a payout on
    30 June itself must follow that day's settlement.
    """
    if since is None:
        since = last_settlement_date(until)
    return deposit_interest(events, since, until, annual_rate, opening_balance)


# Loan rates (configuration with effective dates)

RATE_KEYS = ("first_le5", "first_gt5", "second_le5", "second_gt5")
RateTable = Sequence[tuple[date, Mapping[str, Decimal]]]


def _rates(first_le5: str, first_gt5: str, second_le5: str, second_gt5: str) -> Mapping:
    values = (first_le5, first_gt5, second_le5, second_gt5)
    return MappingProxyType(dict(zip(RATE_KEYS, map(Decimal, values), strict=True)))


DEFAULT_RATE_TABLE: RateTable = (
    (date(2024, 5, 18), _rates("0.0235", "0.0285", "0.02775", "0.03325")),
    (date(2025, 5, 8), _rates("0.021", "0.026", "0.02525", "0.03075")),
)


def rate_key(term_months: int, first_home: bool = True) -> str:
    """Rate-table key: first/second home, term up to 5 years (60 months) or longer."""
    return ("first" if first_home else "second") + ("_le5" if term_months <= 60 else "_gt5")


def _entry_index(table: RateTable, on_date: date) -> int:
    """Index of the newest entry effective on ``on_date`` in ``table`` (sorted by date)."""
    index = -1
    for i, (effective, _) in enumerate(table):
        if effective <= on_date:
            index = i
    if index < 0:
        raise ValueError(f"no loan rate in effect on {on_date}")
    return index


def rate_for(
    rate_table: RateTable, on_date: date, term_months: int, first_home: bool = True
) -> Decimal:
    """Annual rate for a new loan signed on ``on_date``."""
    table = sorted(rate_table, key=lambda entry: entry[0])
    return table[_entry_index(table, on_date)][1][rate_key(term_months, first_home)]


def rate_for_existing_loan(
    rate_table: RateTable,
    contract_date: date,
    on_date: date,
    term_months: int,
    first_home: bool = True,
) -> Decimal:
    """Annual rate of a loan signed on ``contract_date``, as it applies on ``on_date``.

    A change reaches existing loans on the 1 January after it takes effect, never going back
    before the contract's rate. Loans of a year or less keep the contract rate.
    """
    table = sorted(rate_table, key=lambda entry: entry[0])
    index = _entry_index(table, contract_date)
    if term_months > 12:
        for i in range(index + 1, len(table)):
            if date(table[i][0].year + 1, 1, 1) <= on_date:
                index = i
    return table[index][1][rate_key(term_months, first_home)]


# Loan quota (可贷额度试算)


def present_value(payment: Decimal, annual_rate: Decimal, months: int) -> Decimal:
    """The loan that a monthly annuity ``payment`` repays over ``months`` (not rounded)."""
    pmt, r = _dec(payment, "payment"), _dec(annual_rate, "annual_rate") / 12
    if r == 0:
        return pmt * months
    return pmt * (1 - (1 + r) ** -months) / r


@dataclass(frozen=True)
class LoanQuota:
    """Result of the quota trial; ``amount`` is rounded down to whole hundreds of yuan.

    ``limited_by``: "ceiling", "balance" (balance x multiple), "repayment" (income) or "term"
    (no term left before the age limit). ``term_limited_by``: "requested", "max_term" or "age".
    """

    amount: Decimal
    term_months: int
    monthly_payment: Decimal
    limited_by: str
    term_limited_by: str
    retirement_date: date


QUOTA_STEP = Decimal(100)


def loan_quota(
    balance: Decimal,
    monthly_income: Decimal,
    *,
    ceiling: Decimal,
    balance_multiple: Decimal | int,
    repayment_ratio: Decimal,
    rate: Decimal,
    birth: date,
    category: str,
    today: date,
    existing_monthly_payments: Decimal = ZERO,
    requested_term_months: int | None = None,
    max_term_months: int = 360,
    years_after_retirement: int = 5,
) -> LoanQuota:
    """The most one may borrow: min(ceiling, balance x multiple, repayment capacity).

    Capacity is the present value of (income x ratio - existing monthly payments) paid monthly
    over the term; the term is min(requested or max, max, months to the statutory retirement
    date + ``years_after_retirement`` years).
    """
    rate = _dec(rate, "rate")
    capacity = _dec(monthly_income, "monthly_income") * _dec(repayment_ratio, "repayment_ratio")
    capacity -= _dec(existing_monthly_payments, "existing_monthly_payments")
    limits = {
        "ceiling": _dec(ceiling, "ceiling"),
        "balance": _dec(balance, "balance") * _dec(balance_multiple, "balance_multiple"),
    }

    retires = statutory_retirement_date(birth, category)
    terms = {
        "requested": requested_term_months,
        "max_term": max_term_months,
        "age": whole_months_between(today, retires) + 12 * years_after_retirement,
    }
    term_limited_by = min((k for k, v in terms.items() if v is not None), key=terms.__getitem__)
    term = max(0, terms[term_limited_by])
    if term == 0:
        return LoanQuota(ZERO, 0, ZERO, "term", term_limited_by, retires)

    limits["repayment"] = present_value(capacity, rate, term) if capacity > 0 else ZERO
    limited_by = min(limits, key=limits.__getitem__)
    steps = max(ZERO, limits[limited_by]) / QUOTA_STEP
    amount = quantize(steps.to_integral_value(rounding=ROUND_DOWN) * QUOTA_STEP)
    payment = annuity_payment(amount, rate, term) if amount else ZERO
    return LoanQuota(amount, term, payment, limited_by, term_limited_by, retires)
