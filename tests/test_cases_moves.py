"""The state machine as the service enforces it: every move, allowed and refused, per role."""

from __future__ import annotations

import itertools

import pytest

from portal.models import AuditLog, CaseEvent, StaffUser
from portal.rules import casestates as cs
from portal.services import cases
from tests.board_helpers import data_for, fresh, make_case, staff
from tests.conftest import TODAY

ROLES = {  # demo username per role; handler and clerk work at AZQ
    "clerk": "clerk",
    "liaison": "liaison",
    "handler": "handler",
    "official": "official",
    "admin": "admin",
    "auditor": "auditor",
}


@pytest.fixture(autouse=True)
def _app_context(app):
    """The platform package export reads the signing key from the app's configuration."""
    with app.app_context():
        yield


MATRIX = [
    (direction, source, target, role)
    for direction, columns in cs.COLUMNS.items()
    for source, target in itertools.product(columns, columns)
    for role in ROLES
]


def _visible(role: str, direction: str, source: str) -> bool:
    if role == "handler":  # an inbound case reaches a department when it is distributed
        return direction == cs.OUTBOUND or source != "received"
    return role in ("liaison", "auditor") or (role == "clerk" and direction == cs.OUTBOUND)


def _case_for(direction: str, source: str):
    """Inbound cases past 平台接收 belong to AZQ and its handler, as after a normal flow."""
    if direction == cs.INBOUND and source != "received":
        return make_case(direction, source, assignee="handler")
    if direction == cs.INBOUND:
        return make_case(direction, source, dept=None)
    return make_case(direction, source)


@pytest.mark.parametrize("direction, source, target, role", MATRIX)
def test_every_move_for_every_role(direction, source, target, role):
    user = staff(ROLES[role])
    case = _case_for(direction, source)
    move = cs.find_move(direction, source, target)
    events = CaseEvent.select().where(CaseEvent.case == case.id).count()

    def attempt():
        return cases.move_case(user, case.id, target, case.version, data_for(move), today=TODAY)

    if not _visible(role, direction, source):
        with pytest.raises(cases.NotFound):
            attempt()
    elif move is not None and role in move.roles and role in cases.MOVER_ROLES:
        moved = attempt()
        assert moved.state == target
        assert moved.version == case.version + 1
        event = (
            CaseEvent.select()
            .where(CaseEvent.case == case.id)
            .order_by(CaseEvent.id.desc())
            .first()
        )
        assert (event.action, event.from_state, event.to_state) == ("move", source, target)
        assert event.actor_id == user.id and event.actor_label == user.name
        assert (
            AuditLog.get(
                (AuditLog.action == "case.move") & (AuditLog.target_id == str(case.id))
            ).actor
            == f"staff:{user.username}"
        )
    else:
        with pytest.raises(cases.Refused) as refused:
            attempt()
        assert refused.value.message  # a Chinese reason for the user
        assert not isinstance(refused.value, cases.Conflict)
        after = fresh(case)
        assert (after.state, after.version) == (source, case.version)
        assert CaseEvent.select().where(CaseEvent.case == case.id).count() == events


@pytest.mark.parametrize(
    "direction, source, role",
    [(d, s, r) for d, cols in cs.COLUMNS.items() for s in cols for r in cases.MOVER_ROLES],
)
def test_the_menu_offers_exactly_the_allowed_moves(direction, source, role):
    user = staff(ROLES[role])
    case = _case_for(direction, source)
    if not _visible(role, direction, source):
        return
    assert cases.move_targets(user, case) == cs.allowed_targets(direction, source, role)


def test_readers_get_no_menu():
    case = make_case(cs.OUTBOUND, "verifying")
    assert cases.move_targets(staff("auditor"), case) == []


def test_refusal_reasons_name_the_columns_and_roles():
    clerk = staff("clerk")
    case = make_case(cs.OUTBOUND, "accepted")
    with pytest.raises(cases.Refused, match="不能从“窗口受理”直接移至“已传递”"):
        cases.move_case(clerk, case.id, "transmitted", case.version, today=TODAY)
    case = make_case(cs.OUTBOUND, "verifying")
    with pytest.raises(cases.Refused, match="须由联络人操作"):
        cases.move_case(clerk, case.id, "transmitted", case.version, today=TODAY)
    with pytest.raises(cases.Refused, match="只能查看"):
        cases.move_case(staff("auditor"), case.id, "rejected", case.version, today=TODAY)


@pytest.mark.parametrize(
    "direction, source, target",
    [(m.direction, m.source, m.target) for m in cs.MOVES if m.requires],
)
def test_moves_that_need_data_refuse_without_it(direction, source, target):
    move = cs.find_move(direction, source, target)
    role = sorted(move.roles)[0]
    case = _case_for(direction, source)
    with pytest.raises(cases.Refused):
        cases.move_case(staff(ROLES[role]), case.id, target, case.version, {}, today=TODAY)
    assert fresh(case).state == source


def test_required_data_is_stored_with_the_move():
    liaison, handler = staff("liaison"), staff("handler")
    case = make_case(cs.INBOUND, "received", dept=None)
    dept = handler.department
    moved = cases.move_case(
        liaison, case.id, "distributed", 1, {"department": dept.id}, today=TODAY
    )
    assert moved.department_id == dept.id
    event = CaseEvent.get((CaseEvent.case == case.id) & (CaseEvent.to_state == "distributed"))
    assert event.data == {"department": dept.name}

    case = make_case(cs.OUTBOUND, "accepted")
    moved = cases.move_case(
        staff("clerk"), case.id, "rejected", 1, {"reason": "  非本人申请 "}, today=TODAY
    )
    assert moved.rejection_reason == "非本人申请"

    case = make_case(cs.OUTBOUND, "verifying")
    missing = ["购房发票或首付款证明", "婚姻状况证明（配偶共同提取时）", "购房发票或首付款证明"]
    moved = cases.move_case(liaison, case.id, "supplement", 1, {"missing": missing}, today=TODAY)
    assert moved.missing_materials == missing[:2]
    assert moved.paused_since == TODAY

    case = make_case(cs.INBOUND, "processing", assignee="handler")
    moved = cases.move_case(
        handler, case.id, "done", 1, {"outcome": "办结", "note": "已支付"}, today=TODAY
    )
    assert moved.result == {"outcome": "办结", "note": "已支付"}


def test_invalid_data_is_refused():
    clerk = staff("clerk")
    case = make_case(cs.OUTBOUND, "accepted")
    with pytest.raises(cases.Refused, match="500"):
        cases.move_case(clerk, case.id, "rejected", 1, {"reason": "长" * 501}, today=TODAY)
    handler = staff("handler")
    case = make_case(cs.INBOUND, "processing", assignee="handler")
    with pytest.raises(cases.Refused, match="办理结果"):
        cases.move_case(handler, case.id, "done", 1, {"outcome": "随便", "note": "x"}, today=TODAY)
    liaison = staff("liaison")
    case = make_case(cs.INBOUND, "received", dept=None)
    with pytest.raises(cases.Refused, match="管理部"):
        cases.move_case(liaison, case.id, "distributed", 1, {"department": 99999}, today=TODAY)


def test_a_handler_cannot_move_a_case_assigned_to_someone_else():
    other = StaffUser.create(
        username="handler_b", name="钱多", role="handler", department=staff("handler").department
    )
    case = make_case(cs.INBOUND, "processing", assignee="handler_b")
    with pytest.raises(cases.Refused, match="其他经办人"):
        cases.move_case(
            staff("handler"), case.id, "done", 1, {"outcome": "办结", "note": "x"}, today=TODAY
        )
    assert cases.move_targets(staff("handler"), case) == []
    assert cases.move_targets(other, case) == ["done", "supplement", "rejected"]


def test_processing_needs_an_assignee_and_a_handler_takes_it_by_moving():
    liaison, handler = staff("liaison"), staff("handler")
    case = make_case(cs.INBOUND, "distributed")
    with pytest.raises(cases.Refused, match="请先指派经办人"):
        cases.move_case(liaison, case.id, "processing", 1, today=TODAY)
    assert "processing" not in cases.move_targets(liaison, case)
    moved = cases.move_case(handler, case.id, "processing", 1, today=TODAY)
    assert moved.assignee_id == handler.id


def test_another_departments_handler_sees_nothing():
    case = make_case(cs.INBOUND, "distributed")
    with pytest.raises(cases.NotFound):
        cases.move_case(staff("handler2"), case.id, "processing", 1, today=TODAY)
    with pytest.raises(cases.NotFound):
        cases.get_case(staff("handler2"), case.id)
    outbound = make_case(cs.OUTBOUND, "accepted")
    with pytest.raises(cases.NotFound):
        cases.detail(staff("handler2"), outbound.id, TODAY)


def test_visibility_per_role():
    inbound = make_case(cs.INBOUND, "processing", assignee="handler")
    outbound = make_case(cs.OUTBOUND, "accepted")
    foreign = make_case(cs.OUTBOUND, "accepted", dept="AYQ")
    seen = {
        role: {
            c.id
            for c in cases.ProxyCase.select().where(cases.visible_clause(staff(name)))
            if c.id in (inbound.id, outbound.id, foreign.id)
        }
        for role, name in ROLES.items()
    }
    assert seen["liaison"] == seen["auditor"] == {inbound.id, outbound.id, foreign.id}
    assert seen["handler"] == {inbound.id, outbound.id}
    assert seen["clerk"] == {outbound.id}
    assert seen["admin"] == seen["official"] == set()
    assert {
        c.id for c in cases.ProxyCase.select().where(cases.visible_clause(staff("handler2")))
    } >= {foreign.id}


def test_stale_version_is_a_conflict_with_the_fresh_case():
    clerk, handler = staff("clerk"), staff("handler")
    case = make_case(cs.OUTBOUND, "accepted")
    cases.move_case(clerk, case.id, "verifying", 1, today=TODAY)
    with pytest.raises(cases.Conflict) as conflict:
        cases.move_case(handler, case.id, "verifying", 1, today=TODAY)
    assert conflict.value.case.state == "verifying"
    assert conflict.value.case.version == 2
    assert "王芳" in conflict.value.message and "材料核实" in conflict.value.message


def test_outbound_transmitted_exports_the_platform_package():
    case = make_case(cs.OUTBOUND, "verifying")
    moved = cases.move_case(staff("liaison"), case.id, "transmitted", 1, today=TODAY)
    event = CaseEvent.get((CaseEvent.case == moved.id) & (CaseEvent.to_state == "transmitted"))
    try:
        import portal.platform.files  # noqa: F401
    except ModuleNotFoundError:
        assert "package" not in event.data
    else:
        assert event.data["package"]


def test_take_assign_mail_and_comment():
    liaison, handler = staff("liaison"), staff("handler")
    case = make_case(cs.INBOUND, "distributed")
    taken = cases.take_case(handler, case.id, 1)
    assert taken.assignee_id == handler.id and taken.version == 2
    with pytest.raises(cases.Refused, match="已领取"):
        cases.take_case(handler, case.id, 2)
    with pytest.raises(cases.Conflict):
        cases.take_case(handler, case.id, 1)
    with pytest.raises(cases.Refused, match="只有管理部经办人"):
        cases.take_case(liaison, case.id, 2)

    other = StaffUser.create(
        username="handler_c", name="冯雪", role="handler", department=handler.department
    )
    assigned = cases.assign_case(liaison, case.id, other.id, 2)
    assert assigned.assignee_id == other.id
    with pytest.raises(cases.Refused, match="所属管理部"):
        cases.assign_case(liaison, case.id, staff("handler2").id, 3)
    with pytest.raises(cases.Refused, match="只有联络人"):
        cases.assign_case(handler, case.id, handler.id, 3)
    with pytest.raises(cases.Refused, match="已由冯雪领取"):
        cases.take_case(handler, case.id, 3)

    with pytest.raises(cases.Refused, match="平台接收|已办结|已反馈"):
        cases.record_mailing(liaison, case.id, "SF1234567890")
    done = make_case(cs.INBOUND, "done", assignee="handler")
    mailed = cases.record_mailing(liaison, done.id, " sf 1234567890 ")
    assert mailed.tracking_no == "SF1234567890"
    with pytest.raises(cases.Refused, match="邮寄单号"):
        cases.record_mailing(liaison, done.id, "12")
    with pytest.raises(cases.Refused, match="只有联络人"):
        cases.record_mailing(handler, done.id, "SF1234567890")
    outbound = make_case(cs.OUTBOUND, "transmitted")
    assert cases.record_mailing(liaison, outbound.id, "EMS-12345678").tracking_no == "EMS-12345678"

    comment = cases.add_comment(handler, case.id, "  已电话联系申请人 ")
    assert comment.body == "已电话联系申请人"
    with pytest.raises(cases.Refused):
        cases.add_comment(handler, case.id, "   ")
    with pytest.raises(cases.Refused):
        cases.add_comment(staff("auditor"), case.id, "看看")
    actions = {a.action for a in AuditLog.select().where(AuditLog.target_id == str(case.id))}
    assert {"case.take", "case.assign", "case.comment"} <= actions


def test_detail_masks_identifiers_and_lists_the_history():
    case = make_case(cs.OUTBOUND, "accepted", application={"bank_card": "6222021234567890123"})
    cases.move_case(staff("clerk"), case.id, "verifying", 1, today=TODAY)
    detail = cases.detail(staff("liaison"), case.id, TODAY)
    assert detail.applicant_id == "1101**********0016"
    assert detail.applicant_phone == "138****8000"
    assert all("6222021234567890123" not in value for _label, value in detail.application)
    move = detail.history[-1]
    assert (move.actor, move.from_label, move.to_label) == ("王芳", "窗口受理", "材料核实")
    assert detail.checklist and all(received for _name, received in detail.checklist)
