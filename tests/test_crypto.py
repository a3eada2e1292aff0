"""Resident IDs and bank cards are encrypted at rest (AES-GCM) with keyed-hash lookups."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess

import pytest

from portal import crypto
from portal.db import db, is_postgres
from portal.models import Depositor, EmployerOperator, ProxyCase
from portal.services import identity


def test_round_trip_and_column_binding():
    token = crypto.seal("11010519491231002X", "depositor.resident_id")
    assert "11010519491231002X" not in token
    assert crypto.unseal(token, "depositor.resident_id") == "11010519491231002X"
    with pytest.raises(crypto.CryptoError):
        crypto.unseal(token, "proxy_case.applicant_id_no")  # copied into another column
    assert crypto.seal("x", "c") != crypto.seal("x", "c")  # random nonce


def test_lookups_work_through_the_blind_index(depositor):
    assert Depositor.get_or_none(Depositor.resident_id == depositor.resident_id).id == depositor.id
    assert identity.find_depositor(depositor.resident_id.lower()).id == depositor.id
    assert Depositor.select().where(Depositor.resident_id.in_([depositor.resident_id])).count() == 1
    assert ProxyCase.select().where(ProxyCase.applicant_id_no == "nobody").count() == 0


def test_the_database_holds_ciphertext_only(depositor):
    row = (
        Depositor.select(
            Depositor.resident_id.cast("TEXT"),
            Depositor.bank_card.cast("TEXT"),
            Depositor.resident_id_index,
        )
        .where(Depositor.id == depositor.id)
        .tuples()
        .get()
    )
    assert depositor.resident_id not in row[0] and depositor.bank_card not in row[1]
    assert row[2] == crypto.blind_index(depositor.resident_id, "resident_id")


def test_rotation_re_encrypts_with_the_new_key(depositor, runner):
    old = crypto.ring()
    new_key = base64.b64encode(os.urandom(32)).decode()
    rotated = crypto.Keyring({"k9": base64.b64decode(new_key), **old.keys}, old.lookup_key)
    crypto.configure(rotated)
    try:
        result = runner.invoke(args=["crypto", "rotate"])
        assert result.exit_code == 0, result.output
        raw = (
            Depositor.select(Depositor.resident_id.cast("TEXT"))
            .where(Depositor.id == depositor.id)
            .scalar()
        )
        assert raw.startswith("k9:")
        assert Depositor.get_by_id(depositor.id).resident_id == depositor.resident_id
        crypto.configure(crypto.Keyring({"k9": rotated.keys["k9"]}, old.lookup_key))
        assert Depositor.get_by_id(depositor.id).resident_id == depositor.resident_id
    finally:
        crypto.configure(old)
        runner.invoke(args=["crypto", "rotate"])


@pytest.mark.committed  # no transaction of the test's own: the checkpoint below needs none
def test_no_demo_id_or_card_in_clear_in_the_database_files(app, depositor):
    """The SQLite file (or a pg_dump of PostgreSQL) holds no ID or card in clear.

    On SQLite the write-ahead log is checkpointed and truncated first: the pool keeps
    connections open, so the log also holds the frames of other tests' rolled-back
    transactions (never part of the database), which SQLite reuses or drops at a checkpoint.
    """
    db.connect(reuse_if_open=True)
    try:
        operator = EmployerOperator.select().first()
        secrets_ = [depositor.resident_id, depositor.bank_card, operator.resident_id]
        if not is_postgres():
            busy, _log, _done = db.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            assert busy == 0
        _assert_not_in_files(secrets_)
    finally:
        db.close()


def _assert_not_in_files(secrets_: list[str]) -> None:
    if is_postgres():
        if shutil.which("pg_dump") is None:
            pytest.skip("pg_dump not installed")
        params = db.obj.connect_params
        dump = subprocess.run(
            [
                "pg_dump",
                "-h",
                params.get("host", "127.0.0.1"),
                "-U",
                params.get("user", "postgres"),
                "-p",
                str(params.get("port", 5432)),
                db.obj.database,
            ],
            capture_output=True,
            check=True,
        ).stdout
    else:
        # Read by another process: closing a descriptor of the file here would drop the POSIX
        # locks SQLite holds on it for this process's (pooled, still open) connections.
        dump = b""
        for path in (db.obj.database, db.obj.database + "-wal"):
            if os.path.exists(path):
                dump += subprocess.run(["cat", path], capture_output=True, check=True).stdout
    for value in secrets_:
        assert value.encode() not in dump


def test_migration_0013_seals_the_case_payouts_already_recorded(tmp_path):
    """A database that recorded case payouts in clear (before 0013) has them sealed by it."""
    import importlib.util
    import json

    from peewee import SqliteDatabase
    from playhouse.migrate import SqliteMigrator

    from portal.migrate import MIGRATIONS_DIR

    spec = importlib.util.spec_from_file_location(
        "m0013", MIGRATIONS_DIR / "0013_sealed_case_payouts.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    old = SqliteDatabase(str(tmp_path / "old.db"))
    old.connect()
    old.execute_sql(
        'CREATE TABLE "case_payout" ("id" INTEGER PRIMARY KEY, "bank_card" VARCHAR(19), '
        '"spouse_id_no" VARCHAR(18) NOT NULL DEFAULT \'\', "co_owners" TEXT NOT NULL)'
    )
    owners = [{"name": "郑洁", "id_no": "152921199001011234"}]
    old.execute_sql(
        "INSERT INTO \"case_payout\" VALUES (1, ?, ?, ?), (2, NULL, '', '[]')",
        ("6222027623895686675", "15292119900202123X", json.dumps(owners, ensure_ascii=False)),
    )
    module.upgrade(old, SqliteMigrator(old))
    rows = old.execute_sql('SELECT * FROM "case_payout" ORDER BY "id"').fetchall()
    old.close()
    (_, card, spouse, co), (_, card2, spouse2, co2) = rows
    assert "6222" not in card and "1529" not in spouse and "郑洁" not in co
    assert crypto.unseal(card, "case_payout.bank_card") == "6222027623895686675"
    assert crypto.unseal(spouse, "case_payout.spouse_id_no") == "15292119900202123X"
    assert json.loads(crypto.unseal(co, "case_payout.co_owners")) == owners
    assert card2 is None and crypto.unseal(spouse2, "case_payout.spouse_id_no") == ""
    assert json.loads(crypto.unseal(co2, "case_payout.co_owners")) == []
