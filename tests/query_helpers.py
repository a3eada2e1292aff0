"""The statement counter the query-count tests share (issue 10: no N+1 queries)."""

from __future__ import annotations

from portal.db import db


class QueryCounter:
    """Counts the statements sent to the database (a wrapper around ``execute_sql``),
    from when it is made until the test's ``monkeypatch`` is undone."""

    def __init__(self, monkeypatch):
        self.statements: list[str] = []
        database = db.obj
        original = database.execute_sql

        def counting(sql, params=None, *args, **kwargs):
            self.statements.append(sql)
            return original(sql, params, *args, **kwargs)

        monkeypatch.setattr(database, "execute_sql", counting)

    def clear(self) -> None:
        self.statements.clear()

    def reading(self, table: str) -> list[str]:
        """The statements since the last ``clear`` that name ``table``."""
        return [s for s in self.statements if f'"{table}"' in s]

    def count(self, client, path: str, headers: dict | None = None) -> int:
        self.clear()
        r = client.get(path, headers=headers or {})
        assert r.status_code == 200, (path, r.status_code)
        return len(self.statements)
