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
def kept_cache(app, cache, *others):
    """``cache`` (and ``others``) empty and the caches on (the default); yields ``cache``;
    afterwards as they were."""
    caches = (cache, *others)
    for each in caches:
        each.clear()
    was = app.config["HTML_CACHE"]
    app.config["HTML_CACHE"] = True
    try:
        yield cache
    finally:
        app.config["HTML_CACHE"] = was
        for each in caches:
            each.clear()


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


def assert_own_csrf_tokens(app, path: str) -> None:
    """The clerk in two browsers, the same kept HTML for both: each page's cards carry that
    session's own CSRF token (the one in the page's htmx headers), never the slot."""
    from bs4 import BeautifulSoup

    from portal.models import StaffUser
    from tests.conftest import login_staff

    one, other = app.test_client(), app.test_client()
    login_staff(one, "clerk")
    StaffUser.update(totp_last_step=0).where(StaffUser.username == "clerk").execute()
    login_staff(other, "clerk")
    app.config["WTF_CSRF_ENABLED"] = True
    try:
        tokens = []
        for client in (one, other, one):
            html = BeautifulSoup(client.get(path).get_data(as_text=True), "html.parser")
            token = re.search(r'"X-CSRFToken": "([^"]+)"', html.body["hx-headers"]).group(1)
            fields = html.select('li.kcard input[name="csrf_token"]')
            assert fields and {f["value"] for f in fields} == {token}
            tokens.append(token.split(".")[0])  # the session's secret (then a signed time)
        assert tokens[0] != tokens[1] and tokens[0] == tokens[2]
        assert "\x00" not in one.get(path).get_data(as_text=True)
    finally:
        app.config["WTF_CSRF_ENABLED"] = False
