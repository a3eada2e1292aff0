"""Resident IDs and bank cards are encrypted at rest (AES-GCM) with keyed-hash lookups."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess

import pytest

from portal import crypto
from portal.db import db
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


def test_no_demo_id_or_card_in_clear_in_the_database_files(app, depositor):
    """The SQLite file (or a pg_dump of PostgreSQL) holds no ID or card in clear."""
    operator = EmployerOperator.select().first()
    secrets_ = [depositor.resident_id, depositor.bank_card, operator.resident_id]
    if "Postgres" in type(db.obj).__name__:
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
        dump = b""
        for path in (db.obj.database, db.obj.database + "-wal"):
            if os.path.exists(path):
                with open(path, "rb") as fh:
                    dump += fh.read()
    for value in secrets_:
        assert value.encode() not in dump
