"""Server-side sessions: idle limits per side, absolute limit, polling is not activity."""

from __future__ import annotations

from datetime import timedelta

from portal.models import WebSession
from tests.conftest import login_depositor, login_staff


def _age(client, **delta):
    sid = client.get_cookie("hpf_session").value
    row = WebSession.get(WebSession.sid == sid)
    WebSession.update(last_seen=row.last_seen - timedelta(**delta)).where(
        WebSession.sid == sid
    ).execute()
    return sid


def test_public_session_ends_after_10_idle_minutes(client, depositor):
    login_depositor(client, depositor)
    _age(client, minutes=9)
    assert client.get("/me/").status_code == 200
    _age(client, minutes=11)
    r = client.get("/me/")
    assert r.status_code == 302
    assert "长时间未操作" in client.get(r.headers["Location"]).get_data(as_text=True)


def test_staff_session_allows_15_idle_minutes(client):
    login_staff(client, "clerk")
    _age(client, minutes=14)
    assert client.get("/staff/").status_code == 200
    _age(client, minutes=16)
    assert client.get("/staff/").status_code == 302


def test_no_session_lasts_over_8_hours(client, depositor):
    login_depositor(client, depositor)
    sid = client.get_cookie("hpf_session").value
    row = WebSession.get(WebSession.sid == sid)
    WebSession.update(created_at=row.created_at - timedelta(hours=8, minutes=1)).where(
        WebSession.sid == sid
    ).execute()
    assert client.get("/me/").status_code == 302


def test_background_polling_does_not_keep_a_session_alive(client):
    login_staff(client, "liaison")
    sid = _age(client, minutes=5)
    before = WebSession.get(WebSession.sid == sid).last_seen
    client.get("/staff/", headers={"X-Portal-Poll": "1"})
    assert WebSession.get(WebSession.sid == sid).last_seen == before
    client.get("/staff/")
    assert WebSession.get(WebSession.sid == sid).last_seen > before


def test_cookie_is_httponly_and_samesite(client, depositor):
    r = client.get("/login")
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
