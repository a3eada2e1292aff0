"""Background jobs: the lifecycle (queued → running → done / failed, leases, retries), the
30 June interest settlement (correct and idempotent), the worker command, the exports, and
the progress pages with and without htmx."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from io import BytesIO

import pytest
from openpyxl import load_workbook

from portal.models import Account, AuditLog, Depositor, DepositRecord, Job, Notice, utcnow
from portal.rules.ids import resident_id_check_char
from portal.services import jobs
from portal.services.payouts import deposit_rate
from tests.conftest import TODAY, login_staff
from tests.notices_helpers import HX, soup, staff


@pytest.fixture(autouse=True)
def _app_context(app):
    with app.app_context():
        yield


def _noop(params, user, today, progress):
    progress(50, "一半")
    return jobs.Result("完成了", b"hello", "hello.txt")


def _boom(params, user, today, progress):
    raise RuntimeError("kaput")


def _refuse(params, user, today, progress):
    raise jobs.Refused("条件不满足")


@pytest.fixture
def test_kinds(monkeypatch):
    kinds = dict(jobs.KINDS)
    for code, run in (("t_ok", _noop), ("t_boom", _boom), ("t_refuse", _refuse)):
        kinds[code] = jobs.Kind(code, "测试任务", ("admin",), run)
    monkeypatch.setattr(jobs, "KINDS", kinds)


# --- the lifecycle ------------------------------------------------------------------------


def test_a_job_goes_from_queued_to_done_and_its_creator_is_told(test_kinds):
    admin = staff("admin")
    job = jobs.enqueue(admin, "t_ok", {"x": 1})
    assert (job.status, job.progress, job.attempts) == ("queued", 0, 0)
    claimed = jobs.claim()
    assert (claimed.id, claimed.status, claimed.attempts) == (job.id, "running", 1)
    assert claimed.locked_until > utcnow()
    assert jobs.claim() is None  # nobody else takes it while the lease runs
    done = jobs.run(claimed, TODAY)
    assert (done.status, done.progress, done.message) == ("done", 100, "完成了")
    assert done.result_name == "hello.txt" and done.finished_at is not None
    assert jobs.result_file(admin, job.id) == ("hello.txt", b"hello")
    told = Notice.get(Notice.recipient_id == admin.id)
    assert told.title == "后台任务已完成：测试任务" and told.link == f"/staff/jobs/{job.id}"
    assert AuditLog.select().where(AuditLog.action == "job.enqueue").count() == 1


def test_a_failing_job_is_marked_failed(test_kinds):
    admin = staff("admin")
    broken = jobs.enqueue(admin, "t_boom")
    refused = jobs.enqueue(admin, "t_refuse")
    assert jobs.work_once(TODAY).status == "failed"
    assert Job.get_by_id(broken.id).message == "任务因系统错误失败，请稍后重新发起"
    assert jobs.work_once(TODAY).message == "条件不满足"
    assert jobs.work_once(TODAY) is None
    assert Job.get_by_id(refused.id).status == "failed"
    assert "失败" in Notice.select().order_by(Notice.id.desc()).first().title


def test_progress_is_reported_and_extends_the_lease(test_kinds):
    job = jobs.enqueue(staff("admin"), "t_ok")
    claimed = jobs.claim()
    report = jobs.reporter(claimed)
    report(42, "处理中")
    row = Job.get_by_id(job.id)
    assert (row.progress, row.message) == (42, "处理中")
    report(30, "不倒退")
    assert Job.get_by_id(job.id).progress == 42
    report(250, "封顶")  # only finishing reaches 100
    assert Job.get_by_id(job.id).progress == 99


def test_a_dead_workers_job_is_taken_over_then_given_up(test_kinds):
    job = jobs.enqueue(staff("admin"), "t_ok")
    jobs.claim()
    later = utcnow() + jobs.LEASE + timedelta(seconds=1)
    again = jobs.claim(now=later)
    assert (again.id, again.attempts) == (job.id, 2)
    jobs.claim(now=later + jobs.LEASE * 2)
    assert Job.get_by_id(job.id).attempts == 3
    assert jobs.claim(now=later + jobs.LEASE * 4) is None
    assert Job.get_by_id(job.id).status == "failed"


def test_only_the_right_roles_start_a_kind():
    with pytest.raises(jobs.Refused):
        jobs.enqueue(staff("handler"), "interest_settlement", {"year": 2026})
    with pytest.raises(jobs.Refused):
        jobs.enqueue(staff("admin"), "ledger_export")  # admins see no business data
    with pytest.raises(jobs.Refused):
        jobs.enqueue(staff("admin"), "no_such_kind")


def test_someone_elses_job_is_not_found(test_kinds):
    job = jobs.enqueue(staff("liaison"), "ledger_export")
    with pytest.raises(jobs.NotFound):
        jobs.get_for(staff("handler"), job.id)
    with pytest.raises(jobs.NotFound):
        jobs.get_for(staff("admin"), job.id)
    system = jobs.enqueue(None, "deadline_reminders", {"day": TODAY.isoformat()})
    assert jobs.get_for(staff("admin"), system.id).id == system.id  # admins see the system's


def test_the_daily_reminders_are_queued_once_a_day():
    first = jobs.ensure_daily(TODAY)
    assert first.kind == "deadline_reminders" and first.created_by_id is None
    assert jobs.ensure_daily(TODAY) is None
    assert jobs.ensure_daily(TODAY + timedelta(days=1)) is not None
    assert jobs.work_once(TODAY).message.startswith("到期提醒：")


def test_the_demo_loaders_log_becomes_progress():
    assert jobs.demo_percent("  [   1.0s] small demo (500 depositors)") is None
    assert jobs.demo_percent("  [   2.0s] employers: 2,000") == 5
    assert jobs.demo_percent("  [ 9.0s] depositors 50,250/100,000, deposit records 1") == 35
    assert jobs.demo_percent("  [ 9.0s] loans 20,000/20,000, repayments 9") == 85
    assert jobs.demo_percent("  [ 9.0s] proxy cases 25,000/50,000") == 92
    assert jobs.demo_percent("  [ 9.0s] done: LargeSummary(...)") == 100


# --- the interest settlement --------------------------------------------------------------


def _account(status="正常", opened=date(2025, 1, 10), last=date(2025, 6, 30)) -> Account:
    n = Depositor.select().count() + Account.select().count() + 7
    first17 = f"15292119850101{n % 1000:03d}"
    depositor = Depositor.create(
        resident_id=first17 + resident_id_check_char(first17),
        name="结息测试",
        sex="M",
        birth_date=date(1985, 1, 1),
        retirement_category="male",
        phone="13700000000",
    )
    account = Account.create(
        account_no=f"JX{n:010d}",
        depositor=depositor,
        status=status,
        opened_on=opened,
        balance=Decimal("1400.00"),
        deposit_base=Decimal("5000.00"),
        last_interest_on=last,
    )
    for day, kind, amount, after in (
        (date(2025, 6, 30), "结息", "10.00", "1000.00"),
        (date(2025, 9, 15), "汇缴", "500.00", "1500.00"),
        (date(2026, 3, 10), "提取", "-200.00", "1300.00"),
        (date(2026, 8, 10), "汇缴", "100.00", "1400.00"),  # after the settlement day
    ):
        DepositRecord.create(
            account=account,
            kind=kind,
            posted_on=day,
            amount=Decimal(amount),
            balance_after=Decimal(after),
        )
    return account


def _expected_interest() -> Decimal:
    """积数 by hand: 1000 × 77 days + 1500 × 176 days + 1300 × 112 days, × rate / 360."""
    product = Decimal(1000 * 77 + 1500 * 176 + 1300 * 112)
    rate = deposit_rate(date(2026, 6, 30))
    return (product * rate / 360).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def _records(account):
    return list(
        DepositRecord.select()
        .where(DepositRecord.account == account)
        .order_by(DepositRecord.posted_on, DepositRecord.id)
    )


def test_the_settlement_posts_each_accounts_interest():
    account = _account()
    interest = _expected_interest()
    assert interest == Decimal("20.28")  # at the demo's 1.5 %
    seen = []
    result = jobs.settle_interest(2026, TODAY, "staff:admin", lambda pct, msg: seen.append(pct))
    assert result.settled == 1  # the demo's accounts were settled on 30 June already
    assert result.total == interest and result.skipped >= 1
    assert seen[0] == 1 and seen[-1] == 99 and seen == sorted(seen)
    fresh = Account.get_by_id(account.id)
    assert fresh.balance == Decimal("1400.00") + interest
    assert fresh.last_interest_on == date(2026, 6, 30)
    rows = _records(account)
    posted = [r for r in rows if r.posted_on == date(2026, 6, 30)]
    assert len(posted) == 1
    assert (posted[0].kind, posted[0].amount, posted[0].memo) == ("结息", interest, "2026 年度结息")
    assert posted[0].balance_after == Decimal("1300.00") + interest
    assert rows[-1].balance_after == Decimal("1400.00") + interest  # the later deposit follows
    audit = AuditLog.get(AuditLog.action == "interest.settlement")
    assert audit.detail["settled"] == 1 and audit.detail["year"] == 2026


def test_the_settlement_is_idempotent_per_account_and_year():
    account = _account()
    jobs.settle_interest(2026, TODAY, "staff:admin", lambda *a: None)
    balance = Account.get_by_id(account.id).balance
    count = DepositRecord.select().count()
    again = jobs.settle_interest(2026, TODAY, "staff:admin", lambda *a: None)
    assert again.settled == 0 and again.total == Decimal("0.00")
    assert Account.get_by_id(account.id).balance == balance
    assert DepositRecord.select().count() == count


def test_closed_and_new_accounts_are_left_alone():
    closed = _account(status="销户")
    new = _account(opened=date(2026, 7, 1), last=None)
    jobs.settle_interest(2026, TODAY, "staff:admin", lambda *a: None)
    assert Account.get_by_id(closed.id).last_interest_on == date(2025, 6, 30)
    assert Account.get_by_id(new.id).last_interest_on is None
    assert all(r.posted_on != date(2026, 6, 30) for r in _records(closed) + _records(new))


def test_a_never_settled_account_earns_from_its_opening():
    account = _account(opened=date(2025, 6, 30), last=None)
    jobs.settle_interest(2026, TODAY, "staff:admin", lambda *a: None)
    assert Account.get_by_id(account.id).balance == Decimal("1400.00") + _expected_interest()


def test_the_settlement_day_must_have_come():
    with pytest.raises(jobs.Refused, match="未到"):
        jobs.settle_interest(2026, date(2026, 6, 29), "staff:admin", lambda *a: None)
    with pytest.raises(jobs.Refused):
        jobs.settle_interest(1999, TODAY, "staff:admin", lambda *a: None)


def test_the_settlement_as_a_job():
    account = _account()
    job = jobs.enqueue(staff("admin"), "interest_settlement", {"year": 2026})
    done = jobs.work_once(TODAY)
    assert (done.id, done.status, done.progress) == (job.id, "done", 100)
    assert done.message.startswith("2026 年度结息完成：结息 1 户")
    assert Account.get_by_id(account.id).last_interest_on == date(2026, 6, 30)


# --- the worker and the CLI ---------------------------------------------------------------


def test_worker_once_runs_what_is_queued(runner):
    job = jobs.enqueue(staff("official"), "dashboard_export")
    result = runner.invoke(args=["jobs", "worker", "--once"])
    assert result.exit_code == 0, result.output
    assert "1 job(s) run" in result.output
    done = Job.get_by_id(job.id)
    assert done.status == "done" and done.result_name.endswith(".xlsx")
    name, data = jobs.result_file(staff("official"), job.id)
    assert "按事项" in load_workbook(BytesIO(data)).sheetnames
    assert runner.invoke(args=["jobs", "worker", "--once"]).output.strip() == "0 job(s) run"


def test_running_the_settlement_directly_shows_a_progress_bar(runner):
    _account()
    result = runner.invoke(
        args=["jobs", "run", "interest_settlement", "--year", "2026", "--date", TODAY.isoformat()]
    )
    assert result.exit_code == 0, result.output
    assert result.output.startswith("年度结息")  # click's bar (drawn in full on a terminal)
    assert "结息 1 户" in result.output
    refused = runner.invoke(
        args=["jobs", "run", "interest_settlement", "--year", "2026", "--date", "2026-06-29"]
    )
    assert refused.exit_code != 0 and "未到" in refused.output


def test_running_an_export_directly_writes_the_file(runner, tmp_path):
    out = tmp_path / "ledger.xlsx"
    result = runner.invoke(
        args=["jobs", "run", "ledger_export", "--user", "liaison", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert load_workbook(out).active.title == "业务办理台账"


# --- the exports --------------------------------------------------------------------------


def _cells(data: bytes):
    return [list(row) for row in load_workbook(BytesIO(data)).active.iter_rows(values_only=True)]


def test_the_background_ledger_export_is_the_same_file(client):
    login_staff(client, "liaison")
    direct = client.get("/staff/ledger/export.xlsx?direction=inbound")
    r = client.post("/staff/jobs/ledger-export", data={"direction": "inbound"})
    assert r.status_code == 303
    job = Job.get(Job.kind == "ledger_export")
    assert (
        job.params == {"direction": "inbound"} and r.headers["Location"] == f"/staff/jobs/{job.id}"
    )
    jobs.work_once(TODAY)
    download = client.get(f"/staff/jobs/{job.id}/download")
    assert download.status_code == 200
    assert download.headers["Content-Type"] == jobs.XLSX
    assert _cells(download.data) == _cells(direct.data)
    assert len(_cells(download.data)) > 1


def test_the_ledger_page_offers_the_background_export(client):
    login_staff(client, "handler")
    html = soup(client.get("/staff/ledger/?item=purchase_withdrawal"))
    form = html.select_one(".ledger-bg-export form")
    assert form["action"] == "/staff/jobs/ledger-export"
    assert form.select_one("input[name=item]")["value"] == "purchase_withdrawal"


def test_an_invalid_ledger_filter_starts_nothing(client):
    login_staff(client, "liaison")
    r = client.post("/staff/jobs/ledger-export", data={"date_from": "not-a-date"})
    assert r.status_code == 303 and Job.select().count() == 0


# --- the pages ----------------------------------------------------------------------------


def test_the_admin_starts_the_settlement_and_watches_it(client):
    login_staff(client, "admin")
    page = soup(client.get("/staff/jobs/"))
    options = [o["value"] for o in page.select("select[name=year] option")]
    assert options == ["2026", "2025", "2024"]
    r = client.post("/staff/jobs/settlement", data={"year": "2026"})
    assert r.status_code == 303
    job = Job.get(Job.kind == "interest_settlement")
    # a second click points at the running job instead of starting another
    r2 = client.post("/staff/jobs/settlement", data={"year": "2026"}, headers=HX)
    assert r2.headers["HX-Location"] == f"/staff/jobs/{job.id}" and Job.select().count() == 1

    full = client.get(f"/staff/jobs/{job.id}")
    assert full.status_code == 200 and "HX-Request" in full.headers["Vary"]
    bar = soup(full).select_one("progress#job-bar")
    assert (bar["max"], bar["value"]) == ("100", "0")
    polling = client.get(f"/staff/jobs/{job.id}", headers={**HX, "X-Portal-Poll": "1"})
    assert polling.status_code == 200
    live = soup(polling).select_one("#job-progress")
    assert live["hx-trigger"] == "every 1s" and live["hx-headers"] == '{"X-Portal-Poll": "1"}'
    assert soup(polling).select_one("html") is None

    jobs.work_once(TODAY)
    final = client.get(f"/staff/jobs/{job.id}", headers=HX)
    assert final.status_code == 286  # htmx stops polling
    done = soup(final).select_one("#job-progress")
    assert not done.has_attr("hx-trigger")
    assert done.select_one("progress")["value"] == "100"
    assert "年度结息完成" in done.select_one("#job-status").text
    assert client.get(f"/staff/jobs/{job.id}").status_code == 200  # the page itself: 200


def test_a_wrong_settlement_year_is_explained(client):
    login_staff(client, "admin")
    r = client.post("/staff/jobs/settlement", data={"year": "2031"})
    assert r.status_code == 422
    assert soup(r).select_one("#year-error").text == "请选择正确的结息年度"
    assert Job.select().count() == 0


@pytest.mark.parametrize(
    "username, url, status",
    [
        ("handler", "/staff/jobs/settlement", 403),
        ("official", "/staff/jobs/settlement", 403),
        ("handler", "/staff/jobs/dashboard-export", 403),
        ("admin", "/staff/jobs/ledger-export", 403),
        ("official", "/staff/jobs/dashboard-export", 303),
    ],
)
def test_who_may_start_which_job(client, username, url, status):
    login_staff(client, username)
    assert client.post(url, data={"year": "2026"}).status_code == status


def test_someone_elses_job_page_is_a_404(client, test_kinds):
    job = jobs.enqueue(staff("liaison"), "ledger_export")
    jobs.work_once(TODAY)
    login_staff(client, "handler")
    assert client.get(f"/staff/jobs/{job.id}").status_code == 404
    assert client.get(f"/staff/jobs/{job.id}", headers=HX).status_code == 404
    assert client.get(f"/staff/jobs/{job.id}/download").status_code == 404


def test_a_job_without_a_file_has_no_download(client):
    job = jobs.enqueue(staff("admin"), "interest_settlement", {"year": 2026})
    login_staff(client, "admin")
    assert client.get(f"/staff/jobs/{job.id}/download").status_code == 404  # queued
    jobs.work_once(TODAY)
    assert client.get(f"/staff/jobs/{job.id}/download").status_code == 404  # no file
    row = soup(client.get("/staff/jobs/")).select_one(f"#job-{job.id}")
    assert "已完成" in row.text


def test_the_staff_navigation_links_the_jobs_page(client):
    login_staff(client, "admin")
    links = [a.text.strip() for a in soup(client.get("/staff/jobs/")).select("nav a")]
    assert "后台任务" in links


def test_the_demo_load_is_offered_in_development_only(client, app, monkeypatch):
    login_staff(client, "admin")
    assert (
        soup(client.get("/staff/jobs/")).select_one("form[action='/staff/jobs/demo-large']") is None
    )
    assert client.post("/staff/jobs/demo-large").status_code == 404  # testing, not development
    monkeypatch.setitem(app.config, "ENV", "development")
    assert soup(client.get("/staff/jobs/")).select_one("form[action='/staff/jobs/demo-large']")
    assert client.post("/staff/jobs/demo-large").status_code == 303
    assert Job.get().params == {"scale": 1.0}


def test_the_dashboard_offers_the_background_export_with_the_same_sheets(client):
    login_staff(client, "official")
    page = soup(client.get("/staff/dashboard/"))
    assert page.select_one("form[action='/staff/jobs/dashboard-export'] button").text == "后台导出"
    direct = load_workbook(BytesIO(client.get("/staff/dashboard/export.xlsx").data))
    assert client.post("/staff/jobs/dashboard-export").status_code == 303
    from portal.filters import local_today

    job = jobs.work_once(local_today())  # the same day as the page's own export
    assert job.status == "done"
    background = load_workbook(BytesIO(client.get(f"/staff/jobs/{job.id}/download").data))
    assert background.sheetnames == direct.sheetnames and "服务评价" in direct.sheetnames
    for name in direct.sheetnames:
        rows = list(direct[name].iter_rows(values_only=True))
        assert list(background[name].iter_rows(values_only=True)) == rows
