"""Working days (工作日) under the Chinese statutory calendar, and deadlines counted in them.

Holidays and make-up working days (调休) come from ``chinese_calendar`` for the years it knows.
``overrides`` (date -> is-working-day, entered by the admin) always win. For a year the package
does not know, the fallback is Monday-Friday plus overrides, and results are estimates (预计).

Ranges follow one convention: working days *after* ``a`` up to and including ``b``, so the start
day of a deadline ("within n working days from start") is never counted.
"""

from array import array
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, timedelta
from functools import lru_cache

import chinese_calendar

Overrides = Mapping[date, bool] | None
Pause = tuple[date, date | None]

FIRST_KNOWN_YEAR: int = min(chinese_calendar.holidays).year
LAST_KNOWN_YEAR: int = max(chinese_calendar.holidays).year

_DAY = timedelta(days=1)


def calendar_known(year: int) -> bool:
    """True when ``chinese_calendar`` has the official holidays of ``year``."""
    return FIRST_KNOWN_YEAR <= year <= LAST_KNOWN_YEAR


def unknown_years(years: Iterable[int]) -> list[int]:
    """The years among ``years`` whose calendar must be entered by hand (sorted, unique)."""
    return sorted({y for y in years if not calendar_known(y)})


def is_estimated(d: date) -> bool:
    """True when ``d`` falls in a year the official calendar does not know."""
    return not calendar_known(d.year)


def is_workday(d: date, overrides: Overrides = None) -> bool:
    """Whether ``d`` is a working day: override, else official calendar, else Monday-Friday."""
    if overrides and d in overrides:
        return bool(overrides[d])
    return _base_workday(d)


def add_workdays(start: date, n: int, overrides: Overrides = None) -> date:
    """The n-th working day after ``start`` (``start`` itself not counted; n=0 gives ``start``)."""
    if n < 0:
        raise ValueError("n must not be negative")
    d = start
    while n:
        d += _DAY
        if is_workday(d, overrides):
            n -= 1
    return d


def _base_workday(d: date) -> bool:
    """Whether ``d`` is a working day without overrides."""
    if calendar_known(d.year):
        return chinese_calendar.is_workday(d)
    return d.weekday() < 5


@lru_cache(maxsize=64)
def _running_count(year: int) -> array:
    """``count[i]``: working days of ``year`` (no overrides) among its first ``i`` days. The
    calendar does not change while the process runs, so each year is counted once (a board
    counts the days left of every card it shows)."""
    count = array("H", [0])
    d = date(year, 1, 1)
    while d.year == year:
        count.append(count[-1] + _base_workday(d))
        d += _DAY
    return count


def _base_through(d: date) -> int:
    """Working days (no overrides) from 1 January of ``d``'s year through ``d``."""
    return _running_count(d.year)[d.timetuple().tm_yday]


def workdays_between(a: date, b: date, overrides: Overrides = None) -> int:
    """Working days in (a, b]; negated when ``b`` is before ``a``."""
    if b < a:
        return -workdays_between(b, a, overrides)
    count = _base_through(b) - _base_through(a)
    for year in range(a.year, b.year):
        count += _running_count(year)[-1]
    for day, working in (overrides or {}).items():  # the admin's days replace the calendar's
        if a < day <= b and bool(working) != _base_workday(day):
            count += 1 if working else -1
    return count


def workdays_left(today: date, deadline: date, overrides: Overrides = None) -> int:
    """Working days left until ``deadline``.

    0 on the deadline day itself (the last day); negative once overdue, counting the working days
    since the deadline but at least -1, so a rest day just after the deadline is already overdue.
    """
    if today <= deadline:
        return workdays_between(today, deadline, overrides)
    return -max(1, workdays_between(deadline, today, overrides))


def is_overdue(today: date, deadline: date, overrides: Overrides = None) -> bool:
    """True once the deadline day has passed (``overrides`` accepted for symmetry, unused)."""
    return today > deadline


def deadline_is_estimated(start: date, deadline: date) -> bool:
    """True when any day from ``start`` to ``deadline`` lies in a year the calendar lacks."""
    first, last = sorted((start.year, deadline.year))
    return bool(unknown_years(range(first, last + 1)))


def paused_deadline(
    start: date,
    n: int,
    pauses: Sequence[Pause] = (),
    overrides: Overrides = None,
    today: date | None = None,
) -> date:
    """Deadline of n working days from ``start`` with the clock stopped during ``pauses``.

    A pause ``(paused_on, resumed_on)`` stops the clock on the days after ``paused_on`` up to and
    including ``resumed_on`` (the same convention as ``start``: the day the case goes to 待补正
    counts, the day the materials arrive does not). An open pause (``resumed_on`` None) runs
    through ``today``, so the deadline moves on each day the case waits; it needs ``today``.
    """
    if n < 0:
        raise ValueError("n must not be negative")
    intervals = []
    for paused_on, resumed_on in pauses:
        if resumed_on is None:
            if today is None:
                raise ValueError("an open pause needs today")
            resumed_on = max(today, paused_on)
        intervals.append((paused_on, resumed_on))

    def paused(d: date) -> bool:
        return any(p < d <= r for p, r in intervals)

    d = start
    while n:
        d += _DAY
        if is_workday(d, overrides) and not paused(d):
            n -= 1
    return d


def paused_workdays(
    pauses: Sequence[Pause], overrides: Overrides = None, today: date | None = None
) -> int:
    """Working days spent in ``pauses`` (overlaps counted once), for display."""
    days: set[date] = set()
    for paused_on, resumed_on in pauses:
        end = resumed_on if resumed_on is not None else today
        if end is None:
            raise ValueError("an open pause needs today")
        days.update(
            paused_on + k * _DAY
            for k in range(1, (end - paused_on).days + 1)
            if is_workday(paused_on + k * _DAY, overrides)
        )
    return len(days)
