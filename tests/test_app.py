"""The application shell: health, headers, errors, templates' promises."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_healthz_reports_database(client):
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.get_json() == {"status": "ok"}


def test_public_home_lists_items(client):
    r = client.get("/")
    html = r.get_data(as_text=True)
    assert r.status_code == 200
    assert "个人住房公积金缴存贷款等信息查询" in html
    assert "购房提取住房公积金" in html
    assert 'lang="zh-CN"' in html


def test_strict_nonce_csp_and_security_headers(client):
    r = client.get("/")
    csp = r.headers["Content-Security-Policy"]
    nonce = re.search(r"script-src 'self' 'nonce-([\w-]+)'", csp).group(1)
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
    scripts = re.findall(r"<script[^>]*>", r.get_data(as_text=True))
    assert scripts and all(f'nonce="{nonce}"' in tag for tag in scripts)
    assert nonce not in client.get("/").headers["Content-Security-Policy"]  # fresh each time
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["X-Frame-Options"] == "DENY"
    assert r.headers["Referrer-Policy"] == "same-origin"
    assert r.headers["Cache-Control"] == "no-store"


def test_htmx_is_vendored_2_0_11_and_configured(client):
    js = (ROOT / "static/vendor/htmx.min.js").read_text()
    assert 'version:"2.0.11"' in js
    html = client.get("/").get_data(as_text=True)
    config = re.search(r'name="htmx-config" content=\'([^\']+)\'', html).group(1)
    assert '"allowEval": false' in config
    assert '"includeIndicatorStyles": false' in config
    assert '"historyCacheSize": 0' in config
    # the strict CSP forbids style attributes: htmx must not copy them while it settles
    assert '"attributesToSettle": ["class", "width", "height"]' in config
    assert "X-CSRFToken" in html  # htmx requests carry the CSRF token


def test_no_inline_script_style_or_handlers_in_templates():
    offenders = []
    for path in (ROOT / "templates").rglob("*.html"):
        text = path.read_text(encoding="utf-8")
        if re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text):
            offenders.append(f"{path.name}: inline <script>")
        if re.search(r"<script(?![^>]*\bnonce=)[^>]*>", text):
            offenders.append(f"{path.name}: <script> without the CSP nonce")
        if re.search(r"\sstyle=", text):
            offenders.append(f"{path.name}: style attribute")
        if re.search(r"\son[a-z]+=", text):
            offenders.append(f"{path.name}: on* handler")
        if re.search(r"unpkg|jsdelivr|cdnjs|googleapis", text):
            offenders.append(f"{path.name}: CDN")
    assert offenders == []


def test_unknown_page_is_404_in_chinese(client):
    r = client.get("/no-such-page")
    assert r.status_code == 404
    assert "页面不存在" in r.get_data(as_text=True)


def test_error_fragment_for_htmx(client):
    r = client.get("/no-such-page", headers={"HX-Request": "true"})
    assert r.status_code == 404
    html = r.get_data(as_text=True)
    assert "<html" not in html and "页面不存在" in html


def test_csrf_is_enforced_when_enabled(app, client, depositor):
    app.config["WTF_CSRF_ENABLED"] = True
    try:
        r = client.post("/login", data={"resident_id": depositor.resident_id, "password": "x"})
        assert r.status_code == 400
        assert "页面已过期" in r.get_data(as_text=True)
    finally:
        app.config["WTF_CSRF_ENABLED"] = False


def test_dev_sms_page_is_absent_in_production(monkeypatch):
    from portal import config

    keys = {
        "DATA_KEYS": "k1:" + "A" * 43 + "=",
        "LOOKUP_KEY": "B" * 43 + "=",
        "SIGNING_KEY": "C" * 43 + "=",
    }
    cfg = config.load({"ENV": "production", "SECRET_KEY": "x" * 40, **keys}, environ={})
    assert cfg["DEV_SMS_PAGE"] is False


def test_production_refuses_to_start_without_secrets():
    import pytest

    from portal import config

    with pytest.raises(config.ConfigError, match="SECRET_KEY"):
        config.load({"ENV": "production"}, environ={})
    with pytest.raises(config.ConfigError, match="at least 32 characters"):
        config.load({"ENV": "production", "SECRET_KEY": "x" * 31}, environ={})
    with pytest.raises(config.ConfigError, match="DATA_KEYS"):
        config.load({"ENV": "production", "SECRET_KEY": "x" * 40}, environ={})
    with pytest.raises(config.ConfigError, match="REDIS_URL"):
        config.load({"REDIS_URL": "http://nope"}, environ={})
    with pytest.raises(config.ConfigError, match="PORTAL_SESSION_MAX_HOURS"):
        config.load(environ={"PORTAL_SESSION_MAX_HOURS": "eight"})
    with pytest.raises(config.ConfigError, match="scheme"):
        config.load({"DATABASE_URL": "mysql://x"}, environ={})


def _hx_token(html: str) -> str:
    import re

    return re.search(r'"X-CSRFToken": "([^"]+)"', html).group(1)


def test_one_signed_csrf_token_per_session_serves_every_page_and_is_accepted(
    app, client, depositor, monkeypatch
):
    """Issue 10: a session's CSRF token is signed once per worker, not on every page; it is
    the session's (another session gets its own) and a POST carrying it is accepted."""
    from tests.conftest import login_depositor

    login_depositor(client, depositor)
    import time as time_module

    first = _hx_token(client.get("/me/").get_data(as_text=True))
    later = time_module.time() + 120  # signed anew, the token would carry a new timestamp
    monkeypatch.setattr(time_module, "time", lambda: later)
    again = _hx_token(client.get("/me/deposits").get_data(as_text=True))
    assert first == again
    other = app.test_client()
    assert _hx_token(other.get("/").get_data(as_text=True)) != first
    app.config["WTF_CSRF_ENABLED"] = True
    try:
        bad = client.post("/lang", data={"lang": "en", "next": "/me/", "csrf_token": "x"})
        assert bad.status_code == 400
        ok = client.post("/lang", data={"lang": "en", "next": "/me/", "csrf_token": first})
        assert ok.status_code in (302, 303)
        # and the other session's token is not this session's
        stolen = other.post("/lang", data={"lang": "en", "next": "/", "csrf_token": first})
        assert stolen.status_code == 400
    finally:
        app.config["WTF_CSRF_ENABLED"] = False


@pytest.mark.parametrize("limit", [3600, "unset"])  # unset: Flask-WTF's default, an hour
def test_with_a_time_limit_every_request_signs_afresh(app, client, monkeypatch, limit):
    import time as time_module

    if limit == "unset":
        app.config.pop("WTF_CSRF_TIME_LIMIT")
    else:
        app.config["WTF_CSRF_TIME_LIMIT"] = limit
    try:
        first = _hx_token(client.get("/").get_data(as_text=True))
        later = time_module.time() + 120
        monkeypatch.setattr(time_module, "time", lambda: later)
        assert _hx_token(client.get("/").get_data(as_text=True)) != first  # a new timestamp
    finally:
        app.config["WTF_CSRF_TIME_LIMIT"] = None
