from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portal.rules.workdays import (
    add_workdays,
    calendar_known,
    deadline_is_estimated,
    is_estimated,
    is_overdue,
    is_workday,
    paused_deadline,
    paused_workdays,
    unknown_years,
    workdays_between,
    workdays_left,
)

# 2024-2028 covers known years and the unknown 2027/2028.
dates = st.dates(min_value=date(2024, 1, 1), max_value=date(2028, 12, 31))
calendar_settings = settings(max_examples=60, deadline=None)


# is_workday: the official calendar


@pytest.mark.parametrize(
    "d",
    [
        date(2026, 1, 4),
        date(2026, 2, 14),
        date(2026, 2, 28),
        date(2026, 5, 9),
        date(2026, 9, 20),
        date(2026, 10, 10),
    ],
)
def test_make_up_working_days_2026_are_workdays(d):
    assert d.weekday() >= 5
    assert is_workday(d)


@pytest.mark.parametrize("day", range(1, 8))
def test_national_day_2026_is_a_holiday(day):
    assert not is_workday(date(2026, 10, day))


def test_ordinary_weekend_and_weekday():
    assert not is_workday(date(2026, 3, 7))  # Saturday
    assert not is_workday(date(2026, 3, 8))  # Sunday
    assert is_workday(date(2026, 3, 9))  # Monday


def test_spring_festival_weekday_is_a_holiday():
    assert not is_workday(date(2026, 2, 17))  # Tuesday, 春节


# overrides


def test_override_makes_a_holiday_a_workday_and_a_workday_a_holiday():
    overrides = {date(2026, 10, 2): True, date(2026, 3, 9): False}
    assert is_workday(date(2026, 10, 2), overrides)
    assert not is_workday(date(2026, 3, 9), overrides)
    assert is_workday(date(2026, 3, 10), overrides)  # untouched


def test_override_beats_make_up_day():
    assert not is_workday(date(2026, 10, 10), {date(2026, 10, 10): False})


def test_empty_overrides_change_nothing():
    assert is_workday(date(2026, 2, 14), {}) is True


# unknown years


def test_unknown_year_falls_back_to_monday_to_friday():
    assert is_workday(date(2027, 1, 1))  # a Friday: really a holiday, but unknown
    assert not is_workday(date(2027, 1, 2))  # Saturday
    assert not is_workday(date(2027, 1, 3))  # Sunday
    assert is_workday(date(2003, 12, 31))  # before the package's range: no crash


def test_unknown_year_honours_overrides():
    overrides = {date(2027, 1, 1): False, date(2027, 2, 6): True}
    assert not is_workday(date(2027, 1, 1), overrides)
    assert is_workday(date(2027, 2, 6), overrides)  # a Saturday


def test_is_estimated():
    assert not is_estimated(date(2026, 12, 31))
    assert is_estimated(date(2027, 1, 1))
    assert not is_estimated(date(2004, 1, 1))
    assert is_estimated(date(2003, 12, 31))


def test_calendar_known_and_unknown_years():
    assert calendar_known(2026)
    assert not calendar_known(2027)
    assert unknown_years([2028, 2026, 2027, 2027]) == [2027, 2028]
    assert unknown_years(range(2004, 2027)) == []


# add_workdays


def test_add_workdays_skips_national_day_and_uses_make_up_saturday():
    start = date(2026, 9, 30)  # Wednesday before the holiday
    assert add_workdays(start, 1) == date(2026, 10, 8)
    assert add_workdays(start, 3) == date(2026, 10, 10)  # working Saturday
    assert add_workdays(start, 4) == date(2026, 10, 12)


def test_add_workdays_start_day_not_counted():
    monday = date(2026, 3, 9)
    assert add_workdays(monday, 1) == date(2026, 3, 10)
    assert add_workdays(monday, 7) == date(2026, 3, 18)


def test_add_workdays_from_a_rest_day():
    assert add_workdays(date(2026, 3, 7), 1) == date(2026, 3, 9)  # Saturday -> Monday


def test_add_zero_workdays_is_start():
    assert add_workdays(date(2026, 3, 7), 0) == date(2026, 3, 7)


def test_add_negative_workdays_is_refused():
    with pytest.raises(ValueError):
        add_workdays(date(2026, 3, 9), -1)


def test_add_workdays_into_unknown_year_is_estimated():
    start = date(2026, 12, 30)
    deadline = add_workdays(start, 5)
    assert deadline == date(2027, 1, 6)  # 12-31, 1-1 (fallback), 1-4, 1-5, 1-6
    assert deadline_is_estimated(start, deadline)
    assert not deadline_is_estimated(date(2026, 3, 9), add_workdays(date(2026, 3, 9), 7))


def test_add_workdays_with_override():
    monday = date(2026, 3, 9)
    assert add_workdays(monday, 1, {date(2026, 3, 10): False}) == date(2026, 3, 11)


def test_deadline_is_estimated_spanning_years():
    assert deadline_is_estimated(date(2026, 6, 1), date(2028, 1, 1))
    assert deadline_is_estimated(date(2027, 12, 1), date(2026, 1, 1))
    assert not deadline_is_estimated(date(2025, 6, 1), date(2026, 1, 1))


@calendar_settings
@given(start=dates, n=st.integers(min_value=1, max_value=40))
def test_add_workdays_lands_on_a_workday_n_workdays_later(start, n):
    deadline = add_workdays(start, n)
    assert deadline > start
    assert is_workday(deadline)
    assert workdays_between(start, deadline) == n
    assert workdays_between(start, deadline - timedelta(days=1)) == n - 1


@calendar_settings
@given(
    start=dates,
    n=st.integers(min_value=1, max_value=15),
    overrides=st.dictionaries(
        st.dates(min_value=date(2026, 12, 1), max_value=date(2027, 2, 28)), st.booleans()
    ),
)
def test_add_workdays_property_holds_with_overrides(start, n, overrides):
    deadline = add_workdays(start, n, overrides)
    assert is_workday(deadline, overrides)
    assert workdays_between(start, deadline, overrides) == n


@calendar_settings
@given(start=dates, n=st.integers(min_value=0, max_value=20))
def test_add_workdays_is_monotonic(start, n):
    assert add_workdays(start, n) < add_workdays(start, n + 1)


# workdays_between, workdays_left, is_overdue


def test_workdays_between_is_half_open():
    monday, wednesday = date(2026, 3, 9), date(2026, 3, 11)
    assert workdays_between(monday, wednesday) == 2
    assert workdays_between(monday, monday) == 0
    assert workdays_between(wednesday, monday) == -2
    assert workdays_between(date(2026, 9, 30), date(2026, 10, 7)) == 0


def test_workdays_left_counts_down_to_zero_on_the_deadline():
    deadline = date(2026, 3, 13)  # Friday
    assert workdays_left(date(2026, 3, 9), deadline) == 4
    assert workdays_left(date(2026, 3, 12), deadline) == 1
    assert workdays_left(deadline, deadline) == 0
    assert not is_overdue(deadline, deadline)


def test_workdays_left_negative_when_overdue():
    deadline = date(2026, 3, 13)  # Friday
    assert workdays_left(date(2026, 3, 14), deadline) == -1  # Saturday: overdue already
    assert workdays_left(date(2026, 3, 15), deadline) == -1
    assert workdays_left(date(2026, 3, 16), deadline) == -1  # Monday
    assert workdays_left(date(2026, 3, 17), deadline) == -2
    assert is_overdue(date(2026, 3, 14), deadline)


def test_workdays_left_respects_overrides():
    overrides = {date(2026, 3, 10): False}
    assert workdays_left(date(2026, 3, 9), date(2026, 3, 13), overrides) == 3


@calendar_settings
@given(start=dates, n=st.integers(min_value=0, max_value=30))
def test_workdays_left_at_start_is_n(start, n):
    assert workdays_left(start, add_workdays(start, n)) == n


@calendar_settings
@given(today=dates, deadline=dates)
def test_workdays_left_sign_matches_overdue(today, deadline):
    left = workdays_left(today, deadline)
    assert (left < 0) == is_overdue(today, deadline)


# clock pausing (待补正)


def test_no_pauses_is_add_workdays():
    start = date(2026, 3, 9)
    assert paused_deadline(start, 7, []) == add_workdays(start, 7)


def test_pause_extends_by_the_working_days_paused():
    start = date(2026, 3, 9)  # Monday, 7 working days -> 2026-03-18
    pauses = [(date(2026, 3, 10), date(2026, 3, 12))]  # 11th and 12th not counted
    assert paused_deadline(start, 7, pauses) == date(2026, 3, 20)
    assert paused_workdays(pauses) == 2


def test_pause_over_a_weekend_costs_only_working_days():
    start = date(2026, 3, 9)
    pauses = [(date(2026, 3, 13), date(2026, 3, 16))]  # Sat, Sun, Mon paused: 1 working day
    assert paused_deadline(start, 7, pauses) == date(2026, 3, 19)
    assert paused_workdays(pauses) == 1


def test_same_day_pause_costs_nothing():
    start = date(2026, 3, 9)
    assert paused_deadline(start, 7, [(date(2026, 3, 10), date(2026, 3, 10))]) == date(2026, 3, 18)


def test_pause_after_the_deadline_does_not_move_it():
    start = date(2026, 3, 9)
    assert paused_deadline(start, 7, [(date(2026, 3, 20), date(2026, 3, 27))]) == date(2026, 3, 18)


def test_overlapping_pauses_count_once():
    start = date(2026, 3, 9)
    pauses = [(date(2026, 3, 10), date(2026, 3, 12)), (date(2026, 3, 11), date(2026, 3, 12))]
    assert paused_deadline(start, 7, pauses) == date(2026, 3, 20)
    assert paused_workdays(pauses) == 2


def test_open_pause_runs_through_today():
    start = date(2026, 3, 9)
    pauses = [(date(2026, 3, 10), None)]
    assert paused_deadline(start, 7, pauses, today=date(2026, 3, 12)) == date(2026, 3, 20)
    assert paused_deadline(start, 7, pauses, today=date(2026, 3, 13)) == date(2026, 3, 23)
    assert paused_workdays(pauses, today=date(2026, 3, 13)) == 3


def test_open_pause_keeps_days_left_constant():
    start = date(2026, 3, 9)
    pauses = [(date(2026, 3, 10), None)]
    lefts = {
        workdays_left(today, paused_deadline(start, 7, pauses, today=today))
        for today in (date(2026, 3, 11), date(2026, 3, 12), date(2026, 3, 16))
    }
    assert lefts == {6}


def test_open_pause_without_today_is_refused():
    with pytest.raises(ValueError):
        paused_deadline(date(2026, 3, 9), 7, [(date(2026, 3, 10), None)])
    with pytest.raises(ValueError):
        paused_workdays([(date(2026, 3, 10), None)])


def test_pause_across_national_day_counts_only_working_days():
    start = date(2026, 9, 28)  # Monday; 3 working days -> 09-30
    pauses = [(date(2026, 9, 29), date(2026, 10, 9))]  # paused: 09-30, 10-08, 10-09
    assert paused_deadline(start, 3, pauses) == date(2026, 10, 12)


@calendar_settings
@given(
    start=dates,
    n=st.integers(min_value=1, max_value=15),
    pauses=st.lists(
        st.tuples(st.integers(min_value=0, max_value=20), st.integers(min_value=0, max_value=10)),
        max_size=3,
    ),
)
def test_paused_deadline_counts_n_unpaused_workdays(start, n, pauses):
    intervals = [(start + timedelta(days=a), start + timedelta(days=a + b)) for a, b in pauses]
    deadline = paused_deadline(start, n, intervals)
    assert deadline >= add_workdays(start, n)
    counted = [
        d
        for d in (start + timedelta(days=k) for k in range(1, (deadline - start).days + 1))
        if is_workday(d) and not any(p < d <= r for p, r in intervals)
    ]
    assert len(counted) == n
    assert counted[-1] == deadline


# workdays_between counts with a running count per year: the same as counting day by day


def _counted_day_by_day(a, b, overrides):
    if b < a:
        return -_counted_day_by_day(b, a, overrides)
    return sum(is_workday(a + k * timedelta(days=1), overrides) for k in range(1, (b - a).days + 1))


@calendar_settings
@given(
    a=st.dates(min_value=date(2004, 1, 1), max_value=date(2030, 12, 31)),
    span=st.integers(min_value=-800, max_value=800),
    overrides=st.dictionaries(
        st.dates(min_value=date(2004, 1, 1), max_value=date(2033, 3, 1)), st.booleans(), max_size=8
    ),
)
def test_workdays_between_is_counting_day_by_day(a, span, overrides):
    b = a + timedelta(days=span)
    assert workdays_between(a, b, overrides) == _counted_day_by_day(a, b, overrides)
    assert workdays_between(a, b) == _counted_day_by_day(a, b, None)


def test_workdays_between_across_years_and_overrides_at_the_edges():
    overrides = {date(2026, 12, 31): False, date(2027, 1, 2): True, date(2025, 12, 31): True}
    for a, b in [
        (date(2025, 12, 31), date(2027, 1, 2)),  # a itself is not counted, b is
        (date(2026, 12, 30), date(2027, 1, 4)),
        (date(2024, 2, 28), date(2024, 3, 1)),  # a leap day
        (date(2026, 1, 1), date(2026, 1, 1)),
    ]:
        assert workdays_between(a, b, overrides) == _counted_day_by_day(a, b, overrides)
        assert workdays_between(b, a, overrides) == -_counted_day_by_day(a, b, overrides)
