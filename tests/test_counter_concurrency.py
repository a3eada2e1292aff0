"""Real concurrency at the counter and the platform import (committed data; SQLite and, with
TEST_DATABASE_URL, PostgreSQL): simultaneous acceptances get distinct case numbers, and the
same package imported at once opens one case."""

from __future__ import annotations

import threading
from datetime import date

import pytest

from portal.db import db
from portal.models import (
    Attachment,
    CaseEvent,
    Depositor,
    PlatformMessage,
    ProxyCase,
)
from portal.platform import files
from portal.services import counter
from tests.counter_helpers import application, staff

pytestmark = pytest.mark.committed
THREADS = 6
DAY = date(2026, 12, 1)  # no demo case is numbered on this day


def _run(target, n=THREADS):
    results, errors = [], []
    barrier = threading.Barrier(n)

    def worker():
        db.connect(reuse_if_open=True)
        try:
            barrier.wait()
            results.append(target())
        except Exception as exc:  # collected and asserted on below
            errors.append(exc)
        finally:
            db.close()

    threads = [threading.Thread(target=worker) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results, errors


@pytest.fixture
def cleanup():
    created: list[int] = []
    yield created
    db.connect(reuse_if_open=True)
    with db.atomic():
        ids = created or [0]
        PlatformMessage.delete().where(PlatformMessage.case.in_(ids)).execute()
        Attachment.delete().where(Attachment.case.in_(ids)).execute()
        CaseEvent.delete().where(CaseEvent.case.in_(ids)).execute()
        ProxyCase.delete().where(ProxyCase.id.in_(ids)).execute()
        # audit rows stay: the audit log is append-only (hash chain, triggers)
    db.close()


def test_simultaneous_acceptances_get_distinct_numbers(cleanup):
    db.connect(reuse_if_open=True)
    clerk = staff("clerk")
    db.close()

    def one():
        return counter.accept(clerk, "staff:clerk", application(), DAY, {})

    cases, errors = _run(one)
    cleanup.extend(c.id for c in cases)
    assert errors == []
    numbers = sorted(c.case_no for c in cases)
    assert len(set(numbers)) == THREADS
    assert numbers == [f"KS20261201{n:04d}" for n in range(1, THREADS + 1)]


def test_the_same_package_imported_at_once_opens_one_case(app, cleanup):
    db.connect(reuse_if_open=True)
    depositor = Depositor.select().where(Depositor.active).order_by(Depositor.id).first()
    with app.app_context():
        package = files.demo_package("110000", depositor, DAY)
    db.close()

    def one():
        with app.app_context():
            return files.receive(package, actor="system", today=DAY, overrides={})

    results, errors = _run(one, 4)
    cleanup.extend({r.case.id for r in results})
    assert errors == []
    assert len({r.case.id for r in results}) == 1
    assert sum(not r.duplicate for r in results) == 1
