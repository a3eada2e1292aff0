"""Nothing is lost across restarts: the worker runs as its own process (`flask --app portal
platform worker --once`, a fresh app each time) against committed data, with the peer down,
then up again (committed data; SQLite and, with TEST_DATABASE_URL, PostgreSQL)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from portal.db import db
from portal.models import (
    Attachment,
    AuditLog,
    CaseEvent,
    Center,
    OutboxMessage,
    PlatformMessage,
    ProxyCase,
    utcnow,
)
from portal.platform import messages, signing
from tests.platform_http_helpers import (
    PEER,
    FakePeer,
    exchange_app,  # noqa: F401 (fixture)
    our_public_key,
    outbound_transmitted,
    read_zip,
    worker_env,
)

pytestmark = [pytest.mark.committed, pytest.mark.usefixtures("exchange_app")]
ROOT = Path(__file__).resolve().parent.parent


def _worker(app) -> subprocess.CompletedProcess:
    flask = str(Path(sys.executable).parent / "flask")
    done = subprocess.run(
        [flask, "--app", "portal", "platform", "worker", "--once"],
        cwd=ROOT,
        env=worker_env(app),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.fixture
def committed_case(app):
    db.connect(reuse_if_open=True)
    peer = FakePeer(public_key=None)  # a port for the peer; not listening yet (down)
    Center.update(exchange_url=peer.url).where(Center.code == PEER).execute()
    case = outbound_transmitted()
    yield case, peer
    peer.stop()
    with db.atomic():
        OutboxMessage.delete().where(OutboxMessage.case == case.id).execute()
        PlatformMessage.delete().where(PlatformMessage.case == case.id).execute()
        Attachment.delete().where(Attachment.case == case.id).execute()
        CaseEvent.delete().where(CaseEvent.case == case.id).execute()
        ProxyCase.delete().where(ProxyCase.id == case.id).execute()
        Center.update(exchange_url="").where(Center.code == PEER).execute()
        # audit rows stay: the audit log is append-only
    db.close()


def test_the_message_waits_while_the_peer_is_down_and_goes_once_it_is_up(app, committed_case):
    case, peer = committed_case
    peer.public_key = our_public_key()
    row = OutboxMessage.get(OutboxMessage.case == case)
    assert row.status == "pending"

    first = _worker(app)  # a worker process; the peer does not answer
    row = OutboxMessage.get_by_id(row.id)
    assert row.status == "pending" and row.attempts == 1, first.stdout + first.stderr
    assert "拒绝连接" in row.last_error and row.next_attempt_at > utcnow()
    assert peer.received == []

    peer.start()  # the peer comes back (same address); a new worker process takes over
    OutboxMessage.update(next_attempt_at=utcnow()).where(OutboxMessage.id == row.id).execute()
    second = _worker(app)
    row = OutboxMessage.get_by_id(row.id)
    assert row.status == "sent" and row.attempts == 2, second.stdout + second.stderr
    assert f"sent {row.message_id}" in second.stdout
    [body] = peer.received
    message, signature = read_zip(body)
    assert message["message_id"] == row.message_id
    assert signing.verify(our_public_key(), messages.canonical(message), signature["signature"])

    _worker(app)  # a third run sends nothing again
    assert len(peer.received) == 1
    assert (
        AuditLog.get(
            (AuditLog.action == "platform.send") & (AuditLog.target_id == str(case.id))
        ).detail["attempts"]
        == 2
    )


def test_the_peer_treats_a_redelivery_as_a_no_op(app, committed_case):
    """A worker that crashed after sending but before recording it sends again: the peer
    answers "duplicate" and the message counts as delivered, once."""
    case, peer = committed_case
    peer.start()
    row = OutboxMessage.get(OutboxMessage.case == case)
    _worker(app)
    assert OutboxMessage.get_by_id(row.id).status == "sent"
    # as if the first delivery was never recorded
    OutboxMessage.update(status="pending", next_attempt_at=utcnow(), sent_at=None).where(
        OutboxMessage.id == row.id
    ).execute()
    _worker(app)
    assert OutboxMessage.get_by_id(row.id).status == "sent"
    assert len(peer.received) == 2 and len(peer.seen) == 1
    sends = AuditLog.select().where(
        (AuditLog.action == "platform.send") & (AuditLog.target_id == str(case.id))
    )
    assert [s.detail["duplicate"] for s in sends.order_by(AuditLog.id)] == [False, True]
