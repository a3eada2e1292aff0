"""The pooled database handle (portal/db.py, issue 10): connections are reused between
requests, a thread that ends without closing its connection does not hold a place for good,
and an in-memory SQLite database is never pooled."""

from __future__ import annotations

import importlib
import os
import threading

import pytest
from peewee import SqliteDatabase

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
    assert type(dbmod.make_database("sqlite://", pooled=True)) is SqliteDatabase
    assert not hasattr(dbmod.make_database("sqlite:///x.db"), "close_idle")
