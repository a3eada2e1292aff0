"""The two proxy-case boards as one state-machine table (DESIGN.md section 4).

Pure data and functions: which columns each direction has, which moves are allowed, which
roles may make each, and what data a move needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from portal.rules.workdays import Overrides, add_workdays, workdays_between

OUTBOUND = "outbound"
INBOUND = "inbound"

STATE_LABELS = {
    OUTBOUND: {
        "accepted": "窗口受理",
        "verifying": "材料核实",
        "transmitted": "已传递",
        "feedback": "已反馈",
        "archived": "归档",
        "supplement": "待补正",
        "rejected": "退回",
    },
    INBOUND: {
        "received": "平台接收",
        "distributed": "已分发",
        "processing": "办理中",
        "done": "已办结",
        "fed_back": "已反馈",
        "supplement": "待补正",
        "rejected": "退回",
    },
}

# Columns left to right; 待补正 and 退回 sit at the end of each board.
COLUMNS = {direction: tuple(labels) for direction, labels in STATE_LABELS.items()}
INITIAL = {OUTBOUND: "accepted", INBOUND: "received"}
FINAL = {OUTBOUND: ("archived", "rejected"), INBOUND: ("fed_back", "rejected")}
PAUSED = "supplement"  # the deadline clock stops here
# States in which our own deadline runs: outbound until transmitted (7 working days from
# acceptance), inbound until fed back (3 working days from receipt).
CLOCK_STATES = {
    OUTBOUND: ("accepted", "verifying"),
    INBOUND: ("received", "distributed", "processing", "done"),
}


@dataclass(frozen=True)
class Move:
    direction: str
    source: str
    target: str
    roles: frozenset[str]
    requires: str | None = None  # reason / missing / result / department / None


def _m(direction, source, target, roles, requires=None):
    return Move(direction, source, target, frozenset(roles.split()), requires)


MOVES: tuple[Move, ...] = (
    _m(OUTBOUND, "accepted", "verifying", "clerk handler"),
    _m(OUTBOUND, "accepted", "supplement", "clerk handler", "missing"),
    _m(OUTBOUND, "accepted", "rejected", "clerk handler", "reason"),
    _m(OUTBOUND, "supplement", "accepted", "clerk handler"),
    _m(OUTBOUND, "supplement", "rejected", "clerk handler", "reason"),
    _m(OUTBOUND, "verifying", "transmitted", "liaison"),
    _m(OUTBOUND, "verifying", "supplement", "liaison clerk handler", "missing"),
    _m(OUTBOUND, "verifying", "rejected", "liaison clerk handler", "reason"),
    _m(OUTBOUND, "transmitted", "feedback", "liaison", "result"),
    _m(OUTBOUND, "transmitted", "supplement", "liaison", "missing"),
    _m(OUTBOUND, "feedback", "archived", "clerk handler"),
    _m(INBOUND, "received", "distributed", "liaison", "department"),
    _m(INBOUND, "received", "rejected", "liaison", "reason"),
    _m(INBOUND, "distributed", "processing", "handler liaison"),
    _m(INBOUND, "processing", "supplement", "handler", "missing"),
    _m(INBOUND, "processing", "done", "handler", "result"),
    _m(INBOUND, "processing", "rejected", "handler", "reason"),
    _m(INBOUND, "supplement", "processing", "handler liaison"),
    _m(INBOUND, "done", "fed_back", "liaison"),
)

_BY_KEY = {(m.direction, m.source, m.target): m for m in MOVES}


def label(direction: str, state: str) -> str:
    return STATE_LABELS[direction][state]


def find_move(direction: str, source: str, target: str) -> Move | None:
    return _BY_KEY.get((direction, source, target))


def allowed_targets(direction: str, source: str, role: str) -> list[str]:
    """Targets the role may move a card to from source, in board order."""
    return [
        t
        for t in COLUMNS[direction]
        if (m := _BY_KEY.get((direction, source, t))) is not None and role in m.roles
    ]


def is_open(direction: str, state: str) -> bool:
    return state not in FINAL[direction]


def clock_running(direction: str, state: str) -> bool:
    """Whether our deadline applies to a case in this state (not paused, not passed on)."""
    return state in CLOCK_STATES[direction]


# --- what the boards add around the moves ---------------------------------------------------

# The roles that move cards (the others read only) and their names in refusal messages.
MOVER_NAMES = {"clerk": "窗口经办", "liaison": "联络人", "handler": "管理部经办"}

# What a move into a column asks for first, as the board's inline form names it.
REQUIREMENT_LABELS = {
    "reason": "退回原因",
    "missing": "需补正的材料（一次性告知）",
    "result": "办理结果",
    "department": "分发至管理部",
}

# Paper materials are mailed by the liaison; the tracking number can be recorded here.
MAIL_STATES = {OUTBOUND: ("transmitted", "feedback"), INBOUND: ("done", "fed_back")}
MAIL_ROLES = frozenset({"liaison"})

# Inbound cases a handler can take (领取) or the liaison can assign to a handler.
ASSIGNABLE_STATES = {INBOUND: ("distributed", "processing", "supplement")}


def next_columns(direction: str, source: str) -> list[str]:
    """Every column a card may go to from source, whoever moves it, in board order."""
    return [t for t in COLUMNS[direction] if (direction, source, t) in _BY_KEY]


def refusal(direction: str, source: str, target: str, role: str) -> str | None:
    """Why the table refuses this move for this role (Chinese, for the user), or None."""
    labels = STATE_LABELS[direction]
    if target not in labels:
        return "没有这一列"
    if source == target:
        return f"办件已在“{labels[target]}”"
    move = find_move(direction, source, target)
    if move is None:
        options = "、".join(labels[t] for t in next_columns(direction, source))
        reason = f"不能从“{labels[source]}”直接移至“{labels[target]}”"
        return f"{reason}（可移至：{options}）" if options else f"{reason}：该办件已结束"
    if role not in move.roles:
        who = "或".join(MOVER_NAMES.get(r, r) for r in sorted(move.roles))
        return f"从“{labels[source]}”移至“{labels[target]}”须由{who}操作"
    return None


def resumed_deadline(
    deadline: date, paused_on: date, resumed_on: date, overrides: Overrides = None
) -> tuple[date, int]:
    """The deadline after a stay in 待补正, and the working days the stay took.

    The pause covers the working days after ``paused_on`` up to and including ``resumed_on``
    (``workdays.paused_deadline``'s convention). A pause that began before the deadline pushes
    it back by exactly those days; one that began after the deadline had passed changes nothing.
    """
    days = workdays_between(paused_on, resumed_on, overrides) if resumed_on > paused_on else 0
    if days and paused_on < deadline:
        return add_workdays(deadline, days, overrides), days
    return deadline, days
