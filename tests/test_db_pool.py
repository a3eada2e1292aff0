"""The pooled database handle (portal/db.py, issue 10): connections are reused between
requests, a thread that ends without closing its connection does not hold a place for good,
and an in-memory SQLite database is never pooled."""

from __future__ import annotations

import importlib
import os
import threading

import pytest
from peewee import OperationalError, SqliteDatabase

dbmod = importlib.import_module("portal.db")  # the module (``portal.db`` is the handle)


@pytest.fixture
def pooled(tmp_path, monkeypatch):
    monkeypatch.setattr(dbmod, "POOL_MAX_CONNECTIONS", 2)
    monkeypatch.setattr(dbmod, "POOL_WAIT_SECONDS", 2)
    url = os.environ.get("TEST_DATABASE_URL") or f"sqlite:///{tmp_path / 'pool.db'}"
    database = dbmod.make_database(url, pooled=True)
    yield database
    database.close_all()


def test_a_closed_connection_is_reused(pooled):
    pooled.connect()
    first = pooled.connection()
    pooled.close()
    pooled.connect()
    assert pooled.connection() is first
    assert pooled.execute_sql("SELECT 1").fetchone()[0] == 1
    pooled.close()


def test_threads_that_end_without_closing_give_their_place_back(pooled):
    def leak():
        pooled.connect()
        pooled.execute_sql("SELECT 1")  # and the thread ends, its connection still open

    for _ in range(3):  # more than the pool's two places
        t = threading.Thread(target=leak)
        t.start()
        t.join()
    pooled.connect()  # would wait and fail without taking the places back
    assert pooled.execute_sql("SELECT 1").fetchone()[0] == 1
    pooled.close()


def test_a_live_thread_keeps_its_connection(pooled):
    holding, release = threading.Event(), threading.Event()

    def hold():
        pooled.connect()
        holding.set()
        release.wait(5)
        pooled.close()

    t = threading.Thread(target=hold)
    t.start()
    holding.wait(5)
    pooled.connect()  # the second place
    assert pooled._reclaim() == 0
    pooled.close()
    release.set()
    t.join()


def test_memory_databases_and_plain_handles_are_not_pooled():
    memory = dbmod.make_database("sqlite://", pooled=True)
    assert isinstance(memory, SqliteDatabase) and not hasattr(memory, "close_idle")
    assert not hasattr(dbmod.make_database("sqlite:///x.db"), "close_idle")


# --- writers wait for SQLite's write lock in short steps (issue 10) ------------------------


@pytest.fixture
def sqlite_file(tmp_path):
    path = tmp_path / "writers.db"
    first = dbmod.make_database(f"sqlite:///{path}")
    first.connect()
    first.execute_sql("CREATE TABLE t (n INTEGER)")
    first.close()
    return path


def _busy_timeout(database) -> int:
    return database.execute_sql("PRAGMA busy_timeout").fetchone()[0]


def test_a_writer_gets_the_lock_soon_after_it_is_released(sqlite_file):
    holder = dbmod.make_database(f"sqlite:///{sqlite_file}")
    waiter = dbmod.make_database(f"sqlite:///{sqlite_file}")
    holder.connect()
    waiter.connect()
    holder.begin("IMMEDIATE")
    holder.execute_sql("INSERT INTO t VALUES (1)")
    got = threading.Event()
    errors = []

    def write():
        try:
            with waiter.atomic("IMMEDIATE"):
                got.set()
                waiter.execute_sql("INSERT INTO t VALUES (2)")
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    thread = threading.Thread(target=write)
    thread.start()
    assert not got.wait(0.15)  # it waits while the lock is held
    holder.commit()
    assert got.wait(1) and not errors
    thread.join()
    assert [n for (n,) in holder.execute_sql("SELECT n FROM t ORDER BY n")] == [1, 2]
    # the connection's own busy timeout is back for every other statement
    assert _busy_timeout(waiter) == dbmod.BUSY_TIMEOUT_MS
    holder.close()
    waiter.close()


def test_a_writer_that_waits_too_long_fails_as_sqlite_would(sqlite_file, monkeypatch):
    monkeypatch.setattr(dbmod, "BUSY_TIMEOUT_MS", 150)
    holder = dbmod.make_database(f"sqlite:///{sqlite_file}")
    waiter = dbmod.make_database(f"sqlite:///{sqlite_file}")
    holder.connect()
    waiter.connect()
    holder.begin("IMMEDIATE")
    try:
        with pytest.raises(OperationalError, match="locked"):
            with waiter.atomic("IMMEDIATE"):
                pass
        assert not waiter.in_transaction()
        assert _busy_timeout(waiter) == 150
    finally:
        holder.rollback()
        holder.close()
        waiter.close()


def test_a_deferred_transaction_keeps_sqlites_own_wait(sqlite_file):
    waiter = dbmod.make_database(f"sqlite:///{sqlite_file}")
    waiter.connect()
    with waiter.atomic():  # BEGIN (deferred): not the quick hand-off
        waiter.execute_sql("INSERT INTO t VALUES (3)")
    assert _busy_timeout(waiter) == dbmod.BUSY_TIMEOUT_MS
    waiter.close()
