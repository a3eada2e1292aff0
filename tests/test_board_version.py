"""The boards' data version (migration 0015) and the boards each worker keeps under it
(issue 10): a token the database changes, by triggers, with everything a board shows; a board
asked for again before anything changed is the board built last time, and one asked for after
a change is built afresh. Real changes through the models, as every service makes them.

On SQLite the token changes in the writer's own statement; on PostgreSQL when the writer
commits, and until then ``board_version`` gives the writer no token (its boards are built and
not kept). The tests say which they expect where the two differ.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from peewee import fn

from portal.db import db, is_postgres
from portal.models import (
    CaseEvent,
    Center,
    Department,
    ProxyCase,
    Setting,
    SmsMessage,
    StaffUser,
    WebSession,
)
from portal.rules import casestates as cs
from portal.services import cases
from portal.services.cases import Filters
from tests.board_helpers import HX, make_case, staff
from tests.conftest import TODAY, login_staff
from tests.fragment_helpers import kept_cache
from tests.query_helpers import QueryCounter

NONE = Filters()


def raw_token() -> str:
    cursor = db.execute_sql('SELECT "token" FROM "board_version" WHERE "id" = 1')
    return cursor.fetchone()[0]


def now() -> str | None:
    """The version a request reads once (``board_version``), as the views pass it on."""
    return cases.board_version()


def kept(user, direction=cs.OUTBOUND, **kwargs):
    return cases.board(user, direction, NONE, kwargs.pop("today", TODAY), version=now(), **kwargs)


@pytest.fixture
def boards(app):
    """The kept boards and filter choices, empty before and after the test."""
    with kept_cache(app, cases._boards, cases._choices) as found:
        yield found


def assert_changed(before: str | None) -> None:
    """After a write in this transaction: a new token (SQLite) or none to trust until the
    commit (PostgreSQL)."""
    after = cases.board_version()
    if is_postgres():
        assert after is None
    else:
        assert after is not None and after != before


# --- the token ----------------------------------------------------------------------------


def _new_case():
    make_case(cs.OUTBOUND, "accepted")


def _case_update():
    case = ProxyCase.select().order_by(ProxyCase.id).first()
    ProxyCase.update(version=ProxyCase.version + 1).where(ProxyCase.id == case.id).execute()


def _case_delete():
    case = make_case(cs.OUTBOUND, "accepted")
    before = cases.board_version() if not is_postgres() else None
    CaseEvent.delete().where(CaseEvent.case == case.id).execute()
    ProxyCase.delete().where(ProxyCase.id == case.id).execute()
    if before is not None:
        assert cases.board_version() != before


def _center_name():
    Center.update(name=Center.name.concat("（新）")).where(~Center.is_self).execute()


def _department():
    Department.create(code="ZZZ", name="新管理部")


def _staff(**fields):
    def change():
        StaffUser.update(**fields).where(StaffUser.username == "handler").execute()

    return change


def _setting():
    Setting.create(key="wip:outbound:accepted", value="3", effective_from=TODAY)


@pytest.mark.parametrize(
    "change",
    [
        _new_case,
        _case_update,
        _case_delete,
        _center_name,
        _department,
        _staff(name="改名经办人"),
        _staff(role="clerk"),
        _staff(active=False),
        _staff(department=None),
        _setting,
    ],
    ids=lambda f: getattr(f, "__name__", "staff"),
)
def test_every_change_a_board_shows_changes_the_version(app, change):
    before = cases.board_version()
    assert before
    change()
    assert_changed(before)


def test_changes_a_board_does_not_show_leave_the_token_alone(app):
    before = raw_token()
    StaffUser.update(totp_last_step=StaffUser.totp_last_step + 1).execute()  # every login
    SmsMessage.create(phone="13800138000", body="验证码 123456")
    assert raw_token() == before
    if not is_postgres():  # no write this transaction could see: the token stays trusted
        assert cases.board_version() == before


def test_a_rolled_back_change_never_brings_its_token_back(app):
    if is_postgres():
        pytest.skip("on PostgreSQL the token changes at commit: a rollback never changes it")
    before = cases.board_version()
    with db.atomic() as sp:
        _case_update()
        undone = cases.board_version()
        sp.rollback()
    assert cases.board_version() == before
    _case_update()
    assert cases.board_version() not in (before, undone)  # random, not a counter


# --- the kept boards ----------------------------------------------------------------------


def test_a_board_asked_for_again_is_the_one_built_unless_the_data_changed(app, boards):
    liaison = staff("liaison")
    first = kept(liaison)
    assert kept(liaison) is first
    assert first == cases.board(liaison, cs.OUTBOUND, NONE, TODAY)  # the same as built afresh
    case = make_case(cs.OUTBOUND, "accepted", start=TODAY - timedelta(days=30))  # most urgent
    after = kept(liaison)
    accepted = after.column("accepted")
    assert accepted.count == first.column("accepted").count + 1
    assert accepted.cards[0].id == case.id
    ProxyCase.update(applicant_name="新名字").where(ProxyCase.id == case.id).execute()
    assert kept(liaison).column("accepted").cards[0].applicant_name == "新名字"


def test_each_user_day_calendar_and_page_size_has_its_own_board(app, boards):
    make_case(cs.OUTBOUND, "accepted")
    liaison, auditor, clerk = staff("liaison"), staff("auditor"), staff("clerk")
    base = kept(liaison)
    others = [
        kept(auditor),
        kept(clerk),
        kept(liaison, today=TODAY + timedelta(days=1)),
        kept(liaison, overrides={TODAY + timedelta(days=1): False}),
        kept(liaison, shown={"accepted": 36}),
    ]
    assert all(other is not base for other in others)
    assert others[0].readonly and not base.readonly  # the auditor moves nothing
    assert others[1].column("accepted").cards[0].targets != ()  # the clerk's own moves
    # each is what that user, day and calendar get when built afresh
    assert others[2] == cases.board(liaison, cs.OUTBOUND, NONE, TODAY + timedelta(days=1))
    overrides = {TODAY + timedelta(days=1): False}
    assert others[3] == cases.board(liaison, cs.OUTBOUND, NONE, TODAY, overrides)
    # handlers see their own department's inbound cases: never another's board
    handler = staff("handler")
    other_dept = StaffUser.create(
        username="handler_zz",
        name="另一经办人",
        role="handler",
        department=Department.create(code="ZZZ", name="新管理部"),
    )
    make_case(cs.INBOUND, "distributed", dept="AZQ")
    mine = kept(handler, cs.INBOUND)
    theirs = kept(other_dept, cs.INBOUND)
    assert mine.column("distributed").count >= 1
    assert theirs.column("distributed").count == 0


def test_filtered_and_unkept_boards_are_never_kept(app, boards):
    liaison = staff("liaison")
    filtered = Filters(item="purchase_withdrawal")
    one = cases.board(liaison, cs.OUTBOUND, filtered, TODAY, version=now())
    assert cases.board(liaison, cs.OUTBOUND, filtered, TODAY, version=now()) is not one
    assert cases.board(liaison, cs.OUTBOUND, NONE, TODAY) is not cases.board(
        liaison, cs.OUTBOUND, NONE, TODAY
    )
    assert len(boards) == 0


def test_polling_compares_with_the_kept_board(app, boards):
    liaison = staff("liaison")
    view = kept(liaison)
    tokens = {col.state: col.token for col in view.columns}
    assert cases.changed_board(liaison, cs.OUTBOUND, NONE, TODAY, tokens, version=now()) is None
    stale = {**tokens, "accepted": "0" * 16}
    assert cases.changed_board(liaison, cs.OUTBOUND, NONE, TODAY, stale, version=now()) is view
    # the same answer as polling without the kept boards
    assert cases.changed_board(liaison, cs.OUTBOUND, NONE, TODAY, tokens) is None
    make_case(cs.OUTBOUND, "accepted")
    fresh = cases.changed_board(liaison, cs.OUTBOUND, NONE, TODAY, tokens, version=now())
    assert fresh is not None
    assert fresh.column("accepted").count == view.column("accepted").count + 1


def test_filter_choices_follow_departments_and_handlers(app, boards):
    liaison = staff("liaison")
    first = cases.filter_choices(liaison, cs.INBOUND, version=now())
    first["department"].clear()  # a caller changing its copy changes nothing kept
    again = cases.filter_choices(liaison, cs.INBOUND, version=now())
    assert again == cases.filter_choices(liaison, cs.INBOUND)
    assert again["department"]
    dept = Department.create(code="ZZZ", name="新管理部")
    handler = StaffUser.create(username="handler_zz", name="新经办人", role="handler")
    after = cases.filter_choices(liaison, cs.INBOUND, version=now())
    assert (str(dept.id), "新管理部") in after["department"]
    assert (str(handler.id), "新经办人") in after["assignee"]


@pytest.fixture
def committed_login(app):
    """For a test whose writes commit (PostgreSQL keeps no board for a transaction that has
    written, and logging in writes): afterwards its cases, sessions and TOTP steps go."""
    db.connect(reuse_if_open=True)
    steps = {u.id: u.totp_last_step for u in StaffUser.select()}
    sessions = {s.sid for s in WebSession.select(WebSession.sid)}
    last_case = ProxyCase.select(fn.MAX(ProxyCase.id)).scalar()
    db.close()
    yield
    db.connect(reuse_if_open=True)
    with db.atomic():
        new = ProxyCase.select(ProxyCase.id).where(ProxyCase.id > last_case)
        CaseEvent.delete().where(CaseEvent.case.in_(new)).execute()
        ProxyCase.delete().where(ProxyCase.id > last_case).execute()
        WebSession.delete().where(WebSession.sid.not_in(list(sessions))).execute()
        for user_id, step in steps.items():
            StaffUser.update(totp_last_step=step).where(StaffUser.id == user_id).execute()
    db.close()


@pytest.mark.committed
def test_a_board_shown_again_reads_no_case(app, client, boards, committed_login, monkeypatch):
    login_staff(client, "liaison")
    counter = QueryCounter(monkeypatch)
    for headers in ({}, HX):
        assert client.get("/staff/board/outbound", headers=headers).status_code == 200
        counter.clear()
        assert client.get("/staff/board/outbound", headers=headers).status_code == 200
        assert not counter.reading("proxy_case"), counter.statements
        assert len(counter.reading("board_version")) == 1  # read once per request
    # a change: the next page reads the cases again and shows the new one
    db.connect(reuse_if_open=True)
    with db.atomic():
        case = make_case(cs.OUTBOUND, "accepted", start=TODAY - timedelta(days=30))
    db.close()
    counter.clear()
    page = client.get("/staff/board/outbound").get_data(as_text=True)
    assert counter.reading("proxy_case")
    assert case.case_no in page


# --- writers at once (PostgreSQL: the token's row is locked at commit only) ---------------


@pytest.mark.committed
def test_writers_of_several_cases_at_once_do_not_deadlock_over_the_token(app):
    """Two transactions each change cases, the first then one the second holds: with the
    token's row locked when each commits (not at its first write), the first waits for the
    second to commit, and both commit. Locked at the first write, the second would wait for
    the first's token row while holding the case the first waits for: a deadlock."""
    if not is_postgres():
        pytest.skip("SQLite has one writer at a time")
    db.connect(reuse_if_open=True)
    ids = [c.id for c in ProxyCase.select(ProxyCase.id).order_by(ProxyCase.id).limit(2)]
    names = {c.id: c.applicant_name for c in ProxyCase.select().where(ProxyCase.id.in_(ids))}
    before = raw_token()
    db.close()
    first_wrote, second_wrote, first_waits = threading.Event(), threading.Event(), threading.Event()
    errors: list[Exception] = []

    def rename(case_id, name):
        ProxyCase.update(applicant_name=name).where(ProxyCase.id == case_id).execute()

    def first():
        db.connect(reuse_if_open=True)
        try:
            with db.atomic():
                rename(ids[0], "甲")
                first_wrote.set()
                second_wrote.wait(10)
                first_waits.set()
                rename(ids[1], "甲")  # waits for the second's commit
        except Exception as exc:  # asserted on below
            errors.append(exc)
        finally:
            db.close()

    def second():
        db.connect(reuse_if_open=True)
        try:
            with db.atomic():
                first_wrote.wait(10)
                rename(ids[1], "乙")
                second_wrote.set()
                first_waits.wait(10)
                threading.Event().wait(0.3)  # the first is now waiting on this case
        except Exception as exc:  # asserted on below
            errors.append(exc)
        finally:
            db.close()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    db.connect(reuse_if_open=True)
    try:
        assert errors == []
        assert ProxyCase.get_by_id(ids[1]).applicant_name == "甲"  # the first committed last
        assert raw_token() != before
    finally:
        for case_id, name in names.items():
            rename(case_id, name)
        db.close()


@pytest.mark.committed
def test_a_commit_changes_the_token_and_a_rollback_does_not(app):
    db.connect(reuse_if_open=True)
    case = ProxyCase.select().order_by(ProxyCase.id).first()
    try:
        before = raw_token()
        with db.atomic() as tx:
            ProxyCase.update(applicant_name="回滚").where(ProxyCase.id == case.id).execute()
            tx.rollback()
        assert raw_token() == before
        with db.atomic():
            StaffUser.update(totp_last_step=StaffUser.totp_last_step).execute()
        assert raw_token() == before
        with db.atomic():
            ProxyCase.update(applicant_name="提交").where(ProxyCase.id == case.id).execute()
        assert raw_token() != before
        assert cases.board_version() == raw_token()
    finally:
        with db.atomic():
            ProxyCase.update(applicant_name=case.applicant_name).where(
                ProxyCase.id == case.id
            ).execute()
        db.close()
