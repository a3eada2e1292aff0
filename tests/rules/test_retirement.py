from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portal.rules.dates import add_months, whole_months_between
from portal.rules.retirement import (
    CATEGORIES,
    GROUPS,
    Eligibility,
    retirement_delay_months,
    retirement_eligibility,
    statutory_retirement_date,
)


def test_official_example_man_born_january_1965():
    assert retirement_delay_months(date(1965, 1, 15), "male") == 1
    assert statutory_retirement_date(date(1965, 1, 15), "male") == date(2025, 2, 15)


@pytest.mark.parametrize(
    ("category", "birth", "delay"),
    [
        # men: from 1965-01, one month per 4 birth months, cap 36 from 1976-09
        ("male", date(1964, 12, 1), 0),
        ("male", date(1965, 1, 1), 1),
        ("male", date(1965, 4, 1), 1),
        ("male", date(1965, 5, 1), 2),
        ("male", date(1976, 8, 1), 35),
        ("male", date(1976, 9, 1), 36),
        ("male", date(1976, 12, 1), 36),
        ("male", date(1990, 6, 1), 36),
        # women of the 55 group: from 1970-01, same pace, cap 36 from 1981-09
        ("female_55", date(1969, 12, 31), 0),
        ("female_55", date(1970, 1, 1), 1),
        ("female_55", date(1970, 5, 1), 2),
        ("female_55", date(1981, 8, 1), 35),
        ("female_55", date(1981, 9, 1), 36),
        ("female_55", date(1995, 1, 1), 36),
        # women of the 50 group: from 1975-01, one month per 2 birth months, cap 60 from 1984-11
        ("female_50", date(1974, 12, 31), 0),
        ("female_50", date(1975, 1, 1), 1),
        ("female_50", date(1975, 2, 1), 1),
        ("female_50", date(1975, 3, 1), 2),
        ("female_50", date(1984, 10, 1), 59),
        ("female_50", date(1984, 11, 1), 60),
        ("female_50", date(1984, 12, 1), 60),
        ("female_50", date(2000, 1, 1), 60),
    ],
)
def test_delay_at_every_boundary(category, birth, delay):
    assert retirement_delay_months(birth, category) == delay


@pytest.mark.parametrize(
    ("category", "birth", "retires"),
    [
        ("male", date(1964, 12, 10), date(2024, 12, 10)),  # before the reform: 60
        ("male", date(1976, 9, 1), date(2039, 9, 1)),  # 63
        ("female_55", date(1969, 12, 10), date(2024, 12, 10)),  # 55
        ("female_55", date(1970, 1, 10), date(2025, 2, 10)),  # 55 and 1 month
        ("female_55", date(1981, 9, 5), date(2039, 9, 5)),  # 58
        ("female_50", date(1974, 12, 10), date(2024, 12, 10)),  # 50
        ("female_50", date(1975, 1, 10), date(2025, 2, 10)),  # 50 and 1 month
        ("female_50", date(1984, 11, 5), date(2039, 11, 5)),  # 55
    ],
)
def test_statutory_retirement_dates(category, birth, retires):
    assert statutory_retirement_date(birth, category) == retires


@pytest.mark.parametrize(
    ("category", "birth", "retires"),
    [
        ("male", date(1965, 1, 31), date(2025, 2, 28)),  # Feb has no 31st
        ("male", date(1965, 7, 31), date(2025, 9, 30)),  # delay 2 -> September
        ("male", date(1964, 2, 29), date(2024, 2, 29)),  # leap day to a leap year
        ("female_50", date(1972, 2, 29), date(2022, 2, 28)),  # leap day to a common year
        ("female_55", date(1975, 12, 31), date(2032, 6, 30)),  # delay 18 -> June
    ],
)
def test_day_is_clamped_to_month_end(category, birth, retires):
    assert statutory_retirement_date(birth, category) == retires


def test_unknown_category_is_refused():
    with pytest.raises(ValueError):
        statutory_retirement_date(date(1970, 1, 1), "female")
    with pytest.raises(ValueError):
        retirement_delay_months(date(1970, 1, 1), "")


births = st.dates(min_value=date(1940, 1, 1), max_value=date(2010, 12, 31))


@settings(max_examples=100)
@given(birth=births, category=st.sampled_from(CATEGORIES))
def test_delay_is_within_cap_and_date_after_original_age(birth, category):
    group = GROUPS[category]
    delay = retirement_delay_months(birth, category)
    assert 0 <= delay <= group.cap
    retires = statutory_retirement_date(birth, category)
    birthday_not_reached = (retires.month, retires.day) < (birth.month, birth.day)
    age_years = retires.year - birth.year - birthday_not_reached
    assert group.original_age <= age_years <= group.original_age + group.cap // 12
    assert retires.day <= birth.day


@settings(max_examples=100)
@given(a=births, b=births, category=st.sampled_from(CATEGORIES))
def test_later_birth_never_retires_earlier(a, b, category):
    a, b = sorted((a, b))
    assert retirement_delay_months(a, category) <= retirement_delay_months(b, category)
    assert statutory_retirement_date(a, category) <= statutory_retirement_date(b, category)


# eligibility


def test_recorded_retirement_makes_eligible_before_statutory_age():
    result = retirement_eligibility(date(1970, 1, 1), "male", date(2025, 6, 1), date(2026, 1, 1))
    assert result == Eligibility(True, None, "recorded", date(2031, 5, 1))
    assert result


def test_statutory_age_makes_eligible_without_record():
    birth = date(1965, 1, 15)
    assert not retirement_eligibility(birth, "male", None, date(2025, 2, 14))
    result = retirement_eligibility(birth, "male", None, date(2025, 2, 15))  # the day itself
    assert result.eligible and result.basis == "statutory_age" and result.reason is None


def test_future_retirement_record_is_not_enough():
    birth, retired_on, today = date(1975, 3, 1), date(2026, 7, 1), date(2026, 6, 30)
    result = retirement_eligibility(birth, "female_55", retired_on, today)
    assert not result
    assert result.reason == "not_retired"
    assert result.basis is None
    assert result.statutory_date == date(2031, 7, 1)


def test_eligibility_unknown_category_is_refused():
    with pytest.raises(ValueError):
        retirement_eligibility(date(1960, 1, 1), "other", None, date(2026, 1, 1))


# month arithmetic used above


@pytest.mark.parametrize(
    ("start", "months", "result"),
    [
        (date(2025, 1, 31), 1, date(2025, 2, 28)),
        (date(2024, 1, 31), 1, date(2024, 2, 29)),
        (date(2025, 1, 31), 2, date(2025, 3, 31)),
        (date(2025, 3, 31), -1, date(2025, 2, 28)),
        (date(2025, 12, 15), 1, date(2026, 1, 15)),
        (date(2025, 1, 15), -13, date(2023, 12, 15)),
        (date(2025, 5, 5), 0, date(2025, 5, 5)),
    ],
)
def test_add_months(start, months, result):
    assert add_months(start, months) == result


def test_whole_months_between():
    assert whole_months_between(date(2026, 5, 1), date(2031, 11, 15)) == 66
    assert whole_months_between(date(2026, 5, 16), date(2031, 11, 15)) == 65
    assert whole_months_between(date(2025, 1, 31), date(2025, 2, 28)) == 1
    assert whole_months_between(date(2025, 3, 15), date(2025, 1, 20)) == -1
    assert whole_months_between(date(2025, 3, 15), date(2025, 3, 1)) == 0


@settings(max_examples=100)
@given(start=births, end=births)
def test_whole_months_between_brackets_the_end(start, end):
    start, end = sorted((start, end))
    months = whole_months_between(start, end)
    assert add_months(start, months) <= end < add_months(start, months + 1)
