"""Case tracking (办件进度查询): anyone with the receipt number and the applicant's ID number,
and a logged-in depositor for all their own cases. Only masked personal data is shown."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from portal import items
from portal.models import CaseEvent, Center, Depositor, ProxyCase
from portal.rules import casestates
from portal.rules.ids import mask_resident_id, normalize_resident_id
from portal.rules.workdays import deadline_is_estimated, workdays_left
from portal.services import settings
from portal.services.certificates import mask_name

DIRECTION_LABELS = {
    casestates.OUTBOUND: "本中心受理，转缴存地中心办理",
    casestates.INBOUND: "外地中心受理，本中心办理",
}
ACTION_LABELS = {"mail": "材料已寄出", "supplement": "收到补正材料"}


class NotFound(LookupError):
    pass


@dataclass
class EventView:
    at: datetime
    label: str
    note: str = ""


@dataclass
class CaseView:
    case: ProxyCase
    item_name: str
    direction_label: str
    state_label: str
    center_name: str
    applicant_name: str  # masked
    applicant_id: str  # masked
    final: bool
    clock_running: bool
    paused: bool
    deadline: date | None
    deadline_estimated: bool
    days_left: int | None
    events: list[EventView] = field(default_factory=list)

    @property
    def overdue(self) -> bool:
        return self.days_left is not None and self.days_left < 0


def _events_query(case_ids):
    return (
        CaseEvent.select()
        .where(CaseEvent.case.in_(case_ids))
        .order_by(CaseEvent.created_at, CaseEvent.id)
    )


def _view(case: ProxyCase, today: date, overrides=None, centers=None, history=None) -> CaseView:
    """``centers`` (id -> Center) and ``history`` (the case's events) when the caller read them
    for many cases at once (issue 10: a list of cases costs the same queries however long)."""
    direction, state = case.direction, case.state
    running = casestates.clock_running(direction, state)
    try:
        item_name = items.get(case.item).name
    except KeyError:
        item_name = case.item
    if centers is not None:
        center = centers.get(case.center_id)
    else:
        center = Center.get_or_none(Center.id == case.center_id)
    events = []
    for event in history if history is not None else _events_query([case.id]):
        if event.action in ("create", "move") and event.to_state:
            note = ""
            if event.to_state == casestates.PAUSED and case.missing_materials:
                note = "需补正：" + "、".join(case.missing_materials)
            elif event.to_state == "rejected" and case.rejection_reason:
                note = case.rejection_reason
            events.append(
                EventView(event.created_at, casestates.label(direction, event.to_state), note)
            )
        elif event.action in ACTION_LABELS:
            events.append(EventView(event.created_at, ACTION_LABELS[event.action]))
    deadline = case.deadline if running else None
    return CaseView(
        case=case,
        item_name=item_name,
        direction_label=DIRECTION_LABELS.get(direction, direction),
        state_label=casestates.label(direction, state),
        center_name=center.name if center else "—",
        applicant_name=mask_name(case.applicant_name),
        applicant_id=mask_resident_id(case.applicant_id_no),
        final=not casestates.is_open(direction, state),
        clock_running=running,
        paused=state == casestates.PAUSED,
        deadline=deadline,
        deadline_estimated=bool(deadline) and deadline_is_estimated(case.clock_start, deadline),
        days_left=workdays_left(today, deadline, overrides) if deadline else None,
        events=events,
    )


def track(receipt_no: str, id_no: str, today: date) -> CaseView | None:
    """The case with this receipt number whose applicant has this ID number, or None."""
    receipt_no = "".join((receipt_no or "").split()).upper()
    id_no = normalize_resident_id(id_no)
    if not receipt_no or not id_no:
        return None
    case = ProxyCase.get_or_none(ProxyCase.receipt_no == receipt_no)
    if case is None or case.applicant_id_no.upper() != id_no:
        return None
    return _view(case, today, settings.holiday_overrides())


def _own_query(depositor: Depositor):
    return ProxyCase.select().where(
        (ProxyCase.depositor == depositor) | (ProxyCase.applicant_id_no == depositor.resident_id)
    )


def my_cases(depositor: Depositor, today: date) -> list[CaseView]:
    overrides = settings.holiday_overrides()
    cases = list(_own_query(depositor).order_by(ProxyCase.created_at.desc(), ProxyCase.id.desc()))
    centers = {center.id: center for center in Center.select()}
    history: dict[int, list[CaseEvent]] = {case.id: [] for case in cases}
    if cases:
        for event in _events_query(list(history)):
            history[event.case_id].append(event)
    return [_view(case, today, overrides, centers, history[case.id]) for case in cases]


def my_case(depositor: Depositor, case_id: int, today: date) -> CaseView:
    case = _own_query(depositor).where(ProxyCase.id == case_id).first()
    if case is None:
        raise NotFound(case_id)
    return _view(case, today, settings.holiday_overrides())
