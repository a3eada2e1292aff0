"""0015: the boards' data version (issue 10).

One row, ``board_version``, whose ``token`` changes with every change to what a board shows:
the cases, the names on their cards (center, department, staff), the staff who can be
assigned, the column limits (settings). A worker keeps the boards it computed under the token
(``portal.services.cases``); a board shown again with the same token is the same board, so it
is not read and built again, and a polling tab learns in one query that nothing changed.

The database itself changes the token, by triggers, so no code path (a service, a job, the
exchange's import, a script, a restore) can forget to. The new token is random, not a
counter: a rolled-back transaction's token must never come back for other data.

- SQLite: a trigger per row, run in the writer's own statement (SQLite has one writer at a
  time, so this adds no waiting).
- PostgreSQL: deferred constraint triggers, run when the transaction commits, once per
  transaction (a transaction-local setting remembers it). Taking the one row's lock at commit,
  after every other lock the transaction holds, means writers queue there only briefly and can
  never deadlock over it. Until it commits, a writing transaction sees the old token, so
  ``cases.board_version`` does not offer its token to the cache (its boards are built anew).
"""

from peewee import PostgresqlDatabase

# table -> the columns whose update changes a board (None: any)
WATCHED = {
    "proxy_case": None,
    "center": ("name",),
    "department": None,
    "staff_user": ("name", "role", "active", "department_id"),
    "setting": None,
}

SQLITE_NEW = "lower(hex(randomblob(8)))"


def _sqlite(db):
    db.execute_sql(
        'CREATE TABLE "board_version" ('
        '"id" INTEGER NOT NULL PRIMARY KEY, "token" VARCHAR(32) NOT NULL)'
    )
    # the f-strings below join this file's own constants: no outside value reaches the SQL
    db.execute_sql(
        f'INSERT INTO "board_version" ("id", "token") VALUES (1, {SQLITE_NEW})'  # noqa: S608
    )
    bump = f'UPDATE "board_version" SET "token" = {SQLITE_NEW} WHERE "id" = 1;'  # noqa: S608
    for table, columns in WATCHED.items():
        of = f" OF {', '.join(columns)}" if columns else ""
        for event in ("INSERT", f"UPDATE{of}", "DELETE"):
            name = f"{table}_board_version_{event.split()[0].lower()}"
            db.execute_sql(
                f'CREATE TRIGGER "{name}" AFTER {event} ON "{table}" FOR EACH ROW BEGIN {bump} END'
            )


PG_NEW = "substr(md5(random()::text || clock_timestamp()::text), 1, 16)"
PG_FUNCTION = """CREATE FUNCTION board_version_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF current_setting('portal.board_version_bumped', true) IS DISTINCT FROM 'yes' THEN
    PERFORM set_config('portal.board_version_bumped', 'yes', true);
    UPDATE "board_version" SET "token" = {new} WHERE "id" = 1;
  END IF;
  RETURN NULL;
END
$$"""


def _postgresql(db):
    db.execute_sql(
        'CREATE TABLE "board_version" ('
        '"id" INTEGER NOT NULL PRIMARY KEY, "token" VARCHAR(32) NOT NULL)'
    )
    db.execute_sql(
        f'INSERT INTO "board_version" ("id", "token") VALUES (1, {PG_NEW})'  # noqa: S608
    )
    db.execute_sql(PG_FUNCTION.replace("{new}", PG_NEW))
    for table, columns in WATCHED.items():
        update = f"UPDATE OF {', '.join(columns)}" if columns else "UPDATE"
        db.execute_sql(
            f'CREATE CONSTRAINT TRIGGER "{table}_board_version" '
            f'AFTER INSERT OR {update} OR DELETE ON "{table}" '
            "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION board_version_bump()"
        )
        db.execute_sql(
            f'CREATE TRIGGER "{table}_board_version_truncate" AFTER TRUNCATE ON "{table}" '
            "FOR EACH STATEMENT EXECUTE FUNCTION board_version_bump()"
        )


def upgrade(db, migrator):
    if isinstance(db, PostgresqlDatabase):
        _postgresql(db)
    else:
        _sqlite(db)
