"""The small htmx helper this portal uses (see README, architecture notes).

One URL serves the full page or, to an htmx request, its fragment. A boosted request
(``HX-Boosted``) wants the whole page, so it is not a fragment request.
"""

from __future__ import annotations

import json

from flask import make_response, render_template, request


def is_htmx() -> bool:
    """An htmx request that wants a fragment: not boosted (wants the page) and not a history
    restore after the back button (htmx keeps no history cache here, so it needs the page)."""
    headers = request.headers
    return (
        headers.get("HX-Request") == "true"
        and not headers.get("HX-Boosted")
        and not headers.get("HX-History-Restore-Request")
    )


def render(page: str, fragment: str | None = None, status: int = 200, **context):
    """Render ``fragment`` for an htmx request and ``page`` otherwise; adds ``Vary``."""
    template = fragment if (fragment and is_htmx()) else page
    response = make_response(render_template(template, **context), status)
    response.vary.add("HX-Request")
    return response


def location(url: str, status: int = 200, **extra):
    """Tell htmx to navigate (``HX-Location``) instead of answering a 3xx to an XHR."""
    response = make_response("", status)
    response.headers["HX-Location"] = json.dumps({"path": url, **extra}) if extra else url
    return response


def trigger(response, event: str, detail=None):
    response.headers["HX-Trigger"] = json.dumps({event: detail if detail is not None else {}})
    return response
