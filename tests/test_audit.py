"""The audit log: hash chain, append-only, retention, concurrent writers."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest
from peewee import DatabaseError

from portal.db import db, is_postgres
from portal.models import AuditHead, AuditLog, utcnow
from portal.services import audit


def test_rows_are_chained():
    a = audit.record("test", "one", "x", 1, note="甲")
    b = audit.record("test", "two", "x", 2)
    assert b.prev_hash == a.row_hash
    assert AuditHead.get_by_id(1).last_hash == b.row_hash
    assert audit.verify().ok


def test_updates_are_refused_by_the_database():
    row = audit.record("test", "one")
    with pytest.raises(DatabaseError):
        with db.atomic():
            AuditLog.update(action="changed").where(AuditLog.id == row.id).execute()


def test_recent_rows_cannot_be_deleted():
    row = audit.record("test", "one")
    with pytest.raises(DatabaseError):
        with db.atomic():
            AuditLog.delete().where(AuditLog.id == row.id).execute()


def test_purge_refuses_recent_rows():
    with pytest.raises(audit.PurgeRefused):
        audit.purge(utcnow() - timedelta(days=10))


def test_verify_names_the_first_tampered_row():
    rows = [audit.record("test", f"step{i}") for i in range(3)]
    # simulate tampering below the application (triggers dropped for the attacker's session)
    _without_guard(
        lambda: AuditLog.update(actor="attacker").where(AuditLog.id == rows[1].id).execute()
    )
    report = audit.verify()
    assert not report.ok and report.broken_at == rows[1].id and "篡改" in report.reason


def test_verify_detects_a_removed_row():
    rows = [audit.record("test", f"step{i}") for i in range(3)]
    _without_guard(lambda: AuditLog.delete().where(AuditLog.id == rows[1].id).execute())
    report = audit.verify()
    assert not report.ok and report.broken_at == rows[2].id


def test_purge_of_old_rows_keeps_the_chain_verifiable():
    old = datetime(2020, 1, 1)
    audit.record("test", "one")
    ids = _first_ids(3)
    _without_guard(lambda: AuditLog.update(at=old).where(AuditLog.id.in_(ids)).execute())
    _rechain()
    assert audit.verify().ok
    n = audit.purge(datetime(2021, 1, 1), now=utcnow())
    assert n >= 1
    assert audit.verify().ok


def test_cli_verify(runner):
    audit.record("test", "one")
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 0 and "intact" in result.output


# --- helpers that play the attacker, below the application --------------------------------


def _first_ids(n):
    return [row.id for row in AuditLog.select(AuditLog.id).order_by(AuditLog.id).limit(n)]


def _without_guard(action):
    if is_postgres():
        db.execute_sql("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
        try:
            action()
        finally:
            db.execute_sql("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only")
    else:
        db.execute_sql("DROP TRIGGER audit_log_no_update")
        db.execute_sql("DROP TRIGGER audit_log_retention")
        try:
            action()
        finally:
            db.execute_sql(
                "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log "
                "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
            )
            db.execute_sql(
                "CREATE TRIGGER audit_log_retention BEFORE DELETE ON audit_log "
                "WHEN OLD.at > datetime('now', '-180 days') "
                "BEGIN SELECT RAISE(ABORT, 'audit rows younger than 180 days cannot be purged'); "
                "END"
            )


def _rechain():
    """Recompute every hash (after the test moved rows into the past)."""

    def rewrite():
        prev = ""
        for row in AuditLog.select().order_by(AuditLog.id):
            digest = audit.row_hash(
                prev,
                row.at,
                row.actor,
                row.action,
                row.target_type,
                row.target_id,
                row.detail or {},
                row.ip,
            )
            AuditLog.update(prev_hash=prev, row_hash=digest).where(AuditLog.id == row.id).execute()
            prev = digest
        AuditHead.update(last_hash=prev, anchor_hash="").where(AuditHead.id == 1).execute()

    _without_guard(rewrite)


@pytest.mark.committed
def test_concurrent_writers_extend_one_chain():
    db.connect(reuse_if_open=True)
    before = AuditLog.select().count()
    errors = []

    def write(i):
        try:
            db.connect(reuse_if_open=True)
            for k in range(5):
                audit.record("test", f"concurrent.{i}.{k}")
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)
        finally:
            db.close()

    threads = [threading.Thread(target=write, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    db.connect(reuse_if_open=True)
    assert errors == []
    assert AuditLog.select().count() == before + 30
    assert audit.verify().ok
    db.close()


# --- the auditor's view -------------------------------------------------------------------


def test_auditor_searches_and_pages(client):
    from bs4 import BeautifulSoup

    from tests.conftest import login_staff

    for i in range(3):
        audit.record("staff:tester", "case.move", "case", 4242, step=i)
    login_staff(client, "auditor")
    r = client.get("/staff/audit/?target=4242")
    assert r.status_code == 200
    page = BeautifulSoup(r.get_data(as_text=True), "html.parser")
    assert len(page.select(".audit-row")) == 3
    assert page.select_one("#chain-status") is None  # checked on request only
    r = client.get("/staff/audit/?target=4242&verify=1")
    page = BeautifulSoup(r.get_data(as_text=True), "html.parser")
    assert "哈希链完整" in page.select_one("#chain-status").get_text()
    r = client.get("/staff/audit/?action=case.&actor=tester", headers={"HX-Request": "true"})
    assert r.status_code == 200 and "<html" not in r.get_data(as_text=True)
    assert len(BeautifulSoup(r.get_data(as_text=True), "html.parser").select(".audit-row")) == 3


def test_bad_filter_is_422(client):
    from tests.conftest import login_staff

    login_staff(client, "auditor")
    assert client.get("/staff/audit/?start=2026-13-40").status_code == 422


def test_export_is_itself_audited(client):
    from io import BytesIO

    from openpyxl import load_workbook

    from tests.conftest import login_staff

    audit.record("staff:tester", "case.move", "case", 777)
    login_staff(client, "auditor")
    r = client.get("/staff/audit/export.xlsx?target=777")
    rows = list(load_workbook(BytesIO(r.data)).active.values)
    assert rows[0][0] == "编号" and len(rows) == 2
    assert AuditLog.select().where(AuditLog.action == "audit.export").exists()


@pytest.mark.parametrize("username", ["clerk", "liaison", "handler", "official", "admin"])
def test_only_the_auditor_reads_the_log(client, username):
    from tests.conftest import login_staff

    login_staff(client, username)
    assert client.get("/staff/audit/").status_code == 403
    assert client.get("/staff/audit/export.xlsx").status_code == 403
