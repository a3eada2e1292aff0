"""Prepared statements (portal.db.Prepared, issue 10): the SQL is built once per dialect and
each run binds new values; rows convert exactly as a plain peewee select converts them."""

from __future__ import annotations

import pytest
from peewee import fn

from portal.db import Prepared
from portal.models import Account, Depositor, Employer, EmployerOperator, Notice


def test_a_row_comes_back_as_the_plain_select_gives_it(depositor):
    by_id = Prepared(lambda pk: Depositor.select().where(Depositor.id == pk).limit(1), 1)
    got = by_id.first(depositor.id)
    plain = Depositor.get_by_id(depositor.id)
    assert got is not None and got.id == depositor.id
    assert got.__data__ == plain.__data__  # decrypted ID, dates, Decimal alike
    assert got.resident_id == depositor.resident_id


def test_a_missing_row_is_none_and_other_values_give_other_rows(depositor):
    by_id = Prepared(lambda pk: Depositor.select().where(Depositor.id == pk).limit(1), 1)
    assert by_id.first(10**9) is None
    other = Depositor.select().where(Depositor.id != depositor.id).first()
    assert by_id.first(other.id).id == other.id
    assert by_id.first(depositor.id).id == depositor.id


def test_the_sql_is_built_once():
    built = []

    def build(pk):
        built.append(pk)
        return Depositor.select().where(Depositor.id == pk).limit(1)

    by_id = Prepared(build, 1)
    for pk in (1, 2, 3):
        by_id.first(pk)
    assert len(built) == 1


def test_a_join_fills_the_related_row_without_another_query():
    operator = EmployerOperator.select().first()
    by_id = Prepared(
        lambda pk: (
            EmployerOperator.select(EmployerOperator, Employer)
            .join(Employer)
            .where(EmployerOperator.id == pk)
        ),
        1,
    )
    got = by_id.first(operator.id)
    assert "employer" in got.__rel__  # already there: reading it runs no query
    assert got.employer.status == operator.employer.status


def test_a_count_with_several_values(depositor):
    unread = Prepared(
        lambda kind, rid: Notice.select(fn.COUNT(Notice.id)).where(
            (Notice.recipient_kind == kind)
            & (Notice.recipient_id == rid)
            & Notice.read_at.is_null()
        ),
        2,
    )
    for kind, rid in (("depositor", depositor.id), ("staff", 1), ("operator", 10**9)):
        expected = (
            Notice.select()
            .where(
                (Notice.recipient_kind == kind)
                & (Notice.recipient_id == rid)
                & Notice.read_at.is_null()
            )
            .count()
        )
        assert unread.scalar(kind, rid) == expected


def test_a_value_is_bound_not_pasted_into_the_sql():
    by_name = Prepared(lambda name: Depositor.select().where(Depositor.name == name).limit(1), 1)
    assert by_name.first("x' OR '1'='1") is None


def test_the_wrong_number_of_values_is_refused():
    by_id = Prepared(lambda pk: Depositor.select().where(Depositor.id == pk), 1)
    with pytest.raises(TypeError):
        by_id.first()
    with pytest.raises(TypeError):
        by_id.first(1, 2)


def test_all_rows_in_the_query_order_and_none_is_an_empty_list():
    by_employer = Prepared(
        lambda emp: Account.select().where(Account.employer == emp).order_by(Account.id.desc()),
        1,
    )
    employer = Employer.select().join(Account).first()
    plain = list(Account.select().where(Account.employer == employer).order_by(Account.id.desc()))
    got = by_employer.all(employer.id)
    assert len(got) >= 1 and [a.id for a in got] == [a.id for a in plain]
    assert [a.__data__ for a in got] == [a.__data__ for a in plain]  # Decimal, dates alike
    assert by_employer.all(10**9) == []
    with pytest.raises(TypeError):
        by_employer.all()


def test_it_runs_on_the_database_the_model_is_bound_to(tmp_path):
    """Scripts (the browser tests' set-up, the benchmark) bind the models to a database of
    their own without the application's handle; a prepared query follows the model."""
    from datetime import date

    from peewee import SqliteDatabase

    from portal.models import Setting

    by_key = Prepared(lambda key: Setting.select().where(Setting.key == key), 1)
    assert by_key.all("bound-only") == []  # the application's database first
    other = SqliteDatabase(str(tmp_path / "other.db"))
    with other.bind_ctx([Setting]):
        Setting.create_table()
        Setting.create(key="bound-only", value="1", effective_from=date(2026, 1, 1))
        assert [s.value for s in by_key.all("bound-only")] == ["1"]
    assert by_key.all("bound-only") == []  # and back
    other.close()


def test_rows_convert_alike_when_the_wrappers_set_up_is_reused(monkeypatch):
    """The row wrapper's set-up (column names, converters, joined models) is worked out on the
    first run, even one without rows, and reused: later runs give what a plain select gives —
    joined rows, dicts, tuples — and do not work it out again."""
    import peewee

    resolved = []
    real = peewee._resolve_model_columns

    def counting(*args):
        resolved.append(1)
        return real(*args)

    monkeypatch.setattr(peewee, "_resolve_model_columns", counting)

    def joined(pk):
        return (
            EmployerOperator.select(EmployerOperator, Employer)
            .join(Employer)
            .where(EmployerOperator.id == pk)
        )

    operators = list(EmployerOperator.select().order_by(EmployerOperator.id).limit(3))
    assert len(operators) >= 2
    resolved.clear()
    by_id = Prepared(joined, 1)
    assert by_id.first(10**9) is None  # no rows: set up all the same
    for operator in operators * 2:
        got = by_id.first(operator.id)
        plain = joined(operator.id).get()
        assert got.__data__ == plain.__data__
        assert "employer" in got.__rel__ and got.employer.__data__ == plain.employer.__data__
    assert len(resolved) == 1 + 6  # once for the prepared statement, once per plain select

    as_dicts = Prepared(lambda pk: Account.select().where(Account.id <= pk).dicts(), 1)
    as_tuples = Prepared(lambda pk: Account.select().where(Account.id <= pk).tuples(), 1)
    for limit in (3, 1, 5):
        assert as_dicts.all(limit) == list(Account.select().where(Account.id <= limit).dicts())
        assert as_tuples.all(limit) == list(Account.select().where(Account.id <= limit).tuples())


def test_plain_integer_and_text_columns_are_not_converted(monkeypatch):
    """Integers and text come from either driver as they are: a prepared statement's rows skip
    their python_value (a case card read spent half its time there) and still equal what a
    plain select gives, dates, Decimal, booleans, sealed values and foreign keys included."""
    from peewee import CharField

    from portal.models import ProxyCase

    text_conversions = []
    real = CharField.python_value

    def counting(self, value):
        text_conversions.append(self.name)
        return real(self, value)

    monkeypatch.setattr(CharField, "python_value", counting)
    cases = Prepared(lambda n: ProxyCase.select().order_by(ProxyCase.id).limit(n).tuples(), 1)
    accounts = Prepared(lambda n: Account.select().order_by(Account.id).limit(n), 1)
    people = Prepared(lambda n: Depositor.select().order_by(Depositor.id).limit(n).dicts(), 1)
    for n in (4, 2):
        text_conversions.clear()
        got = cases.all(n), [a.__data__ for a in accounts.all(n)], people.all(n)
        assert text_conversions == []
        plain = (
            list(ProxyCase.select().order_by(ProxyCase.id).limit(n).tuples()),
            [a.__data__ for a in Account.select().order_by(Account.id).limit(n)],
            list(Depositor.select().order_by(Depositor.id).limit(n).dicts()),
        )
        assert text_conversions  # the plain select converts them
        assert got == plain and len(got[0]) == n
    row = got[1][0]
    assert not isinstance(row["balance"], str) and row["balance"] == plain[1][0]["balance"]


def test_named_tuples_are_set_up_per_run():
    """The named-tuple wrapper's row constructor closes over its wrapper: not reused."""
    by_id = Prepared(lambda pk: Account.select().where(Account.id <= pk).namedtuples(), 1)
    first, second = by_id.all(2), by_id.all(3)
    assert [r.id for r in second[: len(first)]] == [r.id for r in first]
    assert second[0].balance == Account.get_by_id(second[0].id).balance


def test_a_prepared_insert_writes_what_create_writes():
    """PreparedInsert: the row read back is the row Model.create writes — defaults filled,
    JSON and foreign keys converted, the new id returned (RETURNING on PostgreSQL)."""
    from datetime import datetime

    from portal.db import PreparedInsert
    from portal.models import CaseEvent, ProxyCase, SmsMessage, StaffUser

    case = ProxyCase.select().first()
    actor = StaffUser.select().first()
    add_event = PreparedInsert(CaseEvent)
    values = {
        "case": case,
        "actor": actor,
        "actor_label": actor.name,
        "action": "move",
        "from_state": "accepted",
        "to_state": "supplement",
        "data": {"missing": ["购房合同原件"], "n": 1},
    }
    made = add_event.create(**values)
    plain = CaseEvent.create(**values)
    assert made.id and made.id != plain.id and not made.is_dirty()
    got, expected = CaseEvent.get_by_id(made.id), CaseEvent.get_by_id(plain.id)
    keep = {"id", "created_at"}
    assert {k: v for k, v in got.__data__.items() if k not in keep} == {
        k: v for k, v in expected.__data__.items() if k not in keep
    }
    assert isinstance(got.created_at, datetime)  # the default, as create fills it
    assert made.case.id == case.id and made.data == values["data"]

    # defaults only where given nothing; by id as well as by instance
    bare = add_event.create(case=case.id, action="comment")
    row = CaseEvent.get_by_id(bare.id)
    assert row.actor_id is None and row.actor_label == "" and row.data == {}
    assert row.from_state is None and row.case_id == case.id

    sms = PreparedInsert(SmsMessage).create(phone="13800000000", body="验证码 123456")
    assert SmsMessage.get_by_id(sms.id).body == "验证码 123456"
    with pytest.raises(TypeError, match="no field 'colour'"):
        add_event.create(case=case, action="move", colour="red")


def test_a_prepared_update_writes_what_update_writes():
    """PreparedUpdate: the row read back is the row Model.update writes (dates, JSON, foreign
    keys by id or instance, None), only where the keys match; the count of rows changed."""
    from datetime import date, datetime

    from portal.db import PreparedUpdate
    from portal.models import ProxyCase, StaffUser

    first, second = list(ProxyCase.select().order_by(ProxyCase.id).limit(2))
    handler = StaffUser.select().first()
    at = datetime(2026, 12, 3, 10, 0, 0, 123456)
    values = {
        "state": "supplement",
        "missing_materials": ["购房合同原件", "身份证"],
        "assignee": handler.id,
        "deadline": date(2026, 12, 24),
        "paused_since": None,
        "updated_at": at,
        "version": first.version + 1,
    }
    bump = PreparedUpdate(ProxyCase, "id", "version")
    assert bump.execute(values, id=first.id, version=first.version) == 1
    plain = dict(values, version=second.version + 1)
    assert (
        ProxyCase.update(**plain)
        .where((ProxyCase.id == second.id) & (ProxyCase.version == second.version))
        .execute()
        == 1
    )
    got, expected = ProxyCase.get_by_id(first.id), ProxyCase.get_by_id(second.id)
    for name in values:
        if name != "version":
            assert getattr(got, name) == getattr(expected, name), name
    assert got.version == first.version + 1 and got.updated_at == at
    assert got.missing_materials == ["购房合同原件", "身份证"] and got.assignee_id == handler.id

    # a stale version changes nothing; an instance for a foreign key; another column set
    assert bump.execute({"state": "accepted"}, id=first.id, version=first.version) == 0
    assert ProxyCase.get_by_id(first.id).state == "supplement"
    assert (
        bump.execute(
            {"assignee": handler, "version": got.version + 1}, id=first.id, version=got.version
        )
        == 1
    )
    assert ProxyCase.get_by_id(first.id).assignee_id == handler.id
    with pytest.raises(TypeError, match="no field 'colour'"):
        bump.execute({"colour": "red"}, id=first.id, version=1)
    with pytest.raises(TypeError, match="keys"):
        bump.execute({"state": "accepted"}, id=first.id)
