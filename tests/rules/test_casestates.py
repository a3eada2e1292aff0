"""The board state machine table."""

from __future__ import annotations

import itertools
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portal.rules import casestates as cs
from portal.rules.workdays import add_workdays, paused_deadline


def test_every_move_stays_within_its_board():
    for move in cs.MOVES:
        assert move.source in cs.COLUMNS[move.direction]
        assert move.target in cs.COLUMNS[move.direction]
        assert move.source != move.target
        assert move.roles


def test_final_states_have_no_way_out():
    for direction, finals in cs.FINAL.items():
        for state in finals:
            assert not [m for m in cs.MOVES if m.direction == direction and m.source == state]


def test_every_column_is_reachable_from_the_start():
    for direction, columns in cs.COLUMNS.items():
        seen, frontier = {cs.INITIAL[direction]}, [cs.INITIAL[direction]]
        while frontier:
            state = frontier.pop()
            for m in cs.MOVES:
                if m.direction == direction and m.source == state and m.target not in seen:
                    seen.add(m.target)
                    frontier.append(m.target)
        assert seen == set(columns)


def test_allowed_targets_respect_roles():
    assert cs.allowed_targets(cs.OUTBOUND, "verifying", "liaison") == [
        "transmitted",
        "supplement",
        "rejected",
    ]
    assert cs.allowed_targets(cs.OUTBOUND, "verifying", "auditor") == []
    assert cs.allowed_targets(cs.INBOUND, "received", "handler") == []
    assert cs.find_move(cs.INBOUND, "received", "done") is None


def test_moves_into_reason_columns_require_data():
    for move in cs.MOVES:
        if move.target == "rejected":
            assert move.requires == "reason"
        if move.target == "supplement" and move.source != "supplement":
            assert move.requires == "missing"


# --- refusal reasons, mailing and assignment states, pauses -------------------------------

ROLES = ("clerk", "liaison", "handler", "official", "admin", "auditor")


@pytest.mark.parametrize(
    "direction, source, target, role",
    [
        (d, s, t, r)
        for d, cols in cs.COLUMNS.items()
        for s, t in itertools.product(cols, cols)
        for r in ROLES
    ],
)
def test_refusal_is_none_exactly_for_the_allowed_moves(direction, source, target, role):
    move = cs.find_move(direction, source, target)
    allowed = move is not None and role in move.roles
    reason = cs.refusal(direction, source, target, role)
    assert (reason is None) == allowed
    assert target in cs.allowed_targets(direction, source, role) or not allowed


def test_refusal_messages_say_why():
    assert cs.refusal(cs.OUTBOUND, "accepted", "accepted", "clerk") == "办件已在“窗口受理”"
    assert cs.refusal(cs.OUTBOUND, "accepted", "transmitted", "clerk") == (
        "不能从“窗口受理”直接移至“已传递”（可移至：材料核实、待补正、退回）"
    )
    assert "须由联络人操作" in cs.refusal(cs.OUTBOUND, "verifying", "transmitted", "clerk")
    assert "管理部经办或联络人" in cs.refusal(cs.INBOUND, "distributed", "processing", "clerk")
    assert "已结束" in cs.refusal(cs.INBOUND, "fed_back", "done", "liaison")
    assert cs.refusal(cs.INBOUND, "received", "nowhere", "liaison") == "没有这一列"


def test_roles_that_move_are_named():
    assert {r for m in cs.MOVES for r in m.roles} == set(cs.MOVER_NAMES)


def test_mailing_and_assignment_states_are_columns():
    for direction, states in cs.MAIL_STATES.items():
        assert set(states) <= set(cs.COLUMNS[direction])
    assert set(cs.ASSIGNABLE_STATES[cs.INBOUND]) <= set(cs.COLUMNS[cs.INBOUND])
    assert set(cs.REQUIREMENT_LABELS) == {m.requires for m in cs.MOVES if m.requires}


def test_resumed_deadline_across_national_day():
    start = date(2026, 9, 28)  # Monday; 10-01..10-07 are holidays, 09-20 and 10-10 make-up days
    deadline = add_workdays(start, 7)
    assert deadline == date(2026, 10, 13)
    # 待补正 from 09-29 to 10-12: 09-30, 10-08, 10-09, 10-10 (Saturday, working), 10-12 paused
    new, days = cs.resumed_deadline(deadline, date(2026, 9, 29), date(2026, 10, 12))
    assert days == 5
    assert new == add_workdays(deadline, 5) == date(2026, 10, 20)
    assert new == paused_deadline(start, 7, [(date(2026, 9, 29), date(2026, 10, 12))])


def test_resumed_deadline_honours_overrides():
    start = date(2026, 11, 23)
    deadline = add_workdays(start, 7)  # 2026-12-02
    off = {date(2026, 11, 26): False}  # the admin closes the office on Thursday
    new, days = cs.resumed_deadline(deadline, date(2026, 11, 24), date(2026, 11, 27), off)
    assert days == 2  # 11-25 and 11-27; 11-26 was no working day
    assert new == add_workdays(deadline, 2, off)


def test_a_pause_after_the_deadline_changes_nothing():
    deadline = date(2026, 11, 20)
    assert cs.resumed_deadline(deadline, date(2026, 11, 23), date(2026, 11, 27)) == (deadline, 4)
    assert cs.resumed_deadline(deadline, date(2026, 11, 23), date(2026, 11, 23)) == (deadline, 0)


@settings(max_examples=80, deadline=None)
@given(
    start=st.dates(min_value=date(2025, 1, 1), max_value=date(2026, 12, 31)),
    n=st.integers(min_value=1, max_value=10),
    pauses=st.lists(
        st.tuples(st.integers(min_value=0, max_value=15), st.integers(min_value=0, max_value=20)),
        min_size=1,
        max_size=3,
    ),
)
def test_resuming_pause_by_pause_equals_the_paused_deadline(start, n, pauses):
    """Extending the deadline at each resumption gives workdays.paused_deadline's answer."""
    deadline = add_workdays(start, n)
    intervals = []
    cursor = start
    for gap, length in pauses:
        paused_on = cursor + timedelta(days=gap)
        resumed_on = paused_on + timedelta(days=length)
        intervals.append((paused_on, resumed_on))
        deadline, _days = cs.resumed_deadline(deadline, paused_on, resumed_on)
        cursor = resumed_on
    assert deadline == paused_deadline(start, n, intervals)
