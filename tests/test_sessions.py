"""Server-side sessions: idle limits per side, absolute limit, polling is not activity."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest

from portal.models import StaffUser, WebSession
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


@pytest.fixture
def redis_store():
    """Sessions in a real Redis (database 15), as several instances would share them."""
    import redis

    from portal import sessions

    client = redis.Redis.from_url(os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15"))
    try:
        client.ping()
    except redis.ConnectionError:
        if os.environ.get("CI") or os.environ.get("E2E_REQUIRED") == "1":
            raise
        pytest.skip("Redis is not running on 127.0.0.1:6379")
    client.flushdb()
    store = sessions.RedisStore(client, timedelta(hours=8), prefix="test:")
    previous = sessions.store()
    sessions.configure(store)
    yield store
    sessions.configure(previous)
    client.flushdb()


def test_redis_sessions_log_in_out_and_end_everywhere(app, client, depositor, redis_store):
    login_depositor(client, depositor)
    sid = client.get_cookie("hpf_session").value
    assert redis_store.load(sid).principal == f"d:{depositor.id}"
    assert not WebSession.select().where(WebSession.sid == sid).exists()
    other = app.test_client()  # a second browser (or instance) with the same cookie
    other.set_cookie("hpf_session", sid)
    assert other.get("/me/").status_code == 200
    client.post("/logout")
    assert redis_store.load(sid) is None
    assert other.get("/me/").status_code == 302


def test_redis_end_sessions_for_a_person(app, redis_store):
    from portal.sessions import end_sessions_for

    first = app.test_client()
    login_staff(first, "auditor")

    auditor = StaffUser.get(StaffUser.username == "auditor")
    assert redis_store.count_principal(f"s:{auditor.id}") == 1
    assert end_sessions_for(f"s:{auditor.id}") == 1
    assert first.get("/staff/").status_code == 302


def test_redis_idle_limit_applies(client, redis_store):
    login_staff(client, "clerk")
    sid = client.get_cookie("hpf_session").value
    record = redis_store.load(sid)
    redis_store.update(sid, last_seen=record.last_seen - timedelta(minutes=16))
    assert client.get("/staff/").status_code == 302


def test_redis_counters_share_limits_and_lockouts(redis_store):
    """Rate limits and lockout counters in Redis, as several instances share them."""
    import redis

    from portal.services import lockout, ratelimit

    client = redis.Redis.from_url(os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15"))
    previous = ratelimit.backend()
    ratelimit.configure(ratelimit.RedisCounters(client, prefix="test:"))
    try:
        assert ratelimit.hit("k", 2, 60) and ratelimit.hit("k", 2, 60)
        assert not ratelimit.hit("k", 2, 60) and ratelimit.blocked("k", 2, 60)
        for _ in range(lockout.MAX_FAILURES):
            lockout.failed("staff", "someone")
        with pytest.raises(lockout.Locked):
            lockout.check("staff", "someone", "")
        count, seconds = ratelimit.alive(f"lock:{lockout._ident('staff', 'someone')}")
        assert count == 1 and 0 < seconds <= lockout.LOCK_SECONDS
        ratelimit.clear(f"lock:{lockout._ident('staff', 'someone')}")
        lockout.check("staff", "someone", "")
    finally:
        ratelimit.configure(previous)
