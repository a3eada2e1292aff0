"""Small helpers shared by the intranet blueprints (everything under /staff/).

Each blueprint used to keep its own copy (``_user()``, ``_today()``, ``_overrides()``, …). The
functions need a request context; ``staff_user()`` also needs a staff login, which every intranet
blueprint guards with ``guard_kind("staff")``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from urllib.parse import quote

from flask import g, make_response, url_for
from flask_login import current_user

from portal.filters import local_today
from portal.services import settings


def staff_user():
    """The logged-in staff member (a ``StaffUser``)."""
    return current_user.obj


def today() -> date:
    """Today in Shanghai, the date every intranet rule is computed against."""
    return local_today()


def holiday_overrides(*, per_request: bool = False) -> dict[date, bool]:
    """The admin's holiday and workday overrides of the official calendar (日历调整).

    By default they are read afresh on every call (one query). ``per_request=True`` reads them
    once and keeps them on ``flask.g`` for the rest of the app context (normally the request):
    the board, which may need them more than once in a request (a move, then the columns it
    renders again) and never changes them.
    """
    if not per_request:
        return settings.holiday_overrides()
    if "holiday_overrides" not in g:
        g.holiday_overrides = settings.holiday_overrides()
    return g.holiday_overrides


def verify_url(code: str) -> str:
    """The public /verify address of a certificate's verification code (printed on it)."""
    return url_for("public.verify_code", code=code, _external=True)


def first_error(form) -> str:
    """The first message of an invalid form, for a one-line answer."""
    for errors in form.errors.values():
        if errors:
            return str(errors[0])
    return "请求无效"


def download(data: bytes, filename: str, content_type: str, inline: bool = False):
    """Bytes as a download with a UTF-8 file name; never sniffed, never cached."""
    response = make_response(data)
    response.headers["Content-Type"] = content_type
    ascii_name = "".join(c if c.isascii() and c.isalnum() or c in "-_." else "_" for c in filename)
    response.headers["Content-Disposition"] = (
        f'{"inline" if inline else "attachment"}; filename="{ascii_name}"; '
        f"filename*=UTF-8''{quote(filename)}"
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-store"
    return response


@dataclass(frozen=True)
class NavLink:
    """One link of the staff navigation (the ``staff_*_links`` template globals); a value, so
    a navigation bar's HTML can be kept under its links (``portal.navigation``)."""

    key: str
    label: str
    url: str
