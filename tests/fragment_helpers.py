"""Helpers for the tests of the HTML kept per worker (``portal/fragments.py``): a cache
emptied and on for a test, the same pages rendered without it, and pages compared without
what changes by itself (the script nonce, the CSRF tokens)."""

from __future__ import annotations

import re
from contextlib import contextmanager

NONCE = re.compile(r'nonce="[^"]+"')
# a CSRF token is signed with the second it is given: pages a second apart differ in it
TOKEN = re.compile(r'(name="csrf_token" value="|"X-CSRFToken": ")[^"]+"')


@contextmanager
def kept_cache(app, cache):
    """``cache`` empty and the caches on (the default); afterwards as they were."""
    cache.clear()
    was = app.config["HTML_CACHE"]
    app.config["HTML_CACHE"] = True
    try:
        yield cache
    finally:
        app.config["HTML_CACHE"] = was
        cache.clear()


@contextmanager
def uncached(app):
    """Every fragment from its template (PORTAL_HTML_CACHE=0); afterwards as it was."""
    was = app.config["HTML_CACHE"]
    app.config["HTML_CACHE"] = False
    try:
        yield
    finally:
        app.config["HTML_CACHE"] = was


def steady_page(client, path: str, **kwargs) -> str:
    """The page (200) without what changes by itself: the script nonce and the CSRF tokens
    (each session's own token is checked where it matters)."""
    r = client.get(path, **kwargs)
    assert r.status_code == 200
    html = NONCE.sub('nonce=""', r.get_data(as_text=True))
    return TOKEN.sub(lambda m: m.group(1) + 'token"', html)
