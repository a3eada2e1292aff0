"""The board state machine table."""

from __future__ import annotations

from portal.rules import casestates as cs


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
