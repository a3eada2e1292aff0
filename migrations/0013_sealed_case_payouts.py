"""0013: the identifiers a handler records on a case payout are encrypted at rest too: the
payee's bank card, the spouse's resident ID and the co-owners (names with resident IDs).

Like 0010, existing values are sealed with the current data key (the app configures
portal.crypto before migrating); the columns become TEXT on PostgreSQL (ciphertext is longer
than a card number). Nothing looks these columns up, so no blind index is needed.
"""

import json

from peewee import PostgresqlDatabase, TextField
from playhouse.migrate import migrate

from portal import crypto

TABLE = "case_payout"
COLUMNS = ("bank_card", "spouse_id_no", "co_owners")


def upgrade(db, migrator):
    pg = isinstance(db, PostgresqlDatabase)
    mark = "%s" if pg else "?"
    if pg:
        migrate(
            migrator.alter_column_type(TABLE, "bank_card", TextField(null=True)),
            migrator.alter_column_type(TABLE, "spouse_id_no", TextField(default="")),
        )
    for column in COLUMNS:
        rows = db.execute_sql(
            f'SELECT "id", "{column}" FROM "{TABLE}" WHERE "{column}" IS NOT NULL'  # noqa: S608
        ).fetchall()
        for row_id, value in rows:
            if column == "co_owners":  # already JSON text: sealed as it is stored
                value = json.dumps(json.loads(value), ensure_ascii=False, sort_keys=True)
            db.execute_sql(
                f'UPDATE "{TABLE}" SET "{column}" = {mark} WHERE "id" = {mark}',  # noqa: S608
                (crypto.seal(value, f"{TABLE}.{column}"), row_id),
            )
