"""Online backup and restore, and the database checks they share with the crash test.

``flask --app portal backup create --out DIR`` takes a backup while the portal keeps writing:
SQLite through its online backup API (one consistent snapshot; WAL lets writers go on),
PostgreSQL through ``pg_dump`` (a consistent snapshot by MVCC). The storage directory (PDFs,
scans) goes along as a tar, and a manifest lists every file with its SHA-256.

``flask --app portal backup restore DIR --database-url URL --storage-dir DIR`` restores into a
fresh place only (an SQLite file that does not exist yet, a PostgreSQL database without tables,
an empty storage directory), verifies the manifest first and runs the checks on the result.

``flask --app portal backup check [--database-url URL] [--allow-pending]`` runs the checks
(:func:`check_database`) on the portal's database or another one:

* the engine's own integrity (SQLite ``PRAGMA integrity_check`` and ``foreign_key_check``;
  PostgreSQL: invalid or unready indexes, unvalidated constraints, ``amcheck`` on every B-tree
  index when the extension is installed, and a full read of every table);
* every foreign key points at a row;
* every account's ledger adds up: each line's balance is the previous plus its amount, and the
  account's balance is the last line's, never negative;
* money: every confirmed payout has its bank transfer (same key, direction and amount) and its
  ledger line, no reversed payout has one, every bank transfer belongs to a payout that is not
  reversed, and (unless ``--allow-pending``) nothing is left pending;
* the audit log's hash chain is intact.

The encryption keys are not in a backup (they come from the environment): keep them apart.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess  # nosec B404 - runs pg_dump / pg_restore with argument lists, no shell
import tarfile
import tempfile
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup
from peewee import ForeignKeyField, PostgresqlDatabase, SqliteDatabase

from portal.db import db, make_database

MANIFEST = "manifest.json"
SQLITE_FILE = "database.sqlite3"
PG_FILE = "database.pgdump"
STORAGE_FILE = "storage.tar"
OUT_KINDS = ("retirement", "purchase")  # paid to a card by the bank (services.payouts)


class BackupError(click.ClickException):
    """A backup or restore that cannot go on; the message says why."""


# --- the checks ---------------------------------------------------------------------------


@dataclass
class Report:
    problems: list[str]
    summary: dict[str, int]

    @property
    def ok(self) -> bool:
        return not self.problems


def check_database(allow_pending: bool = False) -> Report:
    """Every check on the database ``portal.db.db`` points at now."""
    db.connect(reuse_if_open=True)
    problems: list[str] = []
    summary: dict[str, int] = {}
    problems += _engine_integrity()
    problems += _foreign_keys()
    problems += _ledgers(summary)
    problems += _money(summary, allow_pending)
    problems += _audit_chain(summary)
    return Report(problems, summary)


def _engine_integrity() -> list[str]:
    problems = []
    if isinstance(db.obj, SqliteDatabase):
        rows = [r[0] for r in db.execute_sql("PRAGMA integrity_check").fetchall()]
        if rows != ["ok"]:
            problems += [f"sqlite integrity_check: {r}" for r in rows[:20]]
        for table, rowid, parent, _fk in db.execute_sql("PRAGMA foreign_key_check").fetchall():
            problems.append(f"sqlite foreign_key_check: {table} row {rowid} → {parent}")
        return problems
    invalid = db.execute_sql(
        "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = current_schema() AND NOT (i.indisvalid AND i.indisready)"
    ).fetchall()
    problems += [f"postgresql index not valid: {name}" for (name,) in invalid]
    unvalidated = db.execute_sql(
        "SELECT conname FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace "
        "WHERE n.nspname = current_schema() AND NOT c.convalidated"
    ).fetchall()
    problems += [f"postgresql constraint not validated: {name}" for (name,) in unvalidated]
    has_amcheck = db.execute_sql("SELECT 1 FROM pg_extension WHERE extname = 'amcheck'").fetchone()
    if has_amcheck:
        indexes = db.execute_sql(
            "SELECT c.oid, c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "JOIN pg_am a ON a.oid = c.relam JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = current_schema() AND a.amname = 'btree'"
        ).fetchall()
        for oid, name in indexes:
            try:
                db.execute_sql("SELECT bt_index_check(%s::regclass)", (oid,))
            except Exception as exc:  # amcheck reports corruption by raising
                problems.append(f"postgresql amcheck {name}: {exc}")
    for table in db.get_tables():  # read every row once; names come from the catalog
        db.execute_sql(f'SELECT count(*) FROM "{table}"')  # noqa: S608  # nosec B608
    return problems


def _foreign_keys() -> list[str]:
    from portal.models import MODELS

    problems = []
    for model in MODELS:
        for field in model._meta.sorted_fields:
            if not isinstance(field, ForeignKeyField):
                continue
            child, parent = model._meta.table_name, field.rel_model._meta.table_name
            column, target = field.column_name, field.rel_field.column_name
            # identifiers from the models (never input); values none
            join = f'"{child}" c LEFT JOIN "{parent}" p ON c."{column}" = p."{target}"'
            where = f'c."{column}" IS NOT NULL AND p."{target}" IS NULL'
            sql = f"SELECT count(*) FROM {join} WHERE {where}"  # noqa: S608  # nosec B608
            orphans = db.execute_sql(sql).fetchone()[0]
            if orphans:
                problems.append(f"{orphans} row(s) of {child}.{column} point at no {parent}")
    return problems


def _ledgers(summary: dict[str, int]) -> list[str]:
    from portal.models import Account, DepositRecord

    problems = []
    last: dict[int, Decimal] = {}
    lines = (
        DepositRecord.select(
            DepositRecord.id,
            DepositRecord.account,
            DepositRecord.amount,
            DepositRecord.balance_after,
        )
        .order_by(DepositRecord.account, DepositRecord.posted_on, DepositRecord.id)
        .tuples()
        .iterator()
    )
    count = 0
    for line_id, account_id, amount, balance_after in lines:
        count += 1
        previous = last.get(account_id, Decimal("0.00"))
        if previous + amount != balance_after:
            problems.append(
                f"account {account_id}: ledger line {line_id} says {balance_after} after "
                f"{previous} {amount:+}"
            )
        last[account_id] = balance_after
    summary["ledger lines"] = count
    accounts = 0
    for account in Account.select(Account.id, Account.balance, Account.status).iterator():
        accounts += 1
        if account.balance < 0:
            problems.append(f"account {account.id}: negative balance {account.balance}")
        expected = last.get(account.id, Decimal("0.00"))
        if account.balance != expected:
            problems.append(
                f"account {account.id}: balance {account.balance} but its ledger ends at {expected}"
            )
    summary["accounts"] = accounts
    return problems[:200]


def _money(summary: dict[str, int], allow_pending: bool) -> list[str]:
    from portal.models import BankTransfer, DepositRecord, Payout

    problems = []
    transfers = {t.idempotency_key: t for t in BankTransfer.select()}
    payouts = {p.idempotency_key: p for p in Payout.select()}
    withdrawals: dict[int, list[Decimal]] = defaultdict(list)
    for account_id, amount in (
        DepositRecord.select(DepositRecord.account, DepositRecord.amount)
        .where(DepositRecord.kind == "提取")
        .tuples()
    ):
        withdrawals[account_id].append(amount)
    counts = defaultdict(int)
    for key, p in payouts.items():
        counts[p.status] += 1
        detail = p.detail or {}
        if p.kind in OUT_KINDS:
            leg = ("out", p.amount)
        elif p.kind == "loan_offset" and Decimal(detail.get("rest", "0")) > 0:
            leg = ("in", Decimal(detail["rest"]))
        else:
            leg = None
        transfer = transfers.get(key)
        if p.status == "pending":
            if not allow_pending:
                problems.append(f"payout {p.id} ({p.kind}) is still pending")
        elif p.status == "confirmed":
            if leg and transfer is None:
                problems.append(f"payout {p.id} is confirmed but the bank has no transfer")
            elif leg and (transfer.direction, transfer.amount) != leg:
                problems.append(
                    f"payout {p.id}: bank moved {transfer.direction} {transfer.amount}, "
                    f"the portal recorded {leg[0]} {leg[1]}"
                )
            if p.amount > 0 and -p.amount not in withdrawals.get(p.account_id, []):
                problems.append(f"payout {p.id} is confirmed but no ledger line takes it out")
        elif p.status == "reversed" and transfer is not None:
            problems.append(f"payout {p.id} is reversed but the bank paid ({transfer.reference})")
    for key, transfer in transfers.items():
        if key not in payouts:
            problems.append(f"bank transfer {transfer.reference} belongs to no payout")
    summary.update({f"payouts {status}": n for status, n in counts.items()})
    summary["bank transfers"] = len(transfers)
    return problems


def _audit_chain(summary: dict[str, int]) -> list[str]:
    from portal.services import audit

    report = audit.verify()
    summary["audit rows"] = report.rows
    if report.ok:
        return []
    return [f"audit chain broken at row {report.broken_at}: {report.reason}"]


@contextmanager
def using(url: str):
    """Point the models at another database for a while (a restored copy)."""
    previous = db.obj
    other = make_database(url)
    db.initialize(other)
    try:
        other.connect()
        yield other
    finally:
        if not other.is_closed():
            other.close()
        db.initialize(previous)


# --- backup -------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _pg_url(url: str) -> str:
    return url.replace("psycopg3://", "postgresql://", 1).replace("postgres://", "postgresql://", 1)


def _run(args: list[str]) -> None:
    # pg_dump / pg_restore with an argument list (no shell); the URL is the portal's own
    done = subprocess.run(args, capture_output=True, text=True, check=False)  # noqa: S603  # nosec B603
    if done.returncode != 0:
        raise BackupError(f"{args[0]} failed: {done.stderr.strip()[:500]}")


def create_backup(out_dir: Path, database_url: str, storage_dir: Path | None) -> Path:
    """Write a backup of the live database (and storage) into a new directory under out_dir."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    target = Path(out_dir) / f"portal-{stamp}"
    target.mkdir(parents=True, exist_ok=False)
    db.connect(reuse_if_open=True)
    if isinstance(db.obj, SqliteDatabase):
        kind, name = "sqlite", SQLITE_FILE
        copy = sqlite3.connect(target / name)
        try:
            # one step (pages=-1): a single consistent read snapshot; WAL writers go on
            db.connection().backup(copy, pages=-1)
            ok = copy.execute("PRAGMA integrity_check").fetchone()[0]
        finally:
            copy.close()
        if ok != "ok":
            raise BackupError(f"the copy failed its integrity check: {ok}")
    elif isinstance(db.obj, PostgresqlDatabase):
        kind, name = "postgresql", PG_FILE
        pg_dump = shutil.which("pg_dump") or "pg_dump"
        _run(
            [
                pg_dump,
                "--format=custom",
                "--no-owner",
                "--file",
                str(target / name),
                "--dbname",
                _pg_url(database_url),
            ]
        )
    else:  # pragma: no cover - the portal supports these two
        raise BackupError("unsupported database")
    files = {name: _sha256(target / name)}
    if storage_dir and Path(storage_dir).is_dir():
        with tarfile.open(target / STORAGE_FILE, "w") as tar:
            tar.add(storage_dir, arcname="storage")
        files[STORAGE_FILE] = _sha256(target / STORAGE_FILE)
    manifest = {
        "format": 1,
        "created_at": datetime.now(UTC).isoformat(),
        "database": kind,
        "files": files,
    }
    (target / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return target


# --- restore ------------------------------------------------------------------------------


def read_manifest(backup_dir: Path) -> dict:
    """The manifest, after checking every file it lists against its SHA-256."""
    path = Path(backup_dir) / MANIFEST
    if not path.is_file():
        raise BackupError(f"{backup_dir} has no {MANIFEST}")
    manifest = json.loads(path.read_text(encoding="utf-8"))
    for name, digest in manifest["files"].items():
        file = Path(backup_dir) / name
        if not file.is_file() or _sha256(file) != digest:
            raise BackupError(f"{name} is missing or does not match the manifest")
    return manifest


def restore_backup(backup_dir: Path, database_url: str, storage_dir: Path | None) -> dict:
    """Restore into a fresh database (and storage directory); returns the manifest."""
    manifest = read_manifest(backup_dir)
    if manifest["database"] == "sqlite":
        if not database_url.startswith("sqlite:///"):
            raise BackupError("an SQLite backup restores into an sqlite:/// URL")
        path = Path(database_url[len("sqlite:///") :])
        if path.exists():
            raise BackupError(f"{path} exists: restore into a fresh place")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".partial")
        shutil.copyfile(Path(backup_dir) / SQLITE_FILE, tmp)
        os.replace(tmp, path)
    else:
        if not database_url.startswith(("postgres", "psycopg")):
            raise BackupError("a PostgreSQL backup restores into a postgresql:// URL")
        fresh = make_database(database_url)
        fresh.connect()
        try:
            if fresh.get_tables():
                raise BackupError("the target database has tables: restore into a fresh one")
        finally:
            fresh.close()
        pg_restore = shutil.which("pg_restore") or "pg_restore"
        _run(
            [
                pg_restore,
                "--no-owner",
                "--exit-on-error",
                "--dbname",
                _pg_url(database_url),
                str(Path(backup_dir) / PG_FILE),
            ]
        )
    if storage_dir is not None and STORAGE_FILE in manifest["files"]:
        storage_dir = Path(storage_dir)
        if storage_dir.exists() and any(storage_dir.iterdir()):
            raise BackupError(f"{storage_dir} is not empty: restore into a fresh place")
        storage_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=storage_dir.parent) as tmp:
            with tarfile.open(Path(backup_dir) / STORAGE_FILE) as tar:
                tar.extractall(tmp, filter="data")  # nosec B202 - the "data" filter
            for item in (Path(tmp) / "storage").iterdir():
                shutil.move(str(item), storage_dir / item.name)
    return manifest


# --- the commands -------------------------------------------------------------------------


def _print_report(report: Report) -> None:
    for name, value in report.summary.items():
        click.echo(f"  {name}: {value}")
    if report.ok:
        click.echo("all checks passed")
        return
    for problem in report.problems:
        click.echo(f"PROBLEM {problem}", err=True)
    raise click.ClickException(f"{len(report.problems)} problem(s) found")


def _storage_dir() -> Path:
    root = Path(current_app.root_path).parent
    path = Path(current_app.config["STORAGE_DIR"])
    return path if path.is_absolute() else root / path


@click.group(
    "backup", cls=AppGroup, help="Online backup, restore into a fresh place, and integrity checks."
)
def backup_group():
    pass


@backup_group.command("create", help="Back up the database (online) and the storage directory.")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path))
def create_command(out: Path):
    target = create_backup(out, current_app.config["DATABASE_URL"], _storage_dir())
    click.echo(str(target))


@backup_group.command("restore", help="Restore a backup into a fresh database and storage.")
@click.argument("backup_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--database-url", required=True, help="Where to restore (must be empty).")
@click.option("--storage-dir", type=click.Path(file_okay=False, path_type=Path), default=None)
@click.option("--allow-pending", is_flag=True, help="Pending payouts are not a problem.")
def restore_command(backup_dir: Path, database_url: str, storage_dir, allow_pending: bool):
    manifest = restore_backup(backup_dir, database_url, storage_dir)
    click.echo(f"restored the {manifest['database']} backup of {manifest['created_at']}")
    with using(database_url):
        _print_report(check_database(allow_pending=allow_pending))


@backup_group.command("check", help="Integrity, ledger, money and audit-chain checks.")
@click.option("--database-url", default=None, help="Another database (default: the portal's).")
@click.option("--allow-pending", is_flag=True, help="Pending payouts are not a problem.")
def check_command(database_url: str | None, allow_pending: bool):
    if database_url:
        with using(database_url):
            _print_report(check_database(allow_pending=allow_pending))
    else:
        _print_report(check_database(allow_pending=allow_pending))
