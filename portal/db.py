"""The one database handle: deferred, SQLite by default, PostgreSQL by URL."""

from __future__ import annotations

import logging
import os
import threading
import time
from contextlib import contextmanager

from peewee import (
    AutoField,
    BigIntegerField,
    CharField,
    DatabaseProxy,
    ForeignKeyField,
    IntegerField,
    ModelCursorWrapper,
    ModelDictCursorWrapper,
    ModelObjectCursorWrapper,
    ModelTupleCursorWrapper,
    Node,
    OperationalError,
    PostgresqlDatabase,
    SqliteDatabase,
    TextField,
)
from playhouse.db_url import parse
from playhouse.pool import PooledPostgresqlDatabase, PooledSqliteDatabase

db = DatabaseProxy()

BUSY_TIMEOUT_MS = 10000
SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "busy_timeout": BUSY_TIMEOUT_MS,
    "foreign_keys": 1,
    "synchronous": "normal",
}


# A pooled connection goes back to the pool at the end of a request instead of being closed.
# Opening one costs a PostgreSQL server process and its cold caches (4-6 ms before the first
# query) or, on SQLite, the pragmas, reading the schema and an empty page cache. Connections
# idle longer than STALE_SECONDS are closed when next checked out or in; PostgreSQL
# connections are checked (``SELECT 1``, rolled back when a transaction was left open) on the
# way out of the pool, so one that a restarted server dropped is replaced, not handed out.
# SQLite caveat: SQLite's locks are POSIX locks, which a process loses on *every* descriptor of
# the file when it closes *any* one; with connections kept open, never open() the live
# database file in the portal's process (read it from another process or through SQLite).
POOL_MAX_CONNECTIONS = 32  # per process: gunicorn threads, background threads, CLI
POOL_STALE_SECONDS = 600
POOL_WAIT_SECONDS = 30

log = logging.getLogger(__name__)


class _ReclaimingPool:
    """Takes back the connections of threads that ended without closing theirs.

    peewee's pool counts a connection as in use until its thread closes it; a thread that
    dies first (an exception before its ``finally``) would hold its place for good, and once
    ``POOL_MAX_CONNECTIONS`` places are held every new connection waits and fails. When the
    pool is full, connections whose thread has ended are closed and their places freed.
    """

    def __init__(self, *args, **kwargs):
        self._owners: dict[int, threading.Thread] = {}
        super().__init__(*args, **kwargs)

    def _connect(self):
        with self._pool_lock:
            if self._max_connections and len(self._in_use) >= self._max_connections:
                self._reclaim()
            conn = super()._connect()
            self._owners[self.conn_key(conn)] = threading.current_thread()
            return conn

    def _close(self, conn, close_conn=False):
        with self._pool_lock:
            self._owners.pop(self.conn_key(conn), None)
            super()._close(conn, close_conn)

    def _reclaim(self) -> int:
        ended = [key for key, thread in self._owners.items() if not thread.is_alive()]
        for key in ended:
            self._owners.pop(key)
            held = self._in_use.pop(key, None)
            if held is not None:
                self._close_raw(held.connection)
        if ended:
            log.warning("database pool: took back %d connection(s) of ended threads", len(ended))
            self._pool_available.notify_all()
        return len(ended)


class _QuickWriterHandoff:
    """``BEGIN IMMEDIATE`` that waits for the write lock in short steps.

    SQLite's own busy handler sleeps 1, 2, 5, 10, 15, 20, 25 … 100 ms between tries, so a
    writer that arrives while another holds the lock for 2 ms often sleeps 8 ms or more, and
    under a few concurrent writers (card moves from several counters) the waits add up to
    tens of milliseconds. Writers here retry every 0.2–1 ms instead, for as long as the busy
    timeout allows, then fail with "database is locked" as before (issue 10). Other
    statements keep SQLite's busy handler.
    """

    def begin(self, lock_type=None):
        if lock_type != "IMMEDIATE":
            return super().begin(lock_type)
        conn = self.connection()
        conn.execute("PRAGMA busy_timeout = 0")
        try:
            deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
            pause = 0.0002
            while True:
                try:
                    return super().begin(lock_type)
                except OperationalError as exc:
                    if "locked" not in str(exc) or time.monotonic() >= deadline:
                        raise
                time.sleep(pause)
                pause = min(pause * 1.5, 0.001)
        finally:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")


class Sqlite(_QuickWriterHandoff, SqliteDatabase):
    pass


class SqlitePool(_QuickWriterHandoff, _ReclaimingPool, PooledSqliteDatabase):
    pass


class PostgresPool(_ReclaimingPool, PooledPostgresqlDatabase):
    pass


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
            return SqlitePool(path, pragmas=SQLITE_PRAGMAS, check_same_thread=False, **pool)
        return Sqlite(path, pragmas=SQLITE_PRAGMAS, timeout=10)
    url = url.replace("psycopg3://", "postgresql://", 1).replace("postgres://", "postgresql://", 1)
    params = parse(url)
    if pooled:
        return PostgresPool(prefer_psycopg3=True, **params, **pool)
    return PostgresqlDatabase(prefer_psycopg3=True, **params)


def init_db(url: str, root: str | None = None, pooled: bool = True):
    database = make_database(url, root, pooled=pooled)
    db.initialize(database)
    return database


def release_pool() -> None:
    """Close the pool's idle connections: gunicorn's master does before it forks a worker, so
    no worker inherits (and shares) a connection of the master's."""
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


# --- queries whose SQL is built once (issue 10) -------------------------------------------
#
# peewee builds a statement's SQL in Python on every call (~0.25 ms for a model's select by
# id, more than SQLite takes to run it). The few statements every request runs — its
# session, its user, the unread count in the header — are built once per SQL dialect with
# placeholders in the values' places and then run with new values; rows come back through
# the query's own cursor wrapper, so the fields convert exactly as in a plain select.


class _Marker:
    """Where a value goes in a prepared statement's parameters."""

    __slots__ = ("index",)

    def __init__(self, index: int):
        self.index = index


class Slot(Node):
    """A placeholder for the ``index``-th value given to a :class:`Prepared` query."""

    def __init__(self, index: int):
        self.index = index

    def __sql__(self, ctx):
        return ctx.value(_Marker(self.index), converter=False)


# Row wrappers whose set-up depends only on the statement and its result's columns and which
# only read that set-up per row (peewee's model wrappers; not the named-tuple one, whose row
# constructor is a closure over the wrapper it was made in).
_REUSABLE_WRAPPERS = frozenset(
    {
        ModelObjectCursorWrapper,
        ModelCursorWrapper,
        ModelDictCursorWrapper,
        ModelTupleCursorWrapper,
    }
)


# Fields whose conversion of what either driver gives is the value itself: integers from an
# INTEGER column, text from a text column (exact types: a subclass may convert). peewee calls
# their python_value on every column of every row all the same (issue 10: half of a board's
# card reads went there); rows of a prepared statement skip them.
_DRIVER_VALUE_FIELDS = (AutoField, IntegerField, BigIntegerField, CharField, TextField)


def _keeps_driver_value(field, converter) -> bool:
    if getattr(converter, "__self__", None) is not field:
        return False  # not the field's own python_value
    if type(field) is ForeignKeyField:
        field = field.rel_field
    return (
        type(field) in _DRIVER_VALUE_FIELDS
        and converter.__func__ is type(converter.__self__).python_value
    )


def _without_identity_converters(worked_out: dict) -> dict:
    """A row wrapper's set-up without the converters that give back what they are given."""
    converters = worked_out.get("converters")
    fields = worked_out.get("fields")
    if converters is None or fields is None:
        return worked_out
    plain = {
        i
        for i, (field, converter) in enumerate(zip(fields, converters, strict=True))
        if converter is not None and _keeps_driver_value(field, converter)
    }
    if not plain:
        return worked_out
    out = dict(worked_out)
    out["converters"] = [None if i in plain else c for i, c in enumerate(converters)]
    out["convert"] = [i for i in worked_out["convert"] if i not in plain]
    out["no_convert"] = sorted([*worked_out["no_convert"], *plain])
    if "_row_spec" in worked_out:  # the joined-models wrapper reads its own copy
        out["_row_spec"] = tuple(
            (i, key, column, None if i in plain else converter)
            for i, key, column, converter in worked_out["_row_spec"]
        )
    return out


class Prepared:
    """A query built once per dialect and run many times with new values.

    ``build`` receives one :class:`Slot` per value and returns a peewee query; values are
    passed as the database stores them (ints, strings), not converted by a field.

        by_sid = Prepared(lambda sid: WebSession.select().where(WebSession.sid == sid), 1)
        row = by_sid.first("abc")
    """

    def __init__(self, build, arity: int):
        self._build = build
        self._arity = arity
        self._model = None  # the queried model, learnt on the first build
        self._first: tuple = (None, None)
        self._compiled: dict[bool, tuple] = {}
        self._columns: dict[bool, dict] = {}  # per dialect: what the row wrapper worked out

    def _database(self):
        """The database the query's model uses now: the application's handle, or the one a
        script bound the models to (``Model.bind``)."""
        if self._model is None:
            first = self._build(*(Slot(i) for i in range(self._arity)))
            self._model = first.model
            self._first = (is_postgres(), first)  # compiled below when the dialect is this one
        database = self._model._meta.database
        return database.obj if isinstance(database, DatabaseProxy) else database

    def _compile(self, database):
        key = isinstance(database, PostgresqlDatabase)
        compiled = self._compiled.get(key)
        if compiled is None:
            first_key, query = self._first
            if first_key != key:
                query = self._build(*(Slot(i) for i in range(self._arity)))
            sql, params = query.sql()
            compiled = self._compiled[key] = (query, sql, tuple(params))
        return compiled

    def _execute(self, values):
        if len(values) != self._arity:
            raise TypeError(f"expected {self._arity} values, got {len(values)}")
        database = self._database()
        query, sql, params = self._compile(database)
        bound = [values[p.index] if isinstance(p, _Marker) else p for p in params]
        return query, database.execute_sql(sql, bound), isinstance(database, PostgresqlDatabase)

    def _rows(self, query, cursor, key: bool):
        """The query's own row wrapper over ``cursor``. What the wrapper works out from the
        result's columns before the first row (names, fields, converters, joined models) is
        the same every time the statement runs, so it is worked out once per dialect and
        handed to the next wrappers (issue 10: about 25 µs per query and more for joins)."""
        wrapper = query._get_cursor_wrapper(cursor)
        if type(wrapper) not in _REUSABLE_WRAPPERS or cursor.description is None:
            return wrapper
        worked_out = self._columns.get(key)
        if worked_out is None:
            before = set(vars(wrapper))
            wrapper.initialize()
            worked_out = {k: v for k, v in vars(wrapper).items() if k not in before}
            worked_out = self._columns[key] = _without_identity_converters(worked_out)
        vars(wrapper).update(worked_out)
        wrapper.initialized = True
        return wrapper

    def first(self, *values):
        """The first row as the query would give it (a model instance), or None."""
        query, cursor, key = self._execute(values)
        try:
            for row in self._rows(query, cursor, key):
                return row
            return None
        finally:
            cursor.close()  # an unfinished statement would keep a pooled SQLite read open

    def all(self, *values) -> list:
        """Every row as the query would give it (model instances, in its order)."""
        query, cursor, key = self._execute(values)
        try:
            return list(self._rows(query, cursor, key))
        finally:
            cursor.close()

    def scalar(self, *values):
        """The first column of the first row (a count), or None."""
        _query, cursor, _key = self._execute(values)
        try:
            row = cursor.fetchone()
        finally:
            cursor.close()
        return row[0] if row else None


class PreparedInsert:
    """``Model.create`` with the INSERT built once per dialect and set of columns (issue 10:
    peewee builds it anew for every row; a card move writes three). Defaults are filled and
    values converted as ``create`` does: fields given or with a default are written, the
    others left to the database; returns the saved instance with its new id.

        add_event = PreparedInsert(CaseEvent)
        add_event.create(case=case, action="move", data={...})
    """

    MAX_SHAPES = 16  # column sets kept (call sites pass a fixed set each)

    def __init__(self, model):
        self._model = model
        self._fields = [f for f in model._meta.sorted_fields if not isinstance(f, AutoField)]
        self._by_name = {f.name: f for f in self._fields}
        self._statements: dict[tuple[str, ...], Prepared] = {}

    def _statement(self, names: tuple[str, ...]) -> Prepared:
        found = self._statements.get(names)
        if found is None:
            model = self._model
            found = Prepared(
                lambda *slots: model.insert(
                    {model._meta.fields[n]: slot for n, slot in zip(names, slots, strict=True)}
                ),
                len(names),
            )
            if len(self._statements) < self.MAX_SHAPES:
                self._statements[names] = found
        return found

    def create(self, **values):
        unknown = values.keys() - self._by_name.keys()
        if unknown:
            raise TypeError(f"{self._model.__name__} has no field {sorted(unknown)[0]!r}")
        defaults = self._model._meta.defaults
        row = {}
        for field in self._fields:
            if field.name in values:
                row[field.name] = values[field.name]
            elif field in defaults:
                default = defaults[field]
                row[field.name] = default() if callable(default) else default
        names = tuple(row)
        statement = self._statement(names)
        query, cursor, _key = statement._execute(
            [self._by_name[name].db_value(value) for name, value in row.items()]
        )
        try:
            new_id = cursor.fetchone()[0] if query._returning else cursor.lastrowid
        finally:
            cursor.close()
        instance = self._model(__no_default__=True, **row)
        setattr(instance, self._model._meta.primary_key.name, new_id)
        instance._dirty.clear()
        return instance


class PreparedUpdate:
    """``Model.update(**values).where(key == ..., ...)`` with the UPDATE built once per dialect
    and set of columns (issue 10: a card move and every audited change write one). Values are
    converted by their fields as ``update`` does; returns the number of rows changed.

        bump = PreparedUpdate(ProxyCase, "id", "version")
        bump.execute({"state": "verifying", "version": 3}, id=7, version=2)
    """

    MAX_SHAPES = 32  # column sets kept (a move sets a handful of different ones)

    def __init__(self, model, *keys: str):
        self._model = model
        self._keys = keys
        self._fields = model._meta.fields
        self._statements: dict[tuple[str, ...], Prepared] = {}

    def _statement(self, names: tuple[str, ...]) -> Prepared:
        found = self._statements.get(names)
        if found is None:
            model, fields, keys = self._model, self._fields, self._keys

            def build(*slots):
                where = None
                for key, slot in zip(keys, slots[len(names) :], strict=True):
                    clause = fields[key] == slot
                    where = clause if where is None else where & clause
                sets = {fields[n]: s for n, s in zip(names, slots[: len(names)], strict=True)}
                return model.update(sets).where(where)

            found = Prepared(build, len(names) + len(keys))
            if len(self._statements) < self.MAX_SHAPES:
                self._statements[names] = found
        return found

    def execute(self, values: dict, **keys) -> int:
        if set(keys) != set(self._keys):
            raise TypeError(f"expected the keys {sorted(self._keys)}, got {sorted(keys)}")
        unknown = values.keys() - self._fields.keys()
        if unknown:
            raise TypeError(f"{self._model.__name__} has no field {sorted(unknown)[0]!r}")
        if not values:
            raise TypeError("nothing to update")
        names = tuple(sorted(values))
        fields = self._fields
        bound = [fields[n].db_value(values[n]) for n in names]
        bound += [fields[k].db_value(keys[k]) for k in self._keys]
        _query, cursor, _key = self._statement(names)._execute(bound)
        try:
            return cursor.rowcount
        finally:
            cursor.close()


class Shapes:
    """A family of prepared statements whose SQL differs by a *shape*: a small hashable
    description such as a role's visibility or a board column. ``build(shape, *slots)`` gives
    the query of one shape; each shape's statement is built once per dialect, like
    :class:`Prepared`.

        by_state = Shapes(lambda state, pk: Case.select().where(...), 1)
        by_state["accepted"].all(pk)

    Shapes must come from a bounded set (never from user input): past ``MAX_SHAPES`` the
    statements are built again on every call instead of kept.
    """

    MAX_SHAPES = 256

    def __init__(self, build, arity: int):
        self._build = build
        self._arity = arity
        self._by_shape: dict = {}

    def __getitem__(self, shape) -> Prepared:
        found = self._by_shape.get(shape)
        if found is None:
            build = self._build
            found = Prepared(lambda *slots: build(shape, *slots), self._arity)
            if len(self._by_shape) < self.MAX_SHAPES:
                self._by_shape[shape] = found
        return found
