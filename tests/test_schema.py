"""The numbered migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from pathlib import Path

import pytest

from portal import migrate
from portal.db import db
from portal.models import MODELS


def test_every_model_column_exists_in_the_migrated_schema():
    for model in MODELS:
        table = model._meta.table_name
        columns = {c.name for c in db.get_columns(table)}
        fields = {f.column_name for f in model._meta.sorted_fields}
        assert fields == columns, f"{table}: models {fields - columns}, schema {columns - fields}"


def test_unique_indexes_from_the_models_exist():
    for model in MODELS:
        table = model._meta.table_name
        unique_in_db = {tuple(i.columns) for i in db.get_indexes(table) if i.unique}
        for field in model._meta.sorted_fields:
            if field.unique:
                assert (field.column_name,) in unique_in_db, f"{table}.{field.name} not unique"


def test_migrations_are_recorded_and_idempotent():
    assert migrate.pending(db.obj) == []
    assert migrate.upgrade(db.obj, log=lambda *_: None) == []


def test_migration_files_are_numbered_and_never_import_models():
    found = migrate.discover()
    assert [v for v, _ in found] == sorted(v for v, _ in found)
    for _, path in found:
        text = Path(path).read_text(encoding="utf-8")
        assert "portal.models" not in text


def test_sql_templates_render_per_dialect():
    sql = 'CREATE TABLE "t" ("id" {{pk}});\nCREATE INDEX "i" ON "t" ("id");\n'
    sqlite = migrate.sql_statements(sql, "sqlite")
    pg = migrate.sql_statements(sql, "postgresql")
    assert "AUTOINCREMENT" in sqlite[0] and "SERIAL" in pg[0]
    assert len(sqlite) == len(pg) == 2


def test_money_never_accepts_float():
    from decimal import Decimal

    from portal.models import Account

    field = Account.balance
    with pytest.raises(TypeError):
        field.db_value(1.5)
    with pytest.raises(ValueError):
        field.db_value(Decimal("1.005"))
    assert field.db_value(Decimal("12.34")) == 1234
    assert field.python_value(1234) == Decimal("12.34")
