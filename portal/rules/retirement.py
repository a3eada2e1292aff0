"""Statutory retirement age under the progressive reform effective 2025-01-01.

Per the NPC Standing Committee decision of 2024-09-13 and its annex: with m the months from the
group's first birth month to the birth month, the delay is 0 if m < 0, else
min(cap, m // step + 1) months.
"""

from dataclasses import dataclass
from datetime import date

from portal.rules.dates import add_months


@dataclass(frozen=True)
class _Group:
    original_age: int
    first_birth: date  # first birth month affected by the reform
    step: int  # months of birth per extra month of delay
    cap: int  # maximum delay in months


GROUPS: dict[str, _Group] = {
    "male": _Group(60, date(1965, 1, 1), 4, 36),
    "female_55": _Group(55, date(1970, 1, 1), 4, 36),
    "female_50": _Group(50, date(1975, 1, 1), 2, 60),
}
CATEGORIES = tuple(GROUPS)


def _group(category: str) -> _Group:
    try:
        return GROUPS[category]
    except KeyError:
        raise ValueError(f"unknown retirement category: {category!r}") from None


def retirement_delay_months(birth: date, category: str) -> int:
    """Months by which the reform delays retirement for someone born on ``birth``."""
    group = _group(category)
    m = (birth.year - group.first_birth.year) * 12 + birth.month - group.first_birth.month
    return 0 if m < 0 else min(group.cap, m // group.step + 1)


def statutory_retirement_date(birth: date, category: str) -> date:
    """The day the statutory retirement age is reached (day clamped to the month's end)."""
    group = _group(category)
    return add_months(birth, group.original_age * 12 + retirement_delay_months(birth, category))


@dataclass(frozen=True)
class Eligibility:
    """Outcome of the retirement-withdrawal check; truthy when eligible.

    ``reason`` is None when eligible, else ``"not_retired"``; ``basis`` says why eligible:
    ``"recorded"`` (a retirement date is on file) or ``"statutory_age"``.
    """

    eligible: bool
    reason: str | None
    basis: str | None
    statutory_date: date

    def __bool__(self) -> bool:
        return self.eligible


def retirement_eligibility(
    birth: date, category: str, retired_on: date | None, today: date
) -> Eligibility:
    """Eligible when retired on or before ``today``, or the statutory date has been reached."""
    statutory = statutory_retirement_date(birth, category)
    if retired_on is not None and retired_on <= today:
        return Eligibility(True, None, "recorded", statutory)
    if statutory <= today:
        return Eligibility(True, None, "statutory_age", statutory)
    return Eligibility(False, "not_retired", None, statutory)
