"""Numbered schema migrations from ``migrations/``.

A migration is ``NNNN_name.sql`` (portable SQL; ``{{pk}}`` becomes the dialect's
auto-increment primary key) or ``NNNN_name.py`` with ``upgrade(db, migrator)`` using
``playhouse.migrate``. Migrations never import the live models. Applied versions are kept in
``schema_migrations``. Several instances starting at once are safe: on PostgreSQL an advisory
lock serialises them, on SQLite ``BEGIN IMMEDIATE`` does; the others then see nothing to do.
"""

from __future__ import annotations

import importlib.util
import re
from datetime import UTC, datetime
from pathlib import Path

from peewee import PostgresqlDatabase
from playhouse.migrate import PostgresqlMigrator, SqliteMigrator

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.(sql|py)$")
_LOCK_ID = 152900_0001

PK = {
    "sqlite": "INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT",
    "postgresql": "SERIAL NOT NULL PRIMARY KEY",
}


def discover(directory: Path = MIGRATIONS_DIR) -> list[tuple[str, Path]]:
    found = []
    for path in sorted(directory.iterdir()):
        m = _NAME.match(path.name)
        if m:
            found.append((m.group(1), path))
    versions = [v for v, _ in found]
    if len(versions) != len(set(versions)):
        raise RuntimeError("two migrations share a number")
    return found


def _dialect(database) -> str:
    return "postgresql" if isinstance(database, PostgresqlDatabase) else "sqlite"


def sql_statements(text: str, dialect: str) -> list[str]:
    text = text.replace("{{pk}}", PK[dialect])
    lines = [ln for ln in text.splitlines() if not ln.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";\n") if s.strip().strip(";")]


def applied_versions(database) -> set[str]:
    database.execute_sql(
        'CREATE TABLE IF NOT EXISTS "schema_migrations" ('
        '"version" VARCHAR(4) NOT NULL PRIMARY KEY, "name" VARCHAR(100) NOT NULL, '
        '"applied_at" TIMESTAMP NOT NULL)'
    )
    cursor = database.execute_sql('SELECT "version" FROM "schema_migrations"')
    return {row[0] for row in cursor.fetchall()}


def pending(database, directory: Path = MIGRATIONS_DIR) -> list[tuple[str, Path]]:
    done = applied_versions(database)
    return [(v, p) for v, p in discover(directory) if v not in done]


def _apply(database, version: str, path: Path) -> None:
    dialect = _dialect(database)
    if path.suffix == ".sql":
        for statement in sql_statements(path.read_text(encoding="utf-8"), dialect):
            database.execute_sql(statement.rstrip(";"))
    else:
        spec = importlib.util.spec_from_file_location(f"migration_{version}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        migrator = (PostgresqlMigrator if dialect == "postgresql" else SqliteMigrator)(database)
        module.upgrade(database, migrator)
    database.execute_sql(
        'INSERT INTO "schema_migrations" ("version", "name", "applied_at") VALUES (%s, %s, %s)'
        if dialect == "postgresql"
        else 'INSERT INTO "schema_migrations" ("version", "name", "applied_at") VALUES (?, ?, ?)',
        (version, path.name, datetime.now(UTC).replace(tzinfo=None)),
    )


def upgrade(database, directory: Path = MIGRATIONS_DIR, log=print) -> list[str]:
    """Apply every pending migration, each in its own transaction; returns the versions."""
    dialect = _dialect(database)
    done: list[str] = []
    database.connect(reuse_if_open=True)
    if dialect == "postgresql":
        database.execute_sql("SELECT pg_advisory_lock(%s)", (_LOCK_ID,))
    try:
        for version, path in discover(directory):
            ctx = database.atomic("IMMEDIATE") if dialect == "sqlite" else database.atomic()
            with ctx:
                if version in applied_versions(database):
                    continue  # another instance applied it while we waited
                _apply(database, version, path)
            log(f"applied {path.name}")
            done.append(version)
    finally:
        if dialect == "postgresql":
            database.execute_sql("SELECT pg_advisory_unlock(%s)", (_LOCK_ID,))
    return done
