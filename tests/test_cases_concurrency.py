"""Two people move the same card at once: one wins, the other is told and sees the fresh card.

Real threads, each with its own connection, on committed data (run them on PostgreSQL with
TEST_DATABASE_URL as well as on SQLite). Everything committed is removed afterwards.
"""

from __future__ import annotations

import threading

import pytest

from portal.db import db
from portal.models import CaseEvent, ProxyCase, StaffUser, WebSession
from portal.rules import casestates as cs
from portal.services import cases
from tests.board_helpers import HX, make_case, soup
from tests.conftest import TODAY, login_staff

pytestmark = pytest.mark.committed


@pytest.fixture
def committed(app):
    """A committed outbound case in 窗口受理; afterwards the case, its events, the audit rows
    and the sessions this test wrote are deleted and the staff TOTP steps restored."""
    db.connect(reuse_if_open=True)
    steps = {u.id: u.totp_last_step for u in StaffUser.select()}
    sessions = {s.sid for s in WebSession.select(WebSession.sid)}
    case = make_case(cs.OUTBOUND, "accepted", prefix="TC")
    db.close()
    try:
        yield case
    finally:
        db.connect(reuse_if_open=True)
        with db.atomic():
            CaseEvent.delete().where(CaseEvent.case == case.id).execute()
            ProxyCase.delete().where(ProxyCase.id == case.id).execute()
            # audit rows stay: the audit log is append-only (hash chain, triggers)
            WebSession.delete().where(WebSession.sid.not_in(list(sessions))).execute()
            for user_id, step in steps.items():
                StaffUser.update(totp_last_step=step).where(StaffUser.id == user_id).execute()
        db.close()


def _run_together(*jobs):
    """Start the jobs at the same instant, each in its own thread and connection."""
    barrier = threading.Barrier(len(jobs))
    results: list = [None] * len(jobs)

    def run(index, job):
        db.connect(reuse_if_open=True)
        try:
            barrier.wait(timeout=10)
            results[index] = job()
        except Exception as exc:  # collected and asserted on by the test
            results[index] = exc
        finally:
            db.close()

    threads = [threading.Thread(target=run, args=(i, job)) for i, job in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return results


def test_simultaneous_moves_one_wins(app, committed):
    clerk = StaffUser.get(StaffUser.username == "clerk")
    handler = StaffUser.get(StaffUser.username == "handler")
    jobs = []
    for i in range(6):
        user = (clerk, handler)[i % 2]
        target, data = [("verifying", None), ("rejected", {"reason": f"第{i}次"})][i % 3 == 0]
        jobs.append(
            lambda user=user, target=target, data=data: cases.move_case(
                user, committed.id, target, 1, data, today=TODAY
            )
        )
    with app.app_context():
        results = _run_together(*jobs)
        db.connect(reuse_if_open=True)
        winners = [r for r in results if isinstance(r, ProxyCase)]
        losers = [r for r in results if isinstance(r, cases.Conflict)]
        assert len(winners) == 1 and len(losers) == 5, results
        final = ProxyCase.get_by_id(committed.id)
        assert final.version == 2 and final.state == winners[0].state
        for conflict in losers:
            assert conflict.case.version == 2 and conflict.case.state == final.state
            assert "刚刚已被" in conflict.message
        moves = CaseEvent.select().where(
            (CaseEvent.case == committed.id) & (CaseEvent.action == "move")
        )
        assert moves.count() == 1
        db.close()


def test_two_browsers_drop_the_same_card(app, committed):
    first, second = app.test_client(), app.test_client()
    login_staff(first, "clerk")
    login_staff(second, "handler")

    def drop(client, target, **extra):
        def job():
            data = {"target": target, "version": "1", "from_state": "accepted", **extra}
            return client.post(f"/staff/board/case/{committed.id}/move", data=data, headers=HX)

        return job

    results = _run_together(
        drop(first, "verifying"),
        drop(second, "rejected", with_data="1", **{f"c{committed.id}-reason": "重复受理"}),
    )
    assert sorted(r.status_code for r in results) == [200, 409], results
    loser = next(r for r in results if r.status_code == 409)
    page = soup(loser)
    db.connect(reuse_if_open=True)
    final = ProxyCase.get_by_id(committed.id)
    db.close()
    assert "刚刚已被" in page.select_one("#board-live").get_text()
    card = page.select_one(f"#cards-{final.state} #case-{committed.id}")
    assert card is not None and card["data-version"] == "2"
