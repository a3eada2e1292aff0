from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portal.rules.money import (
    DEFAULT_RATE_TABLE,
    DEPOSIT_RATE,
    LoanQuota,
    Payoff,
    accrued_interest,
    annuity_payment,
    balance_product,
    deposit_interest,
    fen_to_yuan,
    last_settlement_date,
    loan_quota,
    payoff_amount,
    present_value,
    quantize,
    rate_for,
    rate_for_existing_loan,
    rate_key,
    repayment_schedule,
    to_fen,
    yuan_to_fen,
)

D = Decimal
amounts = st.decimals(min_value=D("1000.00"), max_value=D("2000000.00"), places=2)
rates = st.decimals(min_value=D("0"), max_value=D("0.08"), places=5)


# rounding and conversion


@pytest.mark.parametrize(
    ("value", "rounded"),
    [
        (D("1.005"), D("1.01")),
        (D("2.675"), D("2.68")),  # a float would give 2.67
        (D("1.004999"), D("1.00")),
        (D("-1.005"), D("-1.01")),  # half away from zero
        (D("7"), D("7.00")),
        (7, D("7.00")),
    ],
)
def test_quantize_rounds_half_up_to_the_fen(value, rounded):
    assert quantize(value) == rounded
    assert str(quantize(value)) == str(rounded)
    assert to_fen(value) == rounded


def test_fen_yuan_conversion():
    assert fen_to_yuan(12345) == D("123.45")
    assert str(fen_to_yuan(0)) == "0.00"
    assert fen_to_yuan(-5) == D("-0.05")
    assert yuan_to_fen(D("123.45")) == 12345
    assert yuan_to_fen(D("1.005")) == 101
    assert yuan_to_fen(3) == 300


@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_fen_round_trip(fen):
    assert yuan_to_fen(fen_to_yuan(fen)) == fen


@pytest.mark.parametrize(
    "call",
    [
        lambda: quantize(1.5),
        lambda: to_fen(0.1),
        lambda: yuan_to_fen(1.23),
        lambda: fen_to_yuan(1.0),
        lambda: fen_to_yuan(True),
        lambda: quantize("1.00"),
        lambda: annuity_payment(100000.0, D("0.031"), 12),
        lambda: repayment_schedule(D("1000"), 0.031, 12, date(2026, 1, 1)),
        lambda: payoff_amount(D("1000"), 0.031, date(2026, 1, 1), date(2026, 1, 2)),
        lambda: deposit_interest([(date(2026, 1, 1), 100.0)], date(2026, 1, 1), date(2026, 2, 1)),
        lambda: present_value(1000.0, D("0.03"), 12),
        lambda: quota(rate=0.026),
        lambda: quota(birth=date(1950, 1, 1), ceiling=600000.0),  # refused even with no term
    ],
)
def test_floats_are_refused(call):
    with pytest.raises(TypeError):
        call()


def test_non_finite_decimals_are_refused():
    with pytest.raises(ValueError):
        quantize(D("NaN"))
    with pytest.raises(ValueError):
        quantize(D("Infinity"))


# repayment schedules


def test_annuity_known_payment():
    # 300,000 yuan, 30 years at 3.1%: the widely quoted 1,281.05 a month
    assert annuity_payment(D("300000"), D("0.031"), 360) == D("1281.05")
    rows = repayment_schedule(D("300000"), D("0.031"), 360, date(2026, 2, 20))
    first = rows[0]
    assert (first.period, first.due_date) == (1, date(2026, 2, 20))
    assert first.interest == D("775.00")  # 300000 x 0.031 / 12
    assert first.principal == D("506.05")
    assert first.payment == D("1281.05")
    assert first.remaining == D("299493.95")
    assert {row.payment for row in rows[:-1]} == {D("1281.05")}
    assert rows[-1].remaining == 0
    assert rows[-1].due_date == date(2056, 1, 20)


def test_equal_principal_known_rows():
    rows = repayment_schedule(D("360000"), D("0.031"), 360, date(2026, 1, 15), "equal_principal")
    assert rows[0].principal == D("1000.00")
    assert rows[0].interest == D("930.00")
    assert rows[0].payment == D("1930.00")
    assert rows[1].interest == D("927.42")  # 359000 x 0.031 / 12 = 927.416...
    assert rows[-1].principal == D("1000.00")
    assert rows[-1].interest == D("2.58")
    assert rows[-1].remaining == 0


def test_equal_principal_last_row_absorbs_rounding():
    rows = repayment_schedule(D("100.00"), D("0.03"), 3, date(2026, 1, 15), "equal_principal")
    assert [row.principal for row in rows] == [D("33.33"), D("33.33"), D("33.34")]


def test_zero_rate_schedule():
    rows = repayment_schedule(D("1200"), D("0"), 12, date(2026, 1, 1))
    assert {row.payment for row in rows} == {D("100.00")}
    assert {row.interest for row in rows} == {D("0.00")}


def test_due_dates_are_clamped_to_month_end_and_recover():
    rows = repayment_schedule(D("3000"), D("0.03"), 4, date(2026, 1, 31))
    assert [row.due_date for row in rows] == [
        date(2026, 1, 31),
        date(2026, 2, 28),
        date(2026, 3, 31),
        date(2026, 4, 30),
    ]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"method": "balloon"},
        {"months": 0},
        {"principal": D("1000.005")},
        {"principal": D("-1")},
        {"annual_rate": D("-0.01")},
    ],
)
def test_bad_schedule_arguments_are_refused(kwargs):
    args = {
        "principal": D("1000"),
        "annual_rate": D("0.03"),
        "months": 12,
        "first_due": date(2026, 1, 1),
    }
    with pytest.raises(ValueError):
        repayment_schedule(**{**args, **kwargs})


def test_a_schedule_asked_again_is_the_same_and_its_own_list():
    """Schedules are kept for the last loans' terms (issue 10); each call gets its own list."""
    first = repayment_schedule(D("3000.00"), D("0.031"), 24, date(2026, 1, 31))
    first.clear()  # a caller's change to its list reaches no one else
    again = repayment_schedule(D("3000.00"), D("0.031"), 24, date(2026, 1, 31))
    assert len(again) == 24 and again == repayment_schedule(
        D("3000.00"), D("0.031"), 24, date(2026, 1, 31)
    )
    assert again is not repayment_schedule(D("3000.00"), D("0.031"), 24, date(2026, 1, 31))
    other = repayment_schedule(D("3000.00"), D("0.031"), 24, date(2026, 2, 28))
    assert other[0].due_date == date(2026, 2, 28)  # other terms, another schedule


@settings(max_examples=60, deadline=None)
@given(
    principal=amounts,
    rate=rates,
    months=st.integers(min_value=1, max_value=360),
    method=st.sampled_from(["annuity", "equal_principal"]),
)
def test_schedule_invariants(principal, rate, months, method):
    rows = repayment_schedule(principal, rate, months, date(2026, 1, 31), method)
    assert len(rows) == months
    assert sum(row.principal for row in rows) == principal
    assert rows[-1].remaining == 0
    previous = principal
    for row in rows:
        assert row.payment == row.principal + row.interest
        assert row.principal >= 0 and row.interest >= 0
        assert row.remaining == previous - row.principal
        assert row.principal == quantize(row.principal) and row.interest == quantize(row.interest)
        previous = row.remaining
    if method == "annuity":
        assert len({row.payment for row in rows[:-1]}) <= 1
    else:
        assert all(a.payment >= b.payment for a, b in zip(rows[:-2], rows[1:-1], strict=True))


# payoff


def test_payoff_amount_actual_days_over_360():
    payoff = payoff_amount(D("100000.00"), D("0.031"), date(2026, 3, 20), date(2026, 4, 19))
    assert payoff == Payoff(D("100000.00"), D("258.33"), D("100258.33"))  # 30 days
    principal, interest, total = payoff
    assert total == principal + interest


def test_payoff_on_the_due_date_has_no_interest():
    assert payoff_amount(D("5000"), D("0.026"), date(2026, 3, 20), date(2026, 3, 20)).interest == 0


def test_payoff_day_basis_365():
    payoff = payoff_amount(D("100000"), D("0.0365"), date(2026, 1, 1), date(2026, 1, 11), 365)
    assert payoff.interest == D("100.00")


def test_payoff_before_last_due_date_is_refused():
    with pytest.raises(ValueError):
        payoff_amount(D("1000"), D("0.03"), date(2026, 3, 20), date(2026, 3, 19))


# deposit interest (积数)


def test_constant_balance_for_360_days_earns_the_annual_rate():
    events = [(date(2025, 1, 1), D("10000.00"))]
    assert deposit_interest(events, date(2025, 1, 1), date(2025, 12, 27)) == D("150.00")


def test_balance_product_counts_since_inclusive_until_exclusive():
    events = [(date(2025, 7, 1), D("1000")), (date(2025, 7, 6), D("3000"))]
    # 07-01..07-05 at 1000, 07-06..07-10 at 3000
    assert balance_product(events, date(2025, 7, 1), date(2025, 7, 11)) == D("20000")
    assert deposit_interest(events, date(2025, 7, 1), date(2025, 7, 11)) == D("0.83")


def test_events_before_since_set_the_opening_balance_and_after_until_are_ignored():
    events = [
        (date(2025, 8, 1), D("999999")),  # after until: ignored
        (date(2025, 5, 1), D("500")),
        (date(2025, 6, 1), D("800")),
    ]
    assert balance_product(events, date(2025, 7, 1), date(2025, 7, 11)) == D("8000")


def test_change_on_until_day_is_not_counted():
    events = [(date(2025, 7, 11), D("0"))]
    assert balance_product(events, date(2025, 7, 1), date(2025, 7, 11), D("100")) == D("1000")


def test_same_day_events_last_one_wins():
    events = [(date(2025, 7, 1), D("100")), (date(2025, 7, 1), D("300"))]
    assert balance_product(events, date(2025, 7, 1), date(2025, 7, 3)) == D("600")


def test_empty_period_and_reversed_period():
    assert balance_product([], date(2025, 7, 1), date(2025, 7, 1), D("100")) == 0
    with pytest.raises(ValueError):
        balance_product([], date(2025, 7, 2), date(2025, 7, 1))


@pytest.mark.parametrize(
    ("on_date", "settled"),
    [
        (date(2025, 6, 30), date(2025, 6, 30)),
        (date(2025, 7, 1), date(2025, 6, 30)),
        (date(2025, 12, 31), date(2025, 6, 30)),
        (date(2026, 1, 1), date(2025, 6, 30)),
        (date(2026, 6, 29), date(2025, 6, 30)),
    ],
)
def test_last_settlement_date(on_date, settled):
    assert last_settlement_date(on_date) == settled


def test_accrued_interest_since_last_settlement():
    events = [(date(2025, 6, 30), D("36000.00"))]  # balance after settlement
    until = date(2025, 10, 28)  # 120 days from 06-30 inclusive
    expected = D("180.00")  # 36000 x 120 x 0.015 / 360
    assert accrued_interest(events, date(2025, 6, 30), until) == expected
    assert accrued_interest(events, None, until) == expected
    assert accrued_interest(events, None, until, D("0.03")) == expected * 2


def test_default_deposit_rate():
    assert D("0.015") == DEPOSIT_RATE


segments = st.lists(
    st.tuples(st.integers(min_value=0, max_value=400), st.decimals(0, 10**6, places=2)),
    max_size=8,
)


@settings(max_examples=80)
@given(segments, st.integers(0, 400), st.integers(0, 400))
def test_balance_product_equals_the_daily_sum(raw, a, b):
    start = date(2025, 1, 1)
    since, until = sorted((start + timedelta(days=a), start + timedelta(days=b)))
    events = [(start + timedelta(days=k), balance) for k, balance in raw]

    def balance_on(day):
        past = [bal for when, bal in sorted(events, key=lambda e: e[0]) if when <= day]
        return past[-1] if past else D(0)

    daily = sum((balance_on(since + timedelta(days=k)) for k in range((until - since).days)), D(0))
    assert balance_product(events, since, until) == daily


@settings(max_examples=80)
@given(segments, st.integers(0, 400), st.integers(0, 400), st.integers(0, 400))
def test_balance_product_is_additive_over_periods(raw, a, b, c):
    start = date(2025, 1, 1)
    x, y, z = sorted(start + timedelta(days=k) for k in (a, b, c))
    events = [(start + timedelta(days=k), balance) for k, balance in raw]
    assert balance_product(events, x, z) == (
        balance_product(events, x, y) + balance_product(events, y, z)
    )


# loan rates


@pytest.mark.parametrize(
    ("on_date", "term", "first_home", "rate"),
    [
        (date(2025, 5, 8), 60, True, D("0.021")),
        (date(2025, 5, 8), 61, True, D("0.026")),
        (date(2025, 5, 8), 60, False, D("0.02525")),
        (date(2025, 5, 8), 360, False, D("0.03075")),
        (date(2025, 5, 7), 60, True, D("0.0235")),
        (date(2025, 5, 7), 360, True, D("0.0285")),
        (date(2024, 5, 18), 360, False, D("0.03325")),
        (date(2024, 5, 18), 12, False, D("0.02775")),
    ],
)
def test_rate_for_new_loans(on_date, term, first_home, rate):
    assert rate_for(DEFAULT_RATE_TABLE, on_date, term, first_home) == rate


def test_rate_key():
    assert rate_key(60) == "first_le5"
    assert rate_key(61, first_home=False) == "second_gt5"


def test_rate_before_any_entry_is_refused():
    with pytest.raises(ValueError):
        rate_for(DEFAULT_RATE_TABLE, date(2024, 5, 17), 360)


def test_rate_table_order_does_not_matter():
    table = list(reversed(DEFAULT_RATE_TABLE))
    assert rate_for(table, date(2026, 1, 1), 360) == D("0.026")


def test_rate_table_constant_is_read_only():
    with pytest.raises(TypeError):
        DEFAULT_RATE_TABLE[0][1]["first_le5"] = D("0")  # type: ignore[index]


@pytest.mark.parametrize(
    ("contract", "on_date", "rate"),
    [
        (date(2024, 6, 1), date(2025, 6, 1), D("0.0285")),  # change of 2025-05-08 not yet
        (date(2024, 6, 1), date(2025, 12, 31), D("0.0285")),
        (date(2024, 6, 1), date(2026, 1, 1), D("0.026")),  # reaches it on the next 1 January
        (date(2025, 6, 1), date(2025, 7, 1), D("0.026")),  # never earlier than the contract rate
        (date(2025, 5, 7), date(2025, 12, 31), D("0.0285")),
        (date(2025, 5, 7), date(2026, 1, 1), D("0.026")),
    ],
)
def test_rate_for_existing_loan(contract, on_date, rate):
    assert rate_for_existing_loan(DEFAULT_RATE_TABLE, contract, on_date, 360, True) == rate


def test_change_on_1_january_reaches_existing_loans_a_year_later():
    keys = ("first_le5", "first_gt5", "second_le5", "second_gt5")
    table = [
        (date(2020, 1, 1), dict(zip(keys, map(D, ("0.03", "0.04", "0.05", "0.06")), strict=True))),
        (date(2022, 1, 1), dict(zip(keys, map(D, ("0.02", "0.03", "0.04", "0.05")), strict=True))),
    ]
    assert rate_for_existing_loan(table, date(2021, 3, 1), date(2022, 6, 1), 360) == D("0.04")
    assert rate_for_existing_loan(table, date(2021, 3, 1), date(2023, 1, 1), 360) == D("0.03")
    assert rate_for(table, date(2022, 1, 1), 360) == D("0.03")


def test_loan_of_a_year_or_less_keeps_its_contract_rate():
    assert rate_for_existing_loan(
        DEFAULT_RATE_TABLE, date(2025, 5, 1), date(2026, 3, 1), 12, True
    ) == D("0.0235")


# loan quota (可贷额度试算)

QUOTA = {
    "ceiling": D("600000"),
    "balance_multiple": 15,
    "repayment_ratio": D("0.5"),
    "rate": D("0.026"),
    "birth": date(1990, 3, 3),
    "category": "male",
    "today": date(2026, 5, 1),
}


def quota(balance="50000", income="8000", **overrides):
    return loan_quota(D(balance), D(income), **{**QUOTA, **overrides})


def test_quota_limited_by_ceiling():
    result = quota(balance="50000", income="20000")
    assert result.amount == D("600000.00")
    assert result.limited_by == "ceiling"
    assert result.term_months == 360 and result.term_limited_by == "max_term"
    assert result.monthly_payment == annuity_payment(D("600000"), D("0.026"), 360)
    assert result.retirement_date == date(2053, 3, 3)


def test_quota_limited_by_balance_multiple():
    result = quota(balance="12345.67", income="20000")
    assert result.limited_by == "balance"
    assert result.amount == D("185100.00")  # 185185.05 rounded down to hundreds


def test_quota_limited_by_repayment_capacity():
    result = quota(balance="50000", income="4000")
    assert result.limited_by == "repayment"
    # 2000 a month for 360 months at 2.6%: present value 499,575.72..., rounded down
    assert result.amount == D("499500.00")
    assert result.monthly_payment <= D("2000")


def test_existing_obligations_reduce_capacity():
    result = quota(balance="50000", income="4000", existing_monthly_payments=D("1000"))
    assert result.limited_by == "repayment"
    assert result.amount == D("249700.00")  # present value of 1000 a month: 249,787.86...


def test_no_repayment_capacity_gives_zero():
    result = quota(income="4000", existing_monthly_payments=D("2500"))
    assert result.amount == 0 and result.limited_by == "repayment"
    assert result.monthly_payment == 0


def test_term_limited_by_retirement_age():
    # born 1970-06-15: delay 17 months, retires 2031-11-15; +5 years: 126 months from 2026-05-01
    result = quota(birth=date(1970, 6, 15), income="20000")
    assert result.retirement_date == date(2031, 11, 15)
    assert result.term_months == 126
    assert result.term_limited_by == "age"


def test_requested_term_is_honoured_when_shorter():
    result = quota(requested_term_months=120)
    assert result.term_months == 120 and result.term_limited_by == "requested"
    assert quota(requested_term_months=480).term_months == 360


def test_no_term_left_gives_zero():
    result = quota(birth=date(1955, 1, 1), category="female_50")
    assert result == LoanQuota(D("0.00"), 0, D("0.00"), "term", "age", date(2005, 1, 1))


@settings(max_examples=60, deadline=None)
@given(
    balance=st.decimals(0, 500000, places=2),
    income=st.decimals(0, 50000, places=2),
    existing=st.decimals(0, 5000, places=2),
    rate=rates,
    birth=st.dates(min_value=date(1960, 1, 1), max_value=date(2005, 12, 31)),
    category=st.sampled_from(["male", "female_55", "female_50"]),
)
def test_quota_invariants(balance, income, existing, rate, birth, category):
    result = quota(
        str(balance),
        str(income),
        existing_monthly_payments=existing,
        rate=rate,
        birth=birth,
        category=category,
    )
    assert 0 <= result.amount <= D("600000")
    assert result.amount % 100 == 0
    assert result.amount <= balance * 15
    assert 0 <= result.term_months <= 360
    if result.amount:
        assert result.monthly_payment <= income * D("0.5") - existing + D("0.01")
