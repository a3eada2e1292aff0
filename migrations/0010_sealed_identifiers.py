"""0010: resident ID and bank card numbers encrypted at rest, with keyed-hash lookup columns.

Existing values are encrypted with the current data key (portal.crypto, configured by the app
before migrating) and their blind indexes computed; the unique constraints move to the index
columns.
"""

from peewee import CharField, PostgresqlDatabase, TextField
from playhouse.migrate import migrate

from portal import crypto

SEALED = [  # table, column, index column or None
    ("depositor", "resident_id", "resident_id_index"),
    ("depositor", "bank_card", None),
    ("employer_operator", "resident_id", "resident_id_index"),
    ("proxy_case", "applicant_id_no", "applicant_id_index"),
    ("payout", "bank_card", None),
    ("bank_transfer", "card", None),
]


def upgrade(db, migrator):
    pg = isinstance(db, PostgresqlDatabase)
    mark = "%s" if pg else "?"
    db.execute_sql('DROP INDEX IF EXISTS "depositor_resident_id"')
    db.execute_sql('DROP INDEX IF EXISTS "employer_operator_employer_id_resident_id"')
    operations = []
    for table, column, index in SEALED:
        if index:
            operations.append(
                migrator.add_column(table, index, CharField(max_length=64, null=True))
            )
        if pg:
            operations.append(migrator.alter_column_type(table, column, TextField(null=True)))
    operations.append(migrator.drop_not_null("bank_transfer", "card"))
    migrate(*operations)

    for table, column, index in SEALED:
        rows = db.execute_sql(
            f'SELECT "id", "{column}" FROM "{table}" WHERE "{column}" IS NOT NULL'  # noqa: S608
        ).fetchall()
        for row_id, value in rows:
            sealed = crypto.seal(value, f"{table}.{column}")
            if index:
                db.execute_sql(
                    f'UPDATE "{table}" SET "{column}" = {mark}, "{index}" = {mark} '  # noqa: S608
                    f'WHERE "id" = {mark}',
                    (sealed, crypto.blind_index(value, "resident_id"), row_id),
                )
            else:
                db.execute_sql(
                    f'UPDATE "{table}" SET "{column}" = {mark} WHERE "id" = {mark}',  # noqa: S608
                    (sealed, row_id),
                )
    db.execute_sql(
        'CREATE UNIQUE INDEX "depositor_resident_id_index" ON "depositor" ("resident_id_index")'
    )
    db.execute_sql(
        'CREATE UNIQUE INDEX "employer_operator_employer_id_resident_id_index" '
        'ON "employer_operator" ("employer_id", "resident_id_index")'
    )
    db.execute_sql(
        'CREATE INDEX "proxy_case_applicant_id_index" ON "proxy_case" ("applicant_id_index")'
    )
