"""The one database handle: deferred, SQLite by default, PostgreSQL by URL."""

from __future__ import annotations

import os
from contextlib import contextmanager

from peewee import DatabaseProxy, PostgresqlDatabase, SqliteDatabase
from playhouse.db_url import parse

db = DatabaseProxy()

SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "busy_timeout": 10000,
    "foreign_keys": 1,
    "synchronous": "normal",
}


def make_database(url: str, root: str | None = None):
    """Build (not connect) a database from a URL; relative SQLite paths resolve under root."""
    if url.startswith("sqlite://"):
        path = url[len("sqlite:///") :] if url.startswith("sqlite:///") else ":memory:"
        if path and path != ":memory:" and not os.path.isabs(path) and root:
            path = os.path.join(root, path)
        if path != ":memory:":
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        return SqliteDatabase(path, pragmas=SQLITE_PRAGMAS, timeout=10)
    url = url.replace("psycopg3://", "postgresql://", 1).replace("postgres://", "postgresql://", 1)
    params = parse(url)
    return PostgresqlDatabase(prefer_psycopg3=True, **params)


def init_db(url: str, root: str | None = None):
    database = make_database(url, root)
    db.initialize(database)
    return database


def is_postgres() -> bool:
    return isinstance(db.obj, PostgresqlDatabase)


@contextmanager
def write_tx():
    """A transaction that takes the write lock up front.

    SQLite: ``BEGIN IMMEDIATE`` so two writers queue on the busy timeout instead of failing
    with "database is locked" half-way. PostgreSQL: an ordinary transaction; callers lock
    rows with ``SELECT ... FOR UPDATE`` (see :func:`locked`) or a conditional update.
    Nested calls become savepoints.
    """
    if isinstance(db.obj, SqliteDatabase) and not db.in_transaction():
        with db.atomic("IMMEDIATE") as tx:
            yield tx
    else:
        with db.atomic() as tx:
            yield tx


def locked(query):
    """``FOR UPDATE`` on PostgreSQL; SQLite already holds the write lock in write_tx."""
    return query.for_update() if is_postgres() else query
