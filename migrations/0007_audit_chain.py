"""0007: hash-chain the audit log and make it append-only.

Adds prev_hash/row_hash, the single-row audit_head, chains any existing rows, and installs
triggers: no UPDATE ever, no DELETE of rows younger than 180 days.
"""

import hashlib
import json
from datetime import datetime

from peewee import CharField, PostgresqlDatabase
from playhouse.migrate import migrate

RETENTION_DAYS = 180


def _row_hash(prev, at, actor, action, target_type, target_id, detail, ip):
    # must match portal.services.audit.row_hash (kept here so migrations never import the app)
    if isinstance(at, str):
        at = datetime.fromisoformat(at)
    stamp = at.strftime("%Y-%m-%d %H:%M:%S.%f")
    content = json.loads(detail or "{}")
    payload = json.dumps(
        [prev, stamp, actor, action, target_type, target_id, content, ip],
        ensure_ascii=False,
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def upgrade(db, migrator):
    migrate(
        migrator.add_column("audit_log", "prev_hash", CharField(max_length=64, default="")),
        migrator.add_column("audit_log", "row_hash", CharField(max_length=64, default="")),
    )
    db.execute_sql(
        'CREATE TABLE "audit_head" ("id" INTEGER NOT NULL PRIMARY KEY, '
        '"last_hash" VARCHAR(64) NOT NULL, "anchor_hash" VARCHAR(64) NOT NULL, '
        '"updated_at" TIMESTAMP NOT NULL)'
    )
    pg = isinstance(db, PostgresqlDatabase)
    mark = "%s" if pg else "?"
    prev = ""
    rows = db.execute_sql(
        'SELECT "id", "at", "actor", "action", "target_type", "target_id", "detail", "ip" '
        'FROM "audit_log" ORDER BY "id"'
    ).fetchall()
    for row_id, at, actor, action, ttype, tid, detail, ip in rows:
        digest = _row_hash(prev, at, actor, action, ttype, tid, detail, ip)
        db.execute_sql(
            f'UPDATE "audit_log" SET "prev_hash" = {mark}, "row_hash" = {mark} '  # noqa: S608
            f'WHERE "id" = {mark}',
            (prev, digest, row_id),
        )
        prev = digest
    db.execute_sql(
        'INSERT INTO "audit_head" ("id", "last_hash", "anchor_hash", "updated_at") '  # noqa: S608
        f"VALUES (1, {mark}, '', CURRENT_TIMESTAMP)",
        (prev,),
    )
    if pg:
        db.execute_sql(
            """CREATE FUNCTION audit_log_guard() RETURNS trigger AS $$
            BEGIN
              IF TG_OP = 'UPDATE' THEN
                RAISE EXCEPTION 'audit_log is append-only';
              END IF;
              IF OLD.at > (now() AT TIME ZONE 'UTC') - interval '%s days' THEN
                RAISE EXCEPTION 'audit rows younger than %s days cannot be purged';
              END IF;
              RETURN OLD;
            END $$ LANGUAGE plpgsql""".replace("%s", str(RETENTION_DAYS))
        )
        db.execute_sql(
            "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
            "FOR EACH ROW EXECUTE FUNCTION audit_log_guard()"
        )
    else:
        db.execute_sql(
            "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log "
            "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
        )
        db.execute_sql(
            "CREATE TRIGGER audit_log_retention BEFORE DELETE ON audit_log "
            f"WHEN OLD.at > datetime('now', '-{RETENTION_DAYS} days') "
            f"BEGIN SELECT RAISE(ABORT, 'audit rows younger than {RETENTION_DAYS} days "
            "cannot be purged'); END"
        )
