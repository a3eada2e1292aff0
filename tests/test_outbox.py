"""The durable outbox: written with the move, sent by the worker with bounded backoff, in
order per peer, never twice at once; the liaison's page shows pending and failed messages and
retries by hand (issue 8)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from portal.db import write_tx
from portal.models import AuditLog, Center, OutboxMessage, PlatformMessage, ProxyCase, utcnow
from portal.platform import exchange, outbox
from portal.platform import http as transport_http
from portal.rules.casestates import OUTBOUND
from tests.conftest import login_staff
from tests.counter_helpers import accept
from tests.platform_http_helpers import (
    HX,
    PEER,
    FakePeer,
    exchange_app,  # noqa: F401 (fixture)
    our_public_key,
    outbound_transmitted,
    read_zip,
    soup,
)

pytestmark = pytest.mark.usefixtures("exchange_app")


@pytest.fixture
def fake_peer():
    """A peer inbox on 127.0.0.1 that checks our signature; its URL is the peer's."""
    fake = FakePeer(public_key=our_public_key()).start()
    Center.update(exchange_url=fake.url).where(Center.code == PEER).execute()
    yield fake
    fake.stop()


def _down(url, data, message_id=""):
    raise transport_http.TransportError("对方拒绝连接（服务未启动或地址有误）")


def _answer(status, body=b'{"status": "accepted"}'):
    def transport(url, data, message_id=""):
        return transport_http.Response(status, body, "application/json")

    return transport


def _queued(case) -> OutboxMessage:
    return OutboxMessage.get(OutboxMessage.case == case)


# --- written with the state change ---------------------------------------------------------


def test_the_outbox_row_is_written_in_the_moves_transaction(fake_peer):
    case = outbound_transmitted()
    row = _queued(case)
    assert row.status == "pending" and row.kind == "case.send" and row.attempts == 0
    assert row.platform_message.message_id == row.message_id


def test_a_rolled_back_move_leaves_no_outbox_row(fake_peer):
    from portal.db import db

    case = accept()
    ProxyCase.update(state="transmitted").where(ProxyCase.id == case.id).execute()
    before = OutboxMessage.select().count()
    with pytest.raises(RuntimeError), db.atomic():
        exchange.send_case(ProxyCase.get_by_id(case.id), "staff:liaison")
        assert OutboxMessage.select().count() == before + 1
        raise RuntimeError("the move fails after queueing")
    assert OutboxMessage.select().count() == before
    assert not PlatformMessage.select().where(PlatformMessage.case == case).exists()


def test_a_file_peer_gets_no_outbox_row():
    case = outbound_transmitted()
    assert not OutboxMessage.select().where(OutboxMessage.case == case).exists()
    assert PlatformMessage.get(PlatformMessage.case == case).storage_key


# --- the worker ------------------------------------------------------------------------------


def test_delivered_over_http_and_signed_by_us(fake_peer):
    case = outbound_transmitted()
    report = outbox.run_once()
    assert report.sent == [_queued(case).message_id]
    row = _queued(case)
    assert row.status == "sent" and row.attempts == 1 and row.last_status == 200
    assert row.sent_at is not None and row.locked_until is None
    [body] = fake_peer.received
    message, _ = read_zip(body)
    assert message["message_id"] == row.message_id and message["type"] == "case.send"
    sent = AuditLog.get((AuditLog.action == "platform.send") & (AuditLog.target_id == str(case.id)))
    assert sent.detail["message_id"] == row.message_id and sent.detail["http_status"] == 200
    # still 待送达: only the peer's acknowledgement confirms receipt
    assert ProxyCase.get_by_id(case.id).delivery == "pending"
    assert outbox.run_once().sent == []  # nothing left


def test_peer_down_then_up_retries_with_backoff(fake_peer):
    case = outbound_transmitted()
    now = utcnow()
    report = outbox.run_once(now=now, transport=_down)
    assert report.retried and not report.sent
    row = _queued(case)
    assert row.status == "pending" and row.attempts == 1
    assert row.next_attempt_at == now + timedelta(seconds=outbox.BASE_DELAY)
    assert "拒绝连接" in row.last_error
    # not due yet: nothing is tried
    assert not outbox.run_once(now=now + timedelta(seconds=1)).busy
    assert fake_peer.received == []
    # second failure doubles the wait
    outbox.run_once(now=now + timedelta(seconds=6), transport=_down)
    row = _queued(case)
    assert row.attempts == 2
    assert row.next_attempt_at == now + timedelta(seconds=6 + 2 * outbox.BASE_DELAY)
    # the peer is back
    report = outbox.run_once(now=now + timedelta(seconds=30))
    assert report.sent == [row.message_id] and _queued(case).status == "sent"
    assert len(fake_peer.received) == 1


def test_backoff_doubles_and_is_bounded():
    delays = [outbox.backoff(n) for n in range(1, 101)]
    assert delays[:4] == [5.0, 10.0, 20.0, 40.0]
    assert max(delays) == outbox.MAX_DELAY and delays[-1] == outbox.MAX_DELAY
    assert all(a <= b for a, b in zip(delays, delays[1:], strict=False))
    assert outbox.backoff(10**6) == outbox.MAX_DELAY
    assert outbox.backoff(3, base=1, cap=2) == 2


def test_server_errors_retry_but_refusals_fail_at_once(fake_peer):
    case = outbound_transmitted()
    outbox.run_once(transport=_answer(503, b'{"error": "busy"}'))
    assert _queued(case).status == "pending" and _queued(case).last_status == 503
    row = _queued(case)
    OutboxMessage.update(next_attempt_at=utcnow()).where(OutboxMessage.id == row.id).execute()
    outbox.run_once(transport=_answer(403, '{"error": "签名校验失败", "code": "x"}'.encode()))
    row = _queued(case)
    assert row.status == "failed" and row.last_status == 403 and "签名校验失败" in row.last_error
    assert ProxyCase.get_by_id(case.id).delivery == "failed"
    assert (
        AuditLog.get(
            (AuditLog.action == "platform.send_failed") & (AuditLog.target_id == str(case.id))
        ).detail["message_id"]
        == row.message_id
    )


def test_after_the_last_attempt_the_message_fails(fake_peer, monkeypatch):
    monkeypatch.setattr(outbox, "MAX_ATTEMPTS", 3)
    case = outbound_transmitted()
    now = utcnow()
    for step in range(3):
        outbox.run_once(now=now + timedelta(hours=step), transport=_down)
    row = _queued(case)
    assert row.status == "failed" and row.attempts == 3 and "重试 3 次" in row.last_error


def test_a_duplicate_answer_counts_as_delivered(fake_peer):
    case = outbound_transmitted()
    outbox.run_once(transport=_answer(200, b'{"status": "duplicate"}'))
    assert _queued(case).status == "sent"
    assert AuditLog.get(
        (AuditLog.action == "platform.send") & (AuditLog.target_id == str(case.id))
    ).detail["duplicate"]


def test_one_peers_messages_keep_their_order(fake_peer):
    first = outbound_transmitted()
    second = outbound_transmitted()
    now = utcnow()
    calls = []

    def flaky(url, data, message_id=""):
        calls.append(message_id)
        raise transport_http.TransportError("连接对方超时")

    outbox.run_once(now=now, transport=flaky)
    assert calls == [_queued(first).message_id]  # the second waits behind the first
    assert _queued(second).attempts == 0
    outbox.run_once(now=now + timedelta(minutes=1))
    assert _queued(first).status == "sent" and _queued(second).status == "sent"
    ids = [read_zip(b)[0]["message_id"] for b in fake_peer.received]
    assert ids == [_queued(first).message_id, _queued(second).message_id]


def test_a_leased_message_is_not_sent_by_another_worker(fake_peer):
    case = outbound_transmitted()
    row = _queued(case)
    now = utcnow()
    assert outbox._claim(row, now)
    assert not outbox._claim(row, now)  # the second worker loses
    assert not outbox.run_once(now=now).busy
    assert outbox.run_once(now=now + outbox.LEASE + timedelta(seconds=1)).sent  # lease ran out


def test_a_missing_exchange_url_fails_clearly(fake_peer):
    case = outbound_transmitted()
    Center.update(exchange_url="").where(Center.code == PEER).execute()
    outbox.run_once()
    assert "未配置交换地址" in _queued(case).last_error


def test_manual_retry_puts_a_failed_message_back(fake_peer):
    case = outbound_transmitted()
    outbox.run_once(transport=_answer(422, b'{"error": "x"}'))
    row = _queued(case)
    assert row.status == "failed"
    retried = outbox.retry("staff:liaison", row.id)
    assert retried.status == "pending" and retried.attempts == 0
    assert ProxyCase.get_by_id(case.id).delivery == "pending"
    assert outbox.run_once().sent == [row.message_id]
    with pytest.raises(outbox.Refused, match="已送达"):
        outbox.retry("staff:liaison", row.id)
    with pytest.raises(outbox.NotFound):
        outbox.retry("staff:liaison", 999999)
    assert AuditLog.get(AuditLog.action == "platform.retry").detail["message_id"] == row.message_id


# --- the liaison's page -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "username, status",
    [("liaison", 200), ("clerk", 403), ("handler", 403), ("auditor", 403), ("admin", 403)],
)
def test_the_outbox_page_is_for_the_liaison(client, username, status):
    login_staff(client, username)
    assert client.get("/staff/outbox/").status_code == status


def test_the_outbox_page_anonymous_redirects_to_login(client):
    r = client.get("/staff/outbox/")
    assert r.status_code == 302 and "/staff/login" in r.headers["Location"]
    assert client.get("/staff/outbox/", headers=HX).status_code == 401


def test_the_outbox_page_shows_pending_and_failed_and_polls(client, fake_peer):
    pending = outbound_transmitted()
    failed = outbound_transmitted()
    with write_tx():
        OutboxMessage.update(
            status="failed", attempts=4, last_error="对方拒收（HTTP 403）：签名校验失败"
        ).where(OutboxMessage.case == failed.id).execute()
    OutboxMessage.update(attempts=2, last_error="连接对方超时").where(
        OutboxMessage.case == pending.id
    ).execute()
    login_staff(client, "liaison")
    r = client.get("/staff/outbox/")
    page = soup(r)
    assert r.status_code == 200 and page.select_one("html") is not None
    failed_rows = page.select("#outbox-failed tbody tr")
    assert len(failed_rows) == 1 and failed.case_no in failed_rows[0].get_text()
    assert "签名校验失败" in failed_rows[0].get_text()
    pending_rows = page.select("#outbox-pending tbody tr")
    assert pending.case_no in pending_rows[0].get_text()
    assert "连接对方超时" in pending_rows[0].get_text()
    live = page.select_one("#outbox-live")
    assert live["hx-trigger"] == "every 5s" and "X-Portal-Poll" in live["hx-headers"]
    assert "在线交换" in page.select_one(".outbox-peers").get_text()
    # the same URL to htmx: the fragment only
    r = client.get("/staff/outbox/", headers=HX)
    assert "<html" not in r.get_data(as_text=True) and soup(r).select_one("#outbox-live")
    assert "HX-Request" in r.headers["Vary"]


def test_retry_by_hand_from_the_page(client, fake_peer):
    case = outbound_transmitted()
    OutboxMessage.update(status="failed", last_error="x").where(
        OutboxMessage.case == case.id
    ).execute()
    row = _queued(case)
    login_staff(client, "liaison")
    r = client.post(f"/staff/outbox/{row.id}/retry")
    assert r.status_code == 303
    assert "重新排队" in soup(client.get(r.headers["Location"])).select_one(".flashes").get_text()
    assert _queued(case).status == "pending"
    # htmx: the fragment comes back, with the notice
    OutboxMessage.update(status="failed").where(OutboxMessage.id == row.id).execute()
    r = client.post(f"/staff/outbox/{row.id}/retry", headers=HX)
    assert r.status_code == 200 and "重新排队" in soup(r).select_one("#outbox-live").get_text()
    # already delivered: refused, told
    OutboxMessage.update(status="sent").where(OutboxMessage.id == row.id).execute()
    r = client.post(f"/staff/outbox/{row.id}/retry", headers=HX)
    assert r.status_code == 409 and "已送达" in r.get_data(as_text=True)
    assert client.post("/staff/outbox/999999/retry").status_code == 404
    assert client.get(f"/staff/outbox/{row.id}/retry").status_code == 405


def test_the_card_shows_a_failed_delivery(client, fake_peer):
    case = outbound_transmitted()
    outbox.run_once(transport=_answer(403, b'{"error": "x"}'))
    login_staff(client, "liaison")
    card = soup(client.get("/staff/board/outbound")).select_one(f"#case-{case.id}")
    assert "发送失败" in card.select_one(".kcard-delivery").get_text()


def test_the_liaison_nav_links_the_outbox(client):
    login_staff(client, "liaison")
    nav = soup(client.get("/staff/")).select_one("nav.nav")
    assert nav.select_one("a[href='/staff/outbox/']").get_text() == "平台交换"
    assert nav.select_one("a[href='/staff/ecode/']") is None


def test_outbound_cases_only(fake_peer):
    from portal.platform import files

    case = outbound_transmitted()
    inbound = ProxyCase.get_by_id(case.id)
    inbound.direction = "inbound"
    with pytest.raises(files.ExportRefused):
        exchange.send_case(inbound, "x")
    assert case.direction == OUTBOUND
