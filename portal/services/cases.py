"""Proxy cases on the kanban boards (DESIGN.md sections 4 and 5).

Who sees which cases, the moves between columns (checked against ``rules.casestates`` on every
request, however it arrives), assignment, comments, paper mailing, the working-day deadlines
with the 待补正 pauses, the board read model with its filters, and the cheap version tokens the
polling board compares. Every change is one transaction with a CaseEvent and an audit row.

Two kinds of counter on a case: ``version`` changes with every move and assignment (a stale
version is a conflict: someone else acted first); ``updated_at`` changes with anything a card
shows (it feeds the polling tokens).
"""

from __future__ import annotations

import hashlib
import importlib
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import NamedTuple

from peewee import JOIN, SQL, fn

from portal import items
from portal.db import (
    Prepared,
    PreparedInsert,
    PreparedUpdate,
    Shapes,
    db,
    is_postgres,
    locked,
    write_tx,
)
from portal.fragments import FragmentCache
from portal.models import (
    Attachment,
    CaseComment,
    CaseEvent,
    Center,
    Department,
    Depositor,
    ProxyCase,
    Setting,
    StaffUser,
    utcnow,
)
from portal.rules import casestates as cs
from portal.rules.casestates import INBOUND, OUTBOUND, PAUSED
from portal.rules.ids import is_valid_resident_id, mask_bank_card, mask_phone, mask_resident_id
from portal.rules.workdays import deadline_is_estimated, workdays_between, workdays_left
from portal.services import audit

BOARD_ROLES = ("clerk", "liaison", "handler", "auditor")
MOVER_ROLES = ("clerk", "liaison", "handler")
PAGE = 6  # cards a column shows first (issue 10: a whole board page stays under 60 KB)
MORE = 30  # cards each "加载更多" adds
MAX_SHOWN = 400
DIRECTION_LABELS = {OUTBOUND: "外地业务看板", INBOUND: "本地业务看板"}
DIRECTION_HINTS = {
    OUTBOUND: "他中心缴存职工在本中心窗口申请，本中心代收代办",
    INBOUND: "本中心缴存职工在外地申请，由本中心办理（两地联办）",
}
OUTCOMES = ("办结", "不予办理")
MAX_TEXT = 500
MAX_COMMENT = 1000
TRACKING_NO = re.compile(r"^[A-Z0-9-]{6,40}$")
WIP_KEY = "wip:{direction}:{state}"


class Refused(Exception):
    """A board action the rules or the user's role do not allow; ``message`` says why."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class Conflict(Refused):
    """Someone else changed the case first; ``case`` is the fresh row."""

    def __init__(self, message: str, case: ProxyCase):
        super().__init__(message)
        self.case = case


class NotFound(Exception):
    """No such case, or none this user may see (the view answers 404)."""


def _actor(user: StaffUser) -> str:
    return f"staff:{user.username}"


# --- who sees what ------------------------------------------------------------------------


def board_directions(user: StaffUser) -> tuple[str, ...]:
    """The boards this user may open: clerks only the outbound one; admins and officials none."""
    if user.role in ("liaison", "auditor"):
        return (OUTBOUND, INBOUND)
    if user.role == "handler" and user.department_id:
        return (OUTBOUND, INBOUND)
    if user.role == "clerk" and user.department_id:
        return (OUTBOUND,)
    return ()


def visibility(user: StaffUser) -> tuple[str, int | None]:
    """Which cases this user may see, as a kind and a department (see :func:`visible_clause`)."""
    if user.role in ("liaison", "auditor"):
        return "all", None
    if user.role == "handler" and user.department_id:
        return "department", user.department_id
    if user.role == "clerk" and user.department_id:
        return "outbound", user.department_id
    return "none", None


def visible_by_kind(kind: str, department):
    """The WHERE clause of a visibility kind; ``department`` is a value or a prepared Slot."""
    if kind == "all":
        return ProxyCase.id.is_null(False)
    if kind == "department":
        return ProxyCase.department == department
    if kind == "outbound":
        return (ProxyCase.direction == OUTBOUND) & (ProxyCase.department == department)
    return ProxyCase.id.is_null()


def visible_clause(user: StaffUser):
    """WHERE clause of the cases this user may see.

    The liaison and the auditor see every case; a handler the inbound cases of their department
    and the outbound cases accepted at their department's window; a clerk their department's
    outbound cases; anyone else none.
    """
    return visible_by_kind(*visibility(user))


_BY_ID = Prepared(lambda pk: ProxyCase.select().where(ProxyCase.id == pk).limit(1), 1)
_ADD_EVENT = PreparedInsert(CaseEvent)  # a move writes one event (issue 10: built once)
_VERSIONED_UPDATE = PreparedUpdate(ProxyCase, "id", "version")  # a move's write (built once)


# One case as this user may see it, plain or locked for a change (issue 10: built once per
# visibility kind; a move reads its case twice).
def _visible_by_id(kind: str, pk, dept):
    return ProxyCase.select().where((ProxyCase.id == pk) & visible_by_kind(kind, dept))


_VISIBLE_BY_ID = Shapes(_visible_by_id, 2)
_LOCKED_BY_ID = Shapes(lambda kind, pk, dept: locked(_visible_by_id(kind, pk, dept)), 2)


def get_case(user: StaffUser, case_id: int) -> ProxyCase:
    kind, dept = visibility(user)
    case = _VISIBLE_BY_ID[kind].first(case_id, dept)
    if case is None:
        raise NotFound
    return case


def _locked_case(user: StaffUser, case_id: int) -> ProxyCase:
    kind, dept = visibility(user)
    case = _LOCKED_BY_ID[kind].first(case_id, dept)
    if case is None:
        raise NotFound
    return case


def _label(case: ProxyCase) -> str:
    return cs.label(case.direction, case.state)


def _check_version(case: ProxyCase, version: int | None) -> None:
    if version is not None and case.version == version:
        return
    last = (
        CaseEvent.select(CaseEvent.actor_label)
        .where(CaseEvent.case == case.id)
        .order_by(CaseEvent.id.desc())
        .first()
    )
    who = last.actor_label if last and last.actor_label else "其他工作人员"
    raise Conflict(
        f"办件 {case.case_no} 刚刚已被{who}更新，现处于“{_label(case)}”。请查看最新状态后再操作。",
        case,
    )


# --- deadlines ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Due:
    """A card's deadline as the board shows it.

    level: ``ok`` (days left), ``last`` (the deadline is today: amber), ``overdue`` (red),
    ``paused`` (in 待补正: the clock stands), ``off`` (our clock no longer runs).
    """

    deadline: date
    level: str
    left: int | None
    estimated: bool
    paused_days: int

    @property
    def overdue_days(self) -> int:
        return -self.left if self.left is not None and self.left < 0 else 0


def due_of(case: ProxyCase | CardRow, today: date, overrides=None) -> Due:
    current = 0
    if case.state == PAUSED and case.paused_since and today > case.paused_since:
        current = workdays_between(case.paused_since, today, overrides)
    paused = (case.paused_workdays or 0) + current
    estimated = deadline_is_estimated(case.clock_start, case.deadline)
    if case.state == PAUSED:
        return Due(case.deadline, "paused", None, estimated, paused)
    if not cs.clock_running(case.direction, case.state):
        return Due(case.deadline, "off", None, estimated, paused)
    left = workdays_left(today, case.deadline, overrides)
    level = "overdue" if left < 0 else ("last" if left == 0 else "ok")
    return Due(case.deadline, level, left, estimated, paused)


# --- filters ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    item: str = ""
    department: int | None = None
    assignee: str = ""  # "" all / "me" / "none" (unassigned) / a staff id
    overdue: bool = False
    q: str = ""  # case number, receipt number or applicant name

    @property
    def active(self) -> bool:
        return bool(self.item or self.department or self.assignee or self.overdue or self.q)

    def args(self) -> dict[str, str]:
        """The filters as URL query arguments (the board's filter form uses the same names)."""
        out = {}
        if self.item:
            out["item"] = self.item
        if self.department:
            out["dept"] = str(self.department)
        if self.assignee:
            out["assignee"] = self.assignee
        if self.overdue:
            out["overdue"] = "1"
        if self.q:
            out["q"] = self.q
        return out


def _board_clause(user: StaffUser, direction: str, filters: Filters, today: date):
    cond = visible_clause(user) & (ProxyCase.direction == direction)
    if filters.item:
        cond &= ProxyCase.item == filters.item
    if filters.department:
        cond &= ProxyCase.department == filters.department
    if filters.assignee == "me":
        cond &= ProxyCase.assignee == user.id
    elif filters.assignee == "none":
        cond &= ProxyCase.assignee.is_null()
    elif filters.assignee.isdigit():
        cond &= ProxyCase.assignee == int(filters.assignee)
    if filters.overdue:
        cond &= ProxyCase.state.in_(cs.CLOCK_STATES[direction]) & (ProxyCase.deadline < today)
    if filters.q:
        cond &= _search_clause(filters.q)
    return cond


# Is this a whole case or receipt number? Both are unique, so two index lookups tell.
_NUMBERED = Prepared(
    lambda number: (
        ProxyCase.select(ProxyCase.id)
        .where((ProxyCase.case_no == number) | (ProxyCase.receipt_no == number))
        .limit(1)
    ),
    1,
)


def _search_clause(q: str):
    """The board's search: a whole case or receipt number (a scanned receipt, a number copied
    from a message) finds that case by its unique index; anything else is a part of a case
    number, a receipt number or a name, which reads every case of a column, the closed ones of
    past years included (issue 10: 60 ms on the large dataset against 6 for a number)."""
    if _NUMBERED.first(q) is not None:
        return (ProxyCase.case_no == q) | (ProxyCase.receipt_no == q)
    return (
        ProxyCase.case_no.contains(q)
        | ProxyCase.receipt_no.contains(q)
        | ProxyCase.applicant_name.contains(q)
    )


def filter_choices(
    user: StaffUser, direction: str, *, version: str | None = None
) -> dict[str, list[tuple[str, str]]]:
    """The options of the filter form for this user and board. ``version``: the boards' data
    version the request read (``board_version``); given, the options come from this worker's
    copy while it is the same (it covers departments and handlers)."""
    if version is None:
        return _filter_choices(user, direction)
    found = _choices.get((version, user.role, direction), lambda: _filter_choices(user, direction))
    return {name: list(options) for name, options in found.items()}


def _filter_choices(user: StaffUser, direction: str) -> dict[str, list[tuple[str, str]]]:
    codes = [i.code for i in (items.ITEMS if direction == OUTBOUND else items.proxy_items())]
    choices = {
        "item": [(code, items.get(code).short) for code in codes],
        "department": [],
        "assignee": [("me", "我的办件"), ("none", "未指派")] if direction == INBOUND else [],
    }
    if user.role in ("liaison", "auditor"):
        choices["department"] = [
            (str(d.id), d.name) for d in Department.select().order_by(Department.code)
        ]
        if direction == INBOUND:
            handlers = StaffUser.select().where((StaffUser.role == "handler") & StaffUser.active)
            choices["assignee"] = [("none", "未指派")] + [
                (str(h.id), h.name) for h in handlers.order_by(StaffUser.id)
            ]
    return choices


# --- the board read model -----------------------------------------------------------------


@dataclass(frozen=True)
class Card:
    """What a board shows of a case for one user today: a value (issue 10: its rendered HTML
    is kept under it, ``board.card_html``), so every field the card shows is here."""

    id: int
    case_no: str
    receipt_no: str
    item: str
    direction: str
    state: str
    applicant_name: str
    center_name: str
    department_name: str
    assignee_id: int | None
    assignee_name: str
    tracking_no: str
    version: int
    due: Due
    targets: tuple[str, ...] = ()  # where this user may move it now
    can_take: bool = False
    delivery: str = ""  # platform exchange (issue 8): pending (待送达) / failed / acked
    peer_deadline: date | None = None  # the peer's deadline, from its acknowledgement

    @property
    def movable(self) -> bool:
        return bool(self.targets)


@dataclass(frozen=True)
class Column:
    """A board column for one user today: a value (issue 10: its HTML is kept under it,
    ``board.column_html``), the cards included."""

    direction: str
    state: str
    label: str
    count: int  # cards under the filters
    total: int  # cards this user sees in the column, without filters (the WIP count)
    limit: int | None
    token: str
    cards: tuple[Card, ...]
    final: bool

    @property
    def over_limit(self) -> bool:
        return self.limit is not None and self.total > self.limit

    @property
    def shown(self) -> int:
        return len(self.cards)

    @property
    def remaining(self) -> int:
        return max(0, self.count - len(self.cards))

    @property
    def capped(self) -> bool:
        """A finished column with more cards than it counts (see COUNT_CAP)."""
        return _capped(self.count, self.final)

    @property
    def count_text(self) -> str:
        return f"{COUNT_CAP}+" if self.capped else str(self.count)

    @property
    def total_text(self) -> str:
        return f"{COUNT_CAP}+" if _capped(self.total, self.final) else str(self.total)

    @property
    def remaining_text(self) -> str:
        return remaining_text(self.count, len(self.cards), self.final)


@dataclass(frozen=True)
class Board:
    direction: str
    label: str
    hint: str
    filters: Filters
    columns: tuple[Column, ...]
    readonly: bool

    def column(self, state: str) -> Column | None:
        return next((c for c in self.columns if c.state == state), None)


Assignee = StaffUser.alias()


# What a card shows and its moves need; not the application, the checklist or the sealed ID
# number (decrypted for every row otherwise). Issue 10: the board stays cheap at any size.
class CardRow(NamedTuple):
    """A case as a card reads it (``_card_query``'s columns, in order): read-only, so no
    model instance per row (issue 10). The select is made from these names."""

    id: int
    case_no: str
    receipt_no: str
    item: str
    direction: str
    state: str
    applicant_name: str
    department_id: int | None
    assignee_id: int | None
    clock_start: date
    deadline: date
    paused_since: date | None
    paused_workdays: int
    tracking_no: str | None
    delivery: str | None
    peer_deadline: date | None
    updated_at: datetime
    version: int
    center_name: str
    department_name: str | None
    assignee_name: str | None


_CARD_FIELDS = (
    # the case's own columns (``ProxyCase.department_id`` is the foreign key itself) ...
    *(getattr(ProxyCase, name) for name in CardRow._fields[:18]),
    # ... then the names joined from other tables
    Center.name.alias("center_name"),
    Department.name.alias("department_name"),
    Assignee.name.alias("assignee_name"),
)


def _card_query(cond):
    """The cases under ``cond`` as tuples in ``CardRow``'s order (see ``_card_rows``)."""
    return (
        ProxyCase.select(*_CARD_FIELDS)
        .join(Center, on=(ProxyCase.center == Center.id))
        .switch(ProxyCase)
        .join(Department, JOIN.LEFT_OUTER, on=(ProxyCase.department == Department.id))
        .switch(ProxyCase)
        .join(Assignee, JOIN.LEFT_OUTER, on=(ProxyCase.assignee == Assignee.id))
        .where(cond)
        .tuples()
    )


def _card_rows(rows) -> list[CardRow]:
    return [CardRow._make(row) for row in rows]


def _order(direction: str, state: str):
    """Most urgent first; finished columns show the latest first."""
    if state in cs.FINAL[direction]:
        return (ProxyCase.updated_at.desc(), ProxyCase.id.desc())
    return (ProxyCase.deadline, ProxyCase.id)


def _extra_refusal(user: StaffUser, case: ProxyCase | CardRow, move: cs.Move) -> str | None:
    """Refusals beyond the table: whose inbound case it is, and who does it belong to."""
    if case.direction == INBOUND and user.role == "handler":
        if case.assignee_id and case.assignee_id != user.id:
            return "该办件已指派给其他经办人，只有其经办人可以移动"
    if (
        move.source == "distributed"
        and move.target == "processing"
        and user.role != "handler"
        and not case.assignee_id
    ):
        return "请先指派经办人（或由管理部经办人领取）再转入办理中"
    return None


def move_targets(user: StaffUser, case: ProxyCase | CardRow) -> list[str]:
    """The columns this user may move this case to now, in board order."""
    if user.role not in MOVER_ROLES:
        return []
    out = []
    for target in cs.allowed_targets(case.direction, case.state, user.role):
        move = cs.find_move(case.direction, case.state, target)
        if _extra_refusal(user, case, move) is None:
            out.append(target)
    return out


def _can_take(user: StaffUser, case: ProxyCase | CardRow) -> bool:
    return (
        user.role == "handler"
        and case.direction == INBOUND
        and case.state in cs.ASSIGNABLE_STATES[INBOUND]
        and case.assignee_id is None
        and case.department_id == user.department_id
    )


def _card(user: StaffUser, row: CardRow, today: date, overrides) -> Card:
    return Card(
        id=row.id,
        case_no=row.case_no,
        receipt_no=row.receipt_no,
        item=row.item,
        direction=row.direction,
        state=row.state,
        applicant_name=row.applicant_name,
        center_name=row.center_name or "",
        department_name=row.department_name or "",
        assignee_id=row.assignee_id,
        assignee_name=row.assignee_name or "",
        tracking_no=row.tracking_no or "",
        version=row.version,
        due=due_of(row, today, overrides),
        targets=tuple(move_targets(user, row)),
        can_take=_can_take(user, row),
        delivery=row.delivery or "",
        peer_deadline=row.peer_deadline,
    )


def card(user: StaffUser, case_id: int, today: date, overrides=None) -> Card:
    row = _card_query((ProxyCase.id == case_id) & visible_clause(user)).first()
    if row is None:
        raise NotFound
    return _card(user, CardRow._make(row), today, overrides)


# A finished column (归档, 已反馈, 退回) counts its cards up to this many and shows "999+"
# beyond: its count would otherwise grow with every case ever closed (issue 10: a board's cost
# must not grow with the years of history). Open columns count exactly.
COUNT_CAP = 999


def _aggregate_query(cond):
    """Each column's number of cards under ``cond``, by a GROUP BY over the index."""
    return (
        ProxyCase.select(ProxyCase.state, fn.COUNT(ProxyCase.id))
        .where(cond)
        .group_by(ProxyCase.state)
        .tuples()
    )


def _capped_count_query(cond, cap):
    """How many cases ``cond`` gives, counting no further than ``cap``."""
    inner = ProxyCase.select(ProxyCase.id).where(cond).limit(cap)
    return ProxyCase.select(fn.COUNT(SQL("*"))).from_(inner.alias("capped"))


def _aggregate_rows(rows) -> dict[str, int]:
    return {s: int(n) for s, n in rows}


def _split(direction: str, states) -> tuple[tuple[str, ...], tuple[str, ...]]:
    final = cs.FINAL[direction]
    return tuple(s for s in states if s not in final), tuple(s for s in states if s in final)


def _column_counts(direction: str, states, open_counts, final_count) -> dict[str, int]:
    """The counts of ``states``: the open ones exactly, by ``open_counts(open_states)`` (rows
    of state and count), each finished one capped, by ``final_count(state)``."""
    open_states, final_states = _split(direction, states)
    counts = _aggregate_rows(open_counts(open_states)) if open_states else {}
    for state in final_states:
        counts[state] = int(final_count(state) or 0)
    return counts


def _counts(cond, direction: str, states) -> dict[str, int]:
    """The counts of ``states`` under a filtered board's ``cond``."""
    return _column_counts(
        direction,
        states,
        lambda open_states: _aggregate_query(cond & ProxyCase.state.in_(list(open_states))),
        lambda state: _capped_count_query(
            cond & (ProxyCase.state == state), COUNT_CAP + 1
        ).scalar(),
    )


# The unfiltered board's statements (issue 10: most boards are shown without filters, and a
# move answers with its columns; peewee's SQL building was half of a move's time). A shape is
# (visibility kind, direction, the open columns asked for) for the open columns' counts, and
# (visibility kind, direction, state) for a finished column's count or a column's cards; the
# values are the department and the count cap or card limit.
def _unfiltered(kind: str, dept, direction: str, states: tuple[str, ...] | None):
    cond = visible_by_kind(kind, dept) & (ProxyCase.direction == direction)
    if states is not None:
        cond &= ProxyCase.state.in_(list(states))
    return cond


_OPEN_COUNTS = Shapes(
    lambda shape, dept: _aggregate_query(_unfiltered(shape[0], dept, shape[1], shape[2])), 1
)
_FINAL_COUNT = Shapes(
    lambda shape, dept, cap: _capped_count_query(
        _unfiltered(shape[0], dept, shape[1], (shape[2],)), cap
    ),
    2,
)


def _unfiltered_counts(kind: str, dept, direction: str, states) -> dict[str, int]:
    """The counts of ``states`` on the unfiltered board, by prepared statements."""
    return _column_counts(
        direction,
        states,
        lambda open_states: _OPEN_COUNTS[kind, direction, open_states].all(dept),
        lambda state: _FINAL_COUNT[kind, direction, state].scalar(dept, COUNT_CAP + 1),
    )


_BOARD_CARDS = Shapes(
    lambda shape, dept, n: (
        _card_query(_unfiltered(shape[0], dept, shape[1], None) & (ProxyCase.state == shape[2]))
        .order_by(*_order(shape[1], shape[2]))
        .limit(n)
    ),
    2,
)


def column_counts(user: StaffUser, direction: str, states) -> dict[str, int]:
    """How many cases this user sees in each of these columns of a board, unfiltered (a
    finished column counted up to ``COUNT_CAP`` + 1), by the board's prepared statements."""
    kind, dept = visibility(user)
    return _unfiltered_counts(kind, dept, direction, tuple(states))


def column_cards(user: StaffUser, direction: str, state: str, n: int) -> list[CardRow]:
    """The first ``n`` cases of a board column as this user sees it, unfiltered, in board
    order (an open column's most urgent first), by the board's prepared statements."""
    kind, dept = visibility(user)
    return _card_rows(_BOARD_CARDS[kind, direction, state].all(dept, n))


# What a column's token is made of: the shown cards' ids, versions and last changes, in board
# order, read without the rest of the cards (polling; the board has them at hand).
def _shown_query(cond, direction: str, state: str, n):
    return (
        ProxyCase.select(ProxyCase.id, ProxyCase.version, ProxyCase.updated_at)
        .where(cond & (ProxyCase.state == state))
        .order_by(*_order(direction, state))
        .limit(n)
        .tuples()
    )


_SHOWN_ROWS = Shapes(
    lambda shape, dept, n: _shown_query(
        _unfiltered(shape[0], dept, shape[1], None), shape[1], shape[2], n
    ),
    2,
)


def _token(today: date, shown: int, count: int, cards) -> str:
    """A column's token: changes when its count or any card it shows (which, in what order,
    which version) changes, or a day passes (the cards' days left). ``cards`` are the shown
    cards' (id, version, updated_at)."""
    raw = f"{today.isoformat()}|{shown}|{count}|" + ";".join(f"{i},{v},{u}" for i, v, u in cards)
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def _wip_keys(direction: str) -> dict[str, str]:
    return {WIP_KEY.format(direction=direction, state=s): s for s in cs.COLUMNS[direction]}


_WIP_ROWS = Shapes(
    lambda direction, today: (
        Setting.select(Setting.key, Setting.value)
        .where(Setting.key.in_(list(_wip_keys(direction))) & (Setting.effective_from <= today))
        .order_by(Setting.key, Setting.effective_from.desc())
    ),
    1,
)


def wip_limits(direction: str, today: date) -> dict[str, int]:
    """Column limits (WIP) the admin set for a board, in effect today."""
    keys = _wip_keys(direction)
    rows = _WIP_ROWS[direction].all(today)
    out: dict[str, int] = {}
    seen = set()
    for row in rows:
        if row.key in seen:
            continue
        seen.add(row.key)
        if row.value.isdigit() and int(row.value) > 0:
            out[keys[row.key]] = int(row.value)
    return out


def _shown(shown: dict[str, int] | None, state: str) -> int:
    n = (shown or {}).get(state, PAGE)
    return max(PAGE, min(MAX_SHOWN, n))


def board_tokens(
    user: StaffUser,
    direction: str,
    filters: Filters,
    today: date,
    shown: dict[str, int] | None = None,
) -> dict[str, str]:
    """One cheap token per column (see :func:`_token`): the counts, and the ids and versions
    of the cards each column shows; no card is rendered."""
    kind, dept = visibility(user)
    cond = _board_clause(user, direction, filters, today) if filters.active else None
    columns = cs.COLUMNS[direction]
    if cond is not None:
        counts = _counts(cond, direction, columns)
    else:
        counts = _unfiltered_counts(kind, dept, direction, columns)
    tokens = {}
    for state in columns:
        n = _shown(shown, state)
        if cond is not None:
            rows = _shown_query(cond, direction, state, n)
        else:
            rows = _SHOWN_ROWS[kind, direction, state].all(dept, n)
        tokens[state] = _token(today, n, counts.get(state, 0), rows)
    return tokens


# --- boards kept per worker (issue 10) ----------------------------------------------------
# An unfiltered board is a function of the data it reads (the cases, the names on their
# cards, the column limits), the user (what they see, which moves they may make), the day,
# the calendar's overrides and how many cards each column shows. The database keeps a token
# that changes with every change to that data (``board_version``, migration 0015, by
# triggers), so a worker keeps the boards it built under the token and the rest: shown again
# before anything changed (a reload, a second tab, a colleague's board, every poll), a board is
# one query instead of about twelve and no card is built again.

_VERSION_SQL = {
    False: 'SELECT "token", 1 FROM "board_version" WHERE "id" = 1',
    # a PostgreSQL transaction that has written sees the old token until it commits (the
    # triggers run then): it gets no token, so its boards are built and not kept
    True: (
        'SELECT "token", pg_current_xact_id_if_assigned() IS NULL '
        'FROM "board_version" WHERE "id" = 1'
    ),
}


def board_version() -> str | None:
    """The boards' data version now, or None where it cannot be trusted (see above)."""
    cursor = db.execute_sql(_VERSION_SQL[is_postgres()])
    try:
        row = cursor.fetchone()
    finally:
        cursor.close()
    if row is None or not row[1]:
        return None
    return row[0]


_boards: FragmentCache[Board] = FragmentCache(256)
_choices: FragmentCache[dict] = FragmentCache(64)


def _board_key(version, user: StaffUser, direction, today, overrides, shown, only) -> tuple:
    return (
        version,
        user.role,
        user.id,
        user.department_id,
        direction,
        today,
        tuple(sorted(overrides.items())) if overrides else (),
        tuple(_shown(shown, state) for state in cs.COLUMNS[direction]),
        frozenset(only) if only is not None else None,
    )


def board(
    user: StaffUser,
    direction: str,
    filters: Filters,
    today: date,
    overrides=None,
    shown: dict[str, int] | None = None,
    only: set[str] | None = None,
    *,
    version: str | None = None,
) -> Board:
    """The board as this user sees it under the filters; ``only`` limits which columns get
    their cards (the others are left out). ``version``: the boards' data version the request
    read (``board_version``, once per request); given, an unfiltered board may come from, and
    go to, this worker's boards kept under it (see above)."""
    if direction not in board_directions(user):
        raise NotFound
    if version is None or filters.active:
        return _board(user, direction, filters, today, overrides, shown, only)
    return _boards.get(
        _board_key(version, user, direction, today, overrides, shown, only),
        lambda: _board(user, direction, filters, today, overrides, shown, only),
    )


def _board(user, direction, filters, today, overrides, shown, only) -> Board:
    """The board read and built (``board`` without the kept boards)."""
    kind, dept = visibility(user)
    # a move's answer: its columns only
    states = tuple(s for s in cs.COLUMNS[direction] if only is None or s in only)
    totals = _unfiltered_counts(kind, dept, direction, states)
    if filters.active:
        cond = _board_clause(user, direction, filters, today)
        aggregates = _counts(cond, direction, states)
    else:
        aggregates = totals
    limits = wip_limits(direction, today)
    columns = []
    for state in cs.COLUMNS[direction]:
        if only is not None and state not in only:
            continue
        n = _shown(shown, state)
        if filters.active:
            rows = (
                _card_query(cond & (ProxyCase.state == state))
                .order_by(*_order(direction, state))
                .limit(n)
            )
        else:
            rows = _BOARD_CARDS[kind, direction, state].all(dept, n)
        rows = _card_rows(rows)
        cards = [_card(user, row, today, overrides) for row in rows]
        count = aggregates.get(state, 0)
        columns.append(
            Column(
                direction=direction,
                state=state,
                label=cs.label(direction, state),
                count=count,
                total=totals.get(state, 0),
                limit=limits.get(state),
                token=_token(today, n, count, ((r.id, r.version, r.updated_at) for r in rows)),
                cards=tuple(cards),
                final=state in cs.FINAL[direction],
            )
        )
    return Board(
        direction=direction,
        label=DIRECTION_LABELS[direction],
        hint=DIRECTION_HINTS[direction],
        filters=filters,
        columns=tuple(columns),
        readonly=user.role not in MOVER_ROLES,
    )


def changed_board(
    user: StaffUser,
    direction: str,
    filters: Filters,
    today: date,
    client_tokens: dict[str, str],
    overrides=None,
    shown: dict[str, int] | None = None,
    *,
    version: str | None = None,
) -> Board | None:
    """None when every column's token matches what the polling client has; else the board.
    ``version`` (as for ``board``): an unfiltered board is taken from this worker's boards
    when the data has not changed (its columns carry their tokens), else built and kept."""
    if direction not in board_directions(user):
        raise NotFound
    if version is not None and not filters.active:
        view = board(user, direction, filters, today, overrides, shown, version=version)
        if all(client_tokens.get(col.state) == col.token for col in view.columns):
            return None
        return view
    tokens = board_tokens(user, direction, filters, today, shown)
    if all(client_tokens.get(s) == t for s, t in tokens.items()):
        return None
    return board(user, direction, filters, today, overrides, shown)


def column_ids(
    user: StaffUser,
    direction: str,
    filters: Filters,
    today: date,
    shown: dict[str, int] | None,
    states: set[str],
) -> dict[str, list[int]]:
    """The ids of the cards each of these columns shows, in board order (issue 10: what a
    client in step with the board has on screen, so a move can answer with the difference)."""
    cond = _board_clause(user, direction, filters, today)
    out = {}
    for state in states:
        rows = (
            ProxyCase.select(ProxyCase.id)
            .where(cond & (ProxyCase.state == state))
            .order_by(*_order(direction, state))
            .limit(_shown(shown, state))
        )
        out[state] = [row_id for (row_id,) in rows.tuples()]
    return out


def _capped(count: int, final: bool) -> bool:
    return final and count > COUNT_CAP


def remaining_text(count: int, shown: int, final: bool) -> str:
    """How many cards a column has beyond the ``shown`` ones, as its 加载更多 says it (a
    finished column's count is capped)."""
    if _capped(count, final):
        return f"{max(0, COUNT_CAP - shown)}+"
    return str(max(0, count - shown))


def more_cards(
    user: StaffUser,
    direction: str,
    state: str,
    filters: Filters,
    today: date,
    offset: int,
    overrides=None,
) -> tuple[list[Card], int]:
    """The next page of a column after ``offset`` cards, and the column's count (a finished
    column's counted up to ``COUNT_CAP + 1``)."""
    if direction not in board_directions(user) or state not in cs.COLUMNS[direction]:
        raise NotFound
    cond = _board_clause(user, direction, filters, today) & (ProxyCase.state == state)
    count = _counts(cond, direction, (state,)).get(state, 0)
    offset = max(0, min(offset, MAX_SHOWN))
    rows = _card_query(cond).order_by(*_order(direction, state)).offset(offset).limit(MORE)
    return [_card(user, row, today, overrides) for row in _card_rows(rows)], count


# --- moves --------------------------------------------------------------------------------


def check_move(user: StaffUser, case: ProxyCase, target: str) -> cs.Move:
    """The move, or Refused with the reason: the table, the role, the assignee."""
    if user.role not in MOVER_ROLES:
        raise Refused("您只能查看办件，不能移动")
    reason = cs.refusal(case.direction, case.state, target, user.role)
    if reason:
        raise Refused(reason)
    move = cs.find_move(case.direction, case.state, target)
    extra = _extra_refusal(user, case, move)
    if extra:
        raise Refused(extra)
    return move


def plan_move(
    user: StaffUser,
    case_id: int,
    target: str,
    version: int | None,
    case: ProxyCase | None = None,
) -> tuple[ProxyCase, cs.Move]:
    """Read-only check before asking for a move's data: NotFound, Conflict or Refused.
    ``case``: the case as ``get_case`` just read it for this user (saves reading it again)."""
    if case is None or case.id != case_id:
        case = get_case(user, case_id)
    _check_version(case, version)
    return case, check_move(user, case, target)


def _requirement(move: cs.Move, data: dict) -> tuple[dict, dict]:
    """(case fields, event data) for what the move needs; Refused when it is missing."""
    kind = move.requires
    if kind is None:
        return {}, {}
    if kind == "reason":
        reason = str(data.get("reason") or "").strip()
        if not reason:
            raise Refused("请填写退回原因")
        if len(reason) > MAX_TEXT:
            raise Refused(f"退回原因不超过 {MAX_TEXT} 字")
        return {"rejection_reason": reason}, {"reason": reason}
    if kind == "missing":
        missing: list[str] = []
        for name in data.get("missing") or []:
            name = str(name).strip()
            if name and name not in missing:
                missing.append(name[:100])
        if not missing:
            raise Refused("请列出需补正的全部材料")
        return {"missing_materials": missing}, {"missing": missing}
    if kind == "result":
        outcome = str(data.get("outcome") or "")
        note = str(data.get("note") or "").strip()
        if outcome not in OUTCOMES:
            raise Refused("请选择办理结果")
        if not note or len(note) > MAX_TEXT:
            raise Refused(f"请填写结果说明（不超过 {MAX_TEXT} 字）")
        result = {"outcome": outcome, "note": note}
        return {"result": result}, {"result": result}
    if kind == "department":
        department = Department.get_or_none(Department.id == data.get("department"))
        if department is None:
            raise Refused("请选择要分发的管理部")
        return {"department": department.id}, {"department": department.name}
    raise ValueError(f"unknown requirement {kind!r}")


def _export_package(case: ProxyCase, actor: str) -> str | None:
    """Export the case's platform package when the file adapter is installed.

    ``portal.platform.files.export_case`` belongs to the platform exchange; until it exists
    the move still happens and no package is written.
    """
    try:
        files = importlib.import_module("portal.platform.files")
    except ModuleNotFoundError as exc:
        if exc.name in ("portal.platform.files", "portal.platform"):
            return None
        raise
    export = getattr(files, "export_case", None)
    if export is None:
        return None
    refusal = getattr(files, "ExportRefused", None) or Refused
    send = _platform("send_case")  # issue 8: through the exchange (outbox or file) when installed
    try:
        if send is not None:
            return send(case, actor).storage_key
        return str(export(case, actor=actor))
    except refusal as exc:  # the adapter's own refusal: the move must not happen
        raise Refused(f"平台数据包未能导出：{exc}") from exc


def _platform(name: str):
    """A function of the platform exchange (``portal.platform.exchange``), None without it."""
    try:
        module = importlib.import_module("portal.platform.exchange")
    except ModuleNotFoundError as exc:
        if exc.name in ("portal.platform.exchange", "portal.platform"):
            return None
        raise
    return getattr(module, name, None)


def _tell_platform(
    case: ProxyCase, source: str, target: str, user: StaffUser, today: date
) -> str | None:
    """The message an inbound move sends to the accepting center (issue 8), in the move's
    transaction: 待补正 asks for materials, 退回 and 已反馈 feed back the result. Returns the
    message id, or None when nothing is sent (not a platform case, or no exchange)."""
    if case.direction != INBOUND:
        return None
    actor = _actor(user)
    try:
        if target == PAUSED and source == "processing":
            send = _platform("request_materials")
            message = send and send(case, list(case.missing_materials or []), actor)
        elif target == "rejected":
            send = _platform("send_result")
            message = send and send(
                case, actor, today, outcome="rejected", note=case.rejection_reason, user=user
            )
        elif target == "fed_back":
            send = _platform("send_result")
            message = send and send(case, actor, today, user=user)
        else:
            return None
    except Exception as exc:
        refusal = getattr(importlib.import_module("portal.platform.files"), "ExportRefused", None)
        if refusal is not None and isinstance(exc, refusal):
            raise Refused(f"平台报文未能发送：{exc}") from exc
        raise
    return message.message_id if message else None


def move_case(
    user: StaffUser,
    case_id: int,
    target: str,
    version: int | None,
    data: dict | None = None,
    *,
    today: date,
    overrides=None,
) -> ProxyCase:
    """Move a case to ``target``: one transaction, re-checked under the row lock."""
    data = data or {}
    with write_tx():
        case = _locked_case(user, case_id)
        _check_version(case, version)
        move = check_move(user, case, target)
        fields, event = _requirement(move, data)
        source = case.state
        if target == PAUSED:
            fields["paused_since"] = today
        if source == PAUSED and case.paused_since:
            deadline, days = cs.resumed_deadline(case.deadline, case.paused_since, today, overrides)
            fields.update(
                deadline=deadline,
                paused_since=None,
                paused_workdays=(case.paused_workdays or 0) + days,
            )
            event.update(paused_workdays=days)
            if deadline != case.deadline:
                event["deadline"] = deadline.isoformat()
        if move.target == "processing" and user.role == "handler" and not case.assignee_id:
            fields["assignee"] = user.id
            event["assignee"] = user.name
        fields["state"] = target
        _bump(case, case.version, **fields)  # under the lock: the guard cannot fail here
        case = _BY_ID.first(case.id)  # as stored (issue 10: the statement is built once)
        if case.direction == OUTBOUND and target == "transmitted":
            package = _export_package(case, _actor(user))
            if package:
                event["package"] = package
        message_id = _tell_platform(case, source, target, user, today)
        if message_id:
            event["message_id"] = message_id
        _ADD_EVENT.create(
            case=case,
            actor=user,
            actor_label=user.name,
            action="move",
            from_state=source,
            to_state=target,
            data=event,
        )
        audit.record(
            _actor(user),
            "case.move",
            "proxy_case",
            case.id,
            case_no=case.case_no,
            from_state=source,
            to_state=target,
            requires=move.requires or "",
        )
        from portal.services import notices  # issue 11: tell the applicant (inbox / SMS)

        notices.case_moved(case, source, target)
    return case


# --- assignment, mailing, comments --------------------------------------------------------


def assignable_handlers(case: ProxyCase) -> list[StaffUser]:
    if not case.department_id:
        return []
    return list(
        StaffUser.select()
        .where(
            (StaffUser.role == "handler")
            & StaffUser.active
            & (StaffUser.department == case.department_id)
        )
        .order_by(StaffUser.id)
    )


def _bump(case: ProxyCase, version: int, **fields) -> None:
    """Write ``fields`` and the next version, only if the case is still at ``version`` (the
    conditional update that makes a concurrent change lose)."""
    fields.update(version=case.version + 1, updated_at=utcnow())
    won = _VERSIONED_UPDATE.execute(fields, id=case.id, version=version)
    if won != 1:
        _check_version(ProxyCase.get_by_id(case.id), None)


def take_case(user: StaffUser, case_id: int, version: int | None) -> ProxyCase:
    """A handler takes (领取) an unassigned inbound case of their department."""
    if user.role != "handler":
        raise Refused("只有管理部经办人可以领取办件")
    with write_tx():
        case = _locked_case(user, case_id)
        _check_version(case, version)
        if case.direction != INBOUND or case.state not in cs.ASSIGNABLE_STATES[INBOUND]:
            raise Refused(f"“{_label(case)}”的办件不能领取")
        if case.assignee_id == user.id:
            raise Refused("您已领取该办件")
        if case.assignee_id:
            raise Refused(f"该办件已由{case.assignee.name}领取")
        _bump(case, case.version, assignee=user.id)
        CaseEvent.create(
            case=case,
            actor=user,
            actor_label=user.name,
            action="take",
            data={"assignee": user.name},
        )
        audit.record(_actor(user), "case.take", "proxy_case", case.id, case_no=case.case_no)
    return ProxyCase.get_by_id(case.id)


def assign_case(
    user: StaffUser, case_id: int, handler_id: int | None, version: int | None
) -> ProxyCase:
    """The liaison assigns an inbound case to a handler of the case's department."""
    if user.role != "liaison":
        raise Refused("只有联络人可以指派经办人")
    with write_tx():
        case = _locked_case(user, case_id)
        _check_version(case, version)
        if case.direction != INBOUND or case.state not in cs.ASSIGNABLE_STATES[INBOUND]:
            raise Refused(f"“{_label(case)}”的办件不能指派")
        handler = StaffUser.get_or_none(
            (StaffUser.id == handler_id)
            & (StaffUser.role == "handler")
            & StaffUser.active
            & (StaffUser.department == case.department_id)
        )
        if handler is None:
            raise Refused("请选择该办件所属管理部的经办人")
        if case.assignee_id == handler.id:
            raise Refused(f"该办件已指派给{handler.name}")
        _bump(case, case.version, assignee=handler.id)
        CaseEvent.create(
            case=case,
            actor=user,
            actor_label=user.name,
            action="assign",
            data={"assignee": handler.name},
        )
        audit.record(
            _actor(user),
            "case.assign",
            "proxy_case",
            case.id,
            case_no=case.case_no,
            assignee=handler.username,
        )
        from portal.services import notices  # issue 11: tell the handler

        notices.case_assigned(ProxyCase.get_by_id(case.id), handler, user)
    return ProxyCase.get_by_id(case.id)


def record_mailing(user: StaffUser, case_id: int, tracking_no: str) -> ProxyCase:
    """The liaison records the tracking number of the paper materials mailed."""
    if user.role not in cs.MAIL_ROLES:
        raise Refused("只有联络人可以登记邮寄")
    number = re.sub(r"\s+", "", tracking_no or "").upper()
    if not TRACKING_NO.match(number):
        raise Refused("请填写 6–40 位的邮寄单号（字母、数字或连字符）")
    with write_tx():
        case = _locked_case(user, case_id)
        if case.state not in cs.MAIL_STATES[case.direction]:
            states = "或".join(cs.label(case.direction, s) for s in cs.MAIL_STATES[case.direction])
            raise Refused(f"邮寄单号在“{states}”时登记")
        ProxyCase.update(tracking_no=number, updated_at=utcnow()).where(
            ProxyCase.id == case.id
        ).execute()
        mail_event = {"tracking_no": number, "previous": case.tracking_no or ""}
        report = _platform("report_mailing")  # issue 8: tell the other center
        if report is not None:
            from portal.filters import local_today

            sent = report(ProxyCase.get_by_id(case.id), number, _actor(user), local_today())
            if sent is not None:
                mail_event["message_id"] = sent.message_id
        CaseEvent.create(
            case=case,
            actor=user,
            actor_label=user.name,
            action="mail",
            data=mail_event,
        )
        audit.record(
            _actor(user),
            "case.mail",
            "proxy_case",
            case.id,
            case_no=case.case_no,
            tracking_no=number,
        )
    return ProxyCase.get_by_id(case.id)


def add_comment(user: StaffUser, case_id: int, body: str) -> CaseComment:
    if user.role not in MOVER_ROLES:
        raise Refused("您只能查看办件，不能评论")
    text = (body or "").strip()
    if not text:
        raise Refused("请填写评论内容")
    if len(text) > MAX_COMMENT:
        raise Refused(f"评论不超过 {MAX_COMMENT} 字")
    with write_tx():
        case = get_case(user, case_id)
        comment = CaseComment.create(case=case, author=user, body=text)
        audit.record(_actor(user), "case.comment", "proxy_case", case.id, case_no=case.case_no)
    return comment


# --- the case detail ----------------------------------------------------------------------

_PHONE = re.compile(r"^1\d{10}$")
_CARD = re.compile(r"^\d{16,19}$")


def mask_value(value) -> str:
    """A value from application data as a screen may show it (IDs, cards, phones masked)."""
    text = str(value if value is not None else "")
    compact = text.replace(" ", "")
    if len(compact) == 18 and is_valid_resident_id(compact):
        return mask_resident_id(compact)
    if _PHONE.match(compact):
        return mask_phone(compact)
    if _CARD.match(compact):
        return mask_bank_card(compact)
    return text


def _application_rows(case: ProxyCase) -> list[tuple[str, str]]:
    try:
        from portal.services.counter import application_rows
    except ImportError:  # the counter module is optional for the board
        application_rows = None
    if application_rows is not None:
        rows = application_rows(case)
    else:
        rows = [(str(k), str(v)) for k, v in (case.application or {}).items() if k != "item"]
    return [(label, mask_value(value)) for label, value in rows if value not in ("", None)]


@dataclass
class AttachmentRow:
    id: int
    name: str
    filename: str
    type_label: str
    size: int
    uploaded_by: str
    created_at: datetime


def _attachments(case: ProxyCase) -> list[AttachmentRow]:
    try:
        from portal.services.materials import list_for
    except ImportError:
        list_for = None
    if list_for is not None:
        return [
            AttachmentRow(
                a.id, a.material_name, a.filename, a.type_label, a.size, a.uploaded_by, a.created_at
            )
            for a in list_for(case)
        ]
    return [
        AttachmentRow(
            a.id, a.material or a.kind, a.filename, a.content_type, a.size, "", a.created_at
        )
        for a in Attachment.select().where(Attachment.case == case).order_by(Attachment.id)
    ]


ACTION_LABELS = {
    "create": "登记",
    "move": "移动",
    "take": "领取",
    "assign": "指派",
    "mail": "登记邮寄",
    "import": "平台导入",
    # platform exchange (issue 8, portal.platform.exchange)
    "ack": "对方接收确认",
    "request": "对方补正请求",
    "supplement": "补充材料",
    "result": "办理结果",
    "mail_in": "对方邮寄",
    # processing (issue 7, services.processing / services.settlement)
    "prepare": "经办核算",
    "approve": "复核通过",
    "refuse_payout": "复核退回",
    "withdraw_payout": "撤回经办",
    "payout": "支付完成",
    "register": "登记开户",
    "request_cert": "提交签发",
    "certificate": "签发证明",
}
DATA_LABELS = {
    "reason": "退回原因",
    "missing": "需补正材料",
    "result": "办理结果",
    "department": "分发至",
    "assignee": "经办人",
    "tracking_no": "邮寄单号",
    "previous": "原单号",
    "package": "平台数据包",
    "message_id": "平台报文编号",
    "channel": "交换方式",
    "sender": "发送中心",
    "peer_case_no": "对方办件编号",
    "peer_deadline": "对方办理期限",
    "received_on": "对方接收日期",
    "depositor_matched": "匹配到本中心缴存人",
    "materials": "材料份数",
    "carrier": "寄送方式",
    "mailed_on": "寄出日期",
    "contents": "寄送内容",
    "paused_workdays": "暂停工作日",
    "deadline": "顺延后期限",
    "notice": "告知方式",
    "guide_override": "未引导线上办理的原因",
    "checklist": "已收材料",
    "kind": "业务",
    "amount": "金额（元）",
    "status": "状态",
    "employer": "单位",
    "account_no": "单位账号",
    "loan": "借款合同",
    "number": "证明编号",
    "note": "说明",
}


def _describe(key: str, value) -> str:
    if key == "result" and isinstance(value, dict):
        return "；".join(str(v) for v in (value.get("outcome"), value.get("note")) if v)
    if key == "checklist" and isinstance(value, dict):
        return f"{sum(1 for v in value.values() if v)}/{len(value)} 项"
    if isinstance(value, list | tuple):
        return "、".join(str(v) for v in value)
    return mask_value(value)


@dataclass
class HistoryEntry:
    at: datetime
    actor: str
    action: str
    action_label: str
    from_label: str
    to_label: str
    details: list[tuple[str, str]]


@dataclass
class CommentRow:
    author: str
    at: datetime
    body: str


@dataclass
class Detail:
    card: Card
    item_name: str
    direction_label: str
    state_label: str
    center_name: str
    applicant_name: str
    applicant_id: str  # masked
    applicant_phone: str  # masked
    department_name: str
    assignee_name: str
    accepted_by: str
    clock_start: date
    application: list[tuple[str, str]]
    checklist: list[tuple[str, bool]]
    missing: list[str]
    attachments: list[AttachmentRow]
    rejection_reason: str
    result: dict
    tracking_no: str
    comments: list[CommentRow]
    history: list[HistoryEntry]
    can_comment: bool
    can_mail: bool
    can_assign: bool
    handlers: list[tuple[int, str]]
    can_process: bool = False  # the "办理" entry point (services.processing)
    results: list = field(default_factory=list)  # result documents (processing.ResultFile)


def detail(user: StaffUser, case_id: int, today: date, overrides=None) -> Detail:
    the_card = card(user, case_id, today, overrides)
    case = ProxyCase.get_by_id(case_id)
    item = items.get(case.item)
    names = {
        s.id: s.name
        for s in StaffUser.select(StaffUser.id, StaffUser.name).where(
            StaffUser.id.in_([i for i in (case.accepted_by_id, case.assignee_id) if i])
        )
    }
    checklist = case.checklist or {}
    events = CaseEvent.select().where(CaseEvent.case == case.id).order_by(CaseEvent.id)
    history = [
        HistoryEntry(
            at=e.created_at,
            actor=e.actor_label or "系统",
            action=e.action,
            action_label=ACTION_LABELS.get(e.action, e.action),
            from_label=cs.STATE_LABELS[case.direction].get(e.from_state or "", e.from_state or ""),
            to_label=cs.STATE_LABELS[case.direction].get(e.to_state or "", e.to_state or ""),
            details=[(DATA_LABELS.get(k, k), _describe(k, v)) for k, v in (e.data or {}).items()],
        )
        for e in events
    ]
    comments = [
        CommentRow(c.author.name, c.created_at, c.body)
        for c in CaseComment.select(CaseComment, StaffUser)
        .join(StaffUser)
        .where(CaseComment.case == case.id)
        .order_by(CaseComment.created_at, CaseComment.id)
    ]
    can_assign = (
        user.role == "liaison"
        and case.direction == INBOUND
        and case.state in cs.ASSIGNABLE_STATES[INBOUND]
        and bool(case.department_id)
    )
    return Detail(
        card=the_card,
        item_name=item.name,
        direction_label=DIRECTION_LABELS[case.direction],
        state_label=_label(case),
        center_name=the_card.center_name,
        applicant_name=case.applicant_name,
        applicant_id=mask_resident_id(case.applicant_id_no),
        applicant_phone=mask_phone(case.applicant_phone) if case.applicant_phone else "",
        department_name=the_card.department_name,
        assignee_name=names.get(case.assignee_id, ""),
        accepted_by=names.get(case.accepted_by_id, ""),
        clock_start=case.clock_start,
        application=_application_rows(case),
        checklist=[(m.name, bool(checklist.get(m.code))) for m in item.materials],
        missing=list(case.missing_materials or []) if case.state == PAUSED else [],
        attachments=_attachments(case),
        rejection_reason=case.rejection_reason or "",
        result=case.result or {},
        tracking_no=case.tracking_no or "",
        comments=comments,
        history=history,
        can_comment=user.role in MOVER_ROLES,
        can_mail=user.role in cs.MAIL_ROLES and case.state in cs.MAIL_STATES[case.direction],
        can_assign=can_assign,
        handlers=[(h.id, h.name) for h in assignable_handlers(case)] if can_assign else [],
        **_processing_fields(user, case),
    )


def _processing_fields(user: StaffUser, case: ProxyCase) -> dict:
    """The processing entry point and the result documents (issue 7), when installed."""
    try:
        from portal.services import processing
    except ImportError:
        return {}
    return {
        "can_process": processing.can_process(user, case),
        "results": processing.results(case),
    }


def missing_choices(case: ProxyCase) -> list[str]:
    """The item's materials, for the 待补正 form (one-time notice of everything missing)."""
    return [m.name for m in items.get(case.item).materials]


def suggested_department(case: ProxyCase) -> int | None:
    """The depositor's management department, the usual answer when distributing."""
    if case.department_id:
        return case.department_id
    if case.depositor_id:
        row = Depositor.select(Depositor.department).where(Depositor.id == case.depositor_id)
        found = row.first()
        return found.department_id if found else None
    return None


def departments() -> list[tuple[int, str]]:
    return [(d.id, d.name) for d in Department.select().order_by(Department.code)]


# --- WIP limits (admin) -------------------------------------------------------------------


def set_wip_limits(
    user: StaffUser, limits: dict[tuple[str, str], int | None], today: date
) -> list[str]:
    """Save column limits taking effect today; None removes a limit. Returns changed keys."""
    if user.role != "admin":
        raise Refused("只有管理员可以设置看板列上限")
    changed = []
    with write_tx():
        for (direction, state), value in limits.items():
            if state not in cs.COLUMNS.get(direction, ()):
                raise Refused("没有这一列")
            if value is not None and not 1 <= value <= 999:
                raise Refused("上限应为 1–999 之间的整数")
            current = wip_limits(direction, today).get(state)
            if current == value:
                continue
            key = WIP_KEY.format(direction=direction, state=state)
            text = str(value) if value is not None else ""
            row = Setting.get_or_none((Setting.key == key) & (Setting.effective_from == today))
            if row is None:
                Setting.create(key=key, value=text, effective_from=today, created_by=user)
            else:
                Setting.update(value=text, created_by=user).where(Setting.id == row.id).execute()
            changed.append(f"{key}={text or '无'}")
        if changed:
            audit.record(_actor(user), "settings.wip", "setting", "wip", changes=changed)
    return changed
