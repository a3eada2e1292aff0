"""Settings with effective dates, and the admin's holiday overrides."""

from __future__ import annotations

from datetime import date

from portal.db import Prepared
from portal.models import HolidayOverride, Setting

_OVERRIDES = Prepared(lambda: HolidayOverride.select(), 0)  # issue 10: built once


def holiday_overrides() -> dict[date, bool]:
    return {row.day: row.is_workday for row in _OVERRIDES.all()}


def value_on(key: str, on: date, default: str | None = None) -> str | None:
    row = (
        Setting.select()
        .where((Setting.key == key) & (Setting.effective_from <= on))
        .order_by(Setting.effective_from.desc())
        .first()
    )
    return row.value if row else default
