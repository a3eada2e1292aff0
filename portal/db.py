"""The one database handle: deferred, SQLite by default, PostgreSQL by URL."""

from __future__ import annotations

import os
from contextlib import contextmanager

from peewee import DatabaseProxy, PostgresqlDatabase, SqliteDatabase
from playhouse.db_url import parse
from playhouse.pool import PooledPostgresqlDatabase, PooledSqliteDatabase

db = DatabaseProxy()

SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "busy_timeout": 10000,
    "foreign_keys": 1,
    "synchronous": "normal",
}


# A pooled connection goes back to the pool at the end of a request instead of being closed.
# Opening one costs a PostgreSQL server process and its cold caches (4-6 ms before the first
# query) or, on SQLite, the pragmas, reading the schema and an empty page cache. Connections
# idle longer than STALE_SECONDS are closed when next checked out or in; PostgreSQL
# connections are checked (``SELECT 1``, rolled back when a transaction was left open) on the
# way out of the pool, so one that a restarted server dropped is replaced, not handed out.
POOL_MAX_CONNECTIONS = 32  # per process: gunicorn threads, background threads, CLI
POOL_STALE_SECONDS = 600
POOL_WAIT_SECONDS = 30


def make_database(url: str, root: str | None = None, pooled: bool = False):
    """Build (not connect) a database from a URL; relative SQLite paths resolve under root.

    ``pooled`` keeps closed connections open for reuse (the application's own handle); an
    in-memory SQLite database is never pooled (each connection would be a new database).
    """
    pool = {
        "max_connections": POOL_MAX_CONNECTIONS,
        "stale_timeout": POOL_STALE_SECONDS,
        "timeout": POOL_WAIT_SECONDS,
    }
    if url.startswith("sqlite://"):
        path = url[len("sqlite:///") :] if url.startswith("sqlite:///") else ":memory:"
        if path and path != ":memory:" and not os.path.isabs(path) and root:
            path = os.path.join(root, path)
        if path != ":memory:":
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        if pooled and path != ":memory:":
            # A pooled connection serves whichever thread checks it out next (one at a time).
            # ``timeout`` is the pool's wait here; SQLite's own wait is the busy_timeout pragma.
            return PooledSqliteDatabase(
                path, pragmas=SQLITE_PRAGMAS, check_same_thread=False, **pool
            )
        return SqliteDatabase(path, pragmas=SQLITE_PRAGMAS, timeout=10)
    url = url.replace("psycopg3://", "postgresql://", 1).replace("postgres://", "postgresql://", 1)
    params = parse(url)
    if pooled:
        return PooledPostgresqlDatabase(prefer_psycopg3=True, **params, **pool)
    return PostgresqlDatabase(prefer_psycopg3=True, **params)


def init_db(url: str, root: str | None = None, pooled: bool = True):
    database = make_database(url, root, pooled=pooled)
    db.initialize(database)
    return database


def release_pool() -> None:
    """Close the pool's idle connections (after a fork, before a restore, at exit)."""
    if hasattr(db.obj, "close_idle"):
        db.obj.close_idle()


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
