"""Issue 9, point 18: an online backup taken while writes go on restores into a fresh place
and passes the integrity and invariant checks (``portal.backup``, the same checks the crash test
runs). The database under backup is a database of its own with the small demo data (a new SQLite
file, or with TEST_DATABASE_URL a PostgreSQL database named after it plus ``_bk``); restores go
to new SQLite files or to fresh PostgreSQL databases (``_rs0`` ...)."""

from __future__ import annotations

import os
import tempfile
import threading
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from portal import backup, storage
from portal.backup import check_database, create_backup, restore_backup, using
from portal.db import db, locked, write_tx
from portal.filters import local_today
from portal.models import Account, AuditLog, BankTransfer, DepositRecord, Payout
from portal.services import audit
from tests.security_helpers import side_database

pytestmark = pytest.mark.committed
PG = os.environ.get("TEST_DATABASE_URL")


@pytest.fixture(scope="module")
def side(app):
    from portal import demo, migrate

    with tempfile.TemporaryDirectory(prefix="hpf-backup-") as tmp:
        url = side_database(PG, "bk", fresh=True) if PG else f"sqlite:///{tmp}/live.db"
        with using(url) as database:
            migrate.upgrade(database, log=lambda *_: None)
            demo.load(local_today(), size=30, log=lambda *_: None)
        yield url, Path(tmp)


def _fresh_url(tmp: Path, name: str) -> str:
    return side_database(PG, name, fresh=True) if PG else f"sqlite:///{tmp}/{name}.db"


class Writer(threading.Thread):
    """Keeps writing what the checks verify: ledger lines with their balance, and audit rows."""

    def __init__(self):
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.done = 0
        self.error: Exception | None = None

    def run(self):
        try:
            accounts = [a.id for a in Account.select(Account.id).where(Account.status == "正常")]
            while not self.stop.is_set():
                with write_tx():
                    account = locked(
                        Account.select().where(Account.id == accounts[self.done % len(accounts)])
                    ).get()
                    balance = account.balance + Decimal("1.00")
                    DepositRecord.create(
                        account=account,
                        kind="补缴",
                        posted_on=local_today(),
                        amount=Decimal("1.00"),
                        balance_after=balance,
                        memo="备份测试",
                    )
                    Account.update(balance=balance).where(Account.id == account.id).execute()
                    audit.record("test", "backup.probe", "account", account.id, n=self.done)
                self.done += 1
        except Exception as exc:  # reported by the test
            self.error = exc
        finally:
            if not db.is_closed():  # this thread's own connection
                db.close()


def test_an_online_backup_while_writes_go_on_restores_and_passes_the_checks(side):
    url, tmp = side
    store = storage.get_storage().root
    key, _digest = storage.get_storage().put(b"%PDF-1.4 backup test", "test", ".pdf")
    with using(url):
        writer = Writer()
        writer.start()
        while writer.done < 5 and writer.error is None:
            writer.join(0.05)
        backups = []
        for _ in range(3):  # each taken with the writer busy
            backups.append(create_backup(tmp / "backups", url, store))
        writes_during = writer.done
        writer.stop.set()
        writer.join(30)
        assert writer.error is None, writer.error
        assert writes_during > 5, "the writer did not write while the backups ran"
        total = AuditLog.select().where(AuditLog.action == "backup.probe").count()
    for i, target in enumerate(backups):
        fresh = _fresh_url(tmp, f"rs{i}")
        restore_backup(target, fresh, tmp / f"storage-{i}")
        with using(fresh):
            report = check_database()
            assert report.ok, report.problems
            copied = AuditLog.select().where(AuditLog.action == "backup.probe").count()
            assert 0 < copied <= total
        restored = tmp / f"storage-{i}" / key
        assert restored.read_bytes() == (store / key).read_bytes()


def test_restore_goes_only_to_a_fresh_place_and_refuses_a_tampered_backup(side):
    url, tmp = side
    with using(url):
        target = create_backup(tmp / "backups", url, None)
    fresh = _fresh_url(tmp, "rsx")
    restore_backup(target, fresh, None)
    with pytest.raises(backup.BackupError, match="fresh"):
        restore_backup(target, fresh, None)
    name = backup.PG_FILE if PG else backup.SQLITE_FILE
    data = bytearray((target / name).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (target / name).write_bytes(bytes(data))
    with pytest.raises(backup.BackupError, match="does not match"):
        restore_backup(target, _fresh_url(tmp, "rsy"), None)


def test_the_checks_find_a_broken_ledger_and_money_the_bank_does_not_know(side):
    url, tmp = side
    with using(url):
        target = create_backup(tmp / "backups", url, None)
    fresh = _fresh_url(tmp, "rsz")
    restore_backup(target, fresh, None)
    with using(fresh):
        assert check_database().ok
        line = DepositRecord.select().order_by(DepositRecord.id).first()
        DepositRecord.update(balance_after=line.balance_after + Decimal("0.01")).where(
            DepositRecord.id == line.id
        ).execute()
        account = Account.select().where(Account.status == "正常").order_by(Account.id).first()
        Payout.create(
            account=account,
            kind="retirement",
            amount=Decimal("10.00"),
            idempotency_key="backup-test:confirmed-without-bank",
            status="confirmed",
            detail={"on": date.today().isoformat()},
        )
        Payout.create(
            account=account,
            kind="retirement",
            amount=Decimal("10.00"),
            idempotency_key="backup-test:reversed-but-paid",
            status="reversed",
        )
        BankTransfer.create(
            idempotency_key="backup-test:reversed-but-paid",
            direction="out",
            amount=Decimal("10.00"),
            card="",
            reference="DEVBACKUPTEST1",
        )
        BankTransfer.create(
            idempotency_key="backup-test:no-payout",
            direction="out",
            amount=Decimal("5.00"),
            card="",
            reference="DEVBACKUPTEST2",
        )
        Payout.create(
            account=account,
            kind="retirement",
            amount=Decimal("1.00"),
            idempotency_key="backup-test:pending",
            status="pending",
        )
        problems = "\n".join(check_database().problems)
        assert f"ledger line {line.id}" in problems
        assert "confirmed but the bank has no transfer" in problems
        assert "confirmed but no ledger line" in problems
        assert "reversed but the bank paid" in problems
        assert "belongs to no payout" in problems
        assert "still pending" in problems
        assert "still pending" not in "\n".join(check_database(allow_pending=True).problems)


def test_the_commands(side, runner):
    url, tmp = side
    out = tmp / "cli"
    with using(url):
        target = create_backup(out, url, None)
    fresh = _fresh_url(tmp, "rscli")
    result = runner.invoke(args=["backup", "restore", str(target), "--database-url", fresh])
    assert result.exit_code == 0, result.output
    assert "all checks passed" in result.output
    result = runner.invoke(args=["backup", "check", "--database-url", fresh])
    assert result.exit_code == 0 and "all checks passed" in result.output, result.output
    result = runner.invoke(args=["backup", "create", "--out", str(tmp / "cli-live")])
    assert result.exit_code == 0, result.output
    assert (Path(result.output.strip()) / backup.MANIFEST).is_file()
