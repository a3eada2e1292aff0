"""Background jobs: long work done by a worker process, with progress.

A job is a row in ``job`` (kind, params, status queued → running → done / failed, progress
0–100, a message, the stored result). The web side enqueues (``enqueue``) and shows the progress
bar; the worker (``portal.jobs_worker``, ``flask --app portal jobs worker``) claims the oldest
queued job with a conditional update, runs it and records the outcome. A running job holds a
lease (``locked_until``) that each progress report extends: when a worker dies, another takes
the job over after the lease, and every kind is safe to run again (exports are rebuilt, the
interest settlement skips the accounts already settled). A job that fails ``MAX_ATTEMPTS``
times that way is marked failed.

Kinds (``KINDS``): the ledger export over any range (``ledger_export``), the dashboard export
(``dashboard_export``), the annual interest settlement on 30 June (``interest_settlement``),
the daily deadline reminders (``deadline_reminders``, enqueued by the worker once a day) and,
in development, the large demo data load (``demo_large``, portal/demo_large.py).
"""

from __future__ import annotations

import logging
import re
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from io import BytesIO

from portal.db import locked, write_tx
from portal.models import Account, DepositRecord, Job, StaffUser, utcnow
from portal.rules.money import deposit_interest
from portal.services import audit, notices

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=2)
MAX_ATTEMPTS = 3
REPORT_EVERY = 0.5  # seconds between progress writes
STATUS_LABELS = {"queued": "排队中", "running": "进行中", "done": "已完成", "failed": "失败"}
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
SETTLE_CHUNK = 200

Progress = Callable[[int, str], None]  # (percent 0-100, message)


class Refused(Exception):
    """The job cannot be started or cannot finish; ``message`` is for the user."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


class NotFound(LookupError):
    """No such job for this user (the view answers 404)."""


@dataclass
class Result:
    message: str
    data: bytes | None = None
    filename: str = ""


@dataclass(frozen=True)
class Kind:
    code: str
    label: str
    roles: tuple[str, ...]  # who may start it (empty: the system only)
    run: Callable[[dict, StaffUser | None, date, Progress], Result]


# --- the kinds ----------------------------------------------------------------------------


def ledger_query(params: dict):
    from portal.services.counter import LedgerQuery

    def day(key):
        value = params.get(key)
        return date.fromisoformat(value) if value else None

    return LedgerQuery(
        date_from=day("date_from"),
        date_to=day("date_to"),
        item=params.get("item", ""),
        direction=params.get("direction", ""),
        state=params.get("state", ""),
        center=params.get("center", ""),
    )


def run_ledger_export(params: dict, user: StaffUser | None, today: date, progress) -> Result:
    """The same workbook as the ledger's own export, without its row limit."""
    from portal.services import counter

    if user is None:
        raise Refused("台账导出须由工作人员发起")
    query = ledger_query(params)
    progress(5, "正在查询台账")
    data = counter.ledger_xlsx(
        user,
        f"staff:{user.username}",
        query,
        today,
        limit=None,
        progress=lambda pct: progress(pct, "正在生成 Excel"),
    )
    return Result("台账导出完成", data, f"业务办理台账-{today:%Y%m%d}.xlsx")


def dashboard_workbook(dash) -> bytes:
    """The dashboard's figures as the Excel workbook its page exports."""
    from openpyxl import Workbook

    from portal.services import dashboard

    book = Workbook()
    book.remove(book.active)
    for title, rows in dashboard.rows_for_export(dash).items():
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(row)
    buffer = BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def run_dashboard_export(params: dict, user: StaffUser | None, today: date, progress) -> Result:
    from portal.services import dashboard, settings

    progress(10, "正在统计")
    dash = dashboard.build(today, settings.holiday_overrides())
    progress(80, "正在生成 Excel")
    data = dashboard_workbook(dash)
    if user is not None:
        with write_tx():
            audit.record(f"staff:{user.username}", "dashboard.export", "dashboard", "")
    return Result("统计导出完成", data, f"dashboard-{today:%Y%m%d}.xlsx")


def run_deadline_reminders(params: dict, user: StaffUser | None, today: date, progress) -> Result:
    from portal.services import settings

    day = date.fromisoformat(params["day"]) if params.get("day") else today
    progress(10, "正在查找即将到期的办件")
    done = notices.remind_deadlines(day, settings.holiday_overrides())
    return Result(f"到期提醒：{done.cases} 件办件，发出 {done.notices} 条消息")


_DEMO_STAGES = (  # (label in the demo loader's log, first percent, share)
    ("depositors", 5, 60),
    ("loans", 65, 20),
    ("proxy cases", 85, 14),
)
_FRACTION = re.compile(r"([a-z ]+?)\s+([\d,]+)/([\d,]+)")


def demo_percent(text: str) -> int | None:
    """The load's percentage from a line of portal.demo_large's log, None when unknown."""
    if "done:" in text:
        return 100
    if "employers:" in text:
        return 5
    match = _FRACTION.search(text)
    if match:
        stage = match.group(1).strip()
        done, total = (int(g.replace(",", "")) for g in match.group(2, 3))
        for name, first, share in _DEMO_STAGES:
            if stage.endswith(name) and total:
                return first + share * min(done, total) // total
    return None


def run_demo_large(params: dict, user: StaffUser | None, today: date, progress) -> Result:
    """The large demo data (portal/demo_large.py, issue 10) on top of the small demo."""
    from portal import demo, demo_large
    from portal.models import Center

    scale = float(params.get("scale") or 1.0)
    last = {"pct": 0}

    def log_line(text: str) -> None:
        pct = demo_percent(text)
        if pct is not None:
            last["pct"] = max(last["pct"], pct)
        progress(last["pct"], text.strip()[:300])

    started = time.monotonic()
    if not Center.select().exists():
        summary = demo_large.load(today, log=log_line, scale=scale)
    else:  # the small demo is there (someone is logged in): add the bulk rows to it
        demo_large._check_columns()
        bulk = demo_large._Bulk(today, demo.SEED, demo_large._Progress(log_line), scale)
        bulk.run()
        summary = bulk.summary(time.monotonic() - started)
    return Result(f"演示数据已加载：缴存人 {summary.depositors:,} 名，办件 {summary.cases:,} 件")


# --- the annual interest settlement (结息) --------------------------------------------------


@dataclass
class Settlement:
    year: int
    settled: int = 0  # accounts that got their interest (or a zero settlement)
    skipped: int = 0  # already settled for the year
    total: Decimal = Decimal("0.00")

    @property
    def message(self) -> str:
        return (
            f"{self.year} 年度结息完成：结息 {self.settled} 户，合计 {self.total:,.2f} 元；"
            f"已结息跳过 {self.skipped} 户"
        )


def settlement_day(year: int) -> date:
    return date(year, 6, 30)


def check_settlement_year(year: int, today: date) -> date:
    if not 2000 <= year <= today.year:
        raise Refused("请选择正确的结息年度", "year")
    day = settlement_day(year)
    if day > today:
        raise Refused(f"{year} 年度结息日（{year} 年 6 月 30 日）未到", "year")
    return day


def _settle_account(
    account: Account, records: list[tuple[date, Decimal]], day: date, rate: Decimal
) -> Decimal | None:
    """One account's interest for the year ending ``day`` (30 June): from its last settlement
    (or its opening) to ``day`` by the 积数 method, posted as a 结息 record dated ``day``.
    ``records`` are its (posted_on, balance_after) up to ``day``, in order. None when the
    account is closed, opened later, or already settled for the year."""
    if account.status == "销户" or account.opened_on >= day:
        return None
    if account.last_interest_on and account.last_interest_on >= day:
        return None
    since = account.last_interest_on or account.opened_on
    interest = max(deposit_interest(records, since, day, rate), Decimal("0.00"))
    fields = {"last_interest_on": day, "version": account.version + 1}
    if interest > 0:
        on_day = records[-1][1] if records else Decimal("0.00")
        DepositRecord.create(
            account=account.id,
            kind="结息",
            posted_on=day,
            amount=interest,
            balance_after=on_day + interest,
            memo=f"{day.year} 年度结息",
        )
        # records posted after the settlement day (a late run) follow the credited interest
        DepositRecord.update(balance_after=DepositRecord.balance_after + interest).where(
            (DepositRecord.account == account.id) & (DepositRecord.posted_on > day)
        ).execute()
        fields["balance"] = account.balance + interest
    won = (
        Account.update(**fields)
        .where((Account.id == account.id) & (Account.version == account.version))
        .execute()
    )
    if not won:  # cannot happen under the lock
        raise Refused("账户信息已变化，请重新运行结息")
    return interest


def _settle_chunk(ids: list[int], day: date, rate: Decimal, result: Settlement) -> None:
    """A chunk of accounts in one transaction: the rows locked, their records read at once."""
    accounts = {
        a.id: a for a in locked(Account.select().where(Account.id.in_(ids)).order_by(Account.id))
    }
    records: dict[int, list[tuple[date, Decimal]]] = defaultdict(list)
    for account_id, posted_on, after in (
        DepositRecord.select(
            DepositRecord.account, DepositRecord.posted_on, DepositRecord.balance_after
        )
        .where(DepositRecord.account.in_(ids) & (DepositRecord.posted_on <= day))
        .order_by(DepositRecord.account, DepositRecord.posted_on, DepositRecord.id)
        .tuples()
    ):
        records[account_id].append((posted_on, after))
    for account_id in ids:
        account = accounts.get(account_id)
        interest = (
            None if account is None else _settle_account(account, records[account_id], day, rate)
        )
        if interest is None:
            result.skipped += 1
        else:
            result.settled += 1
            result.total += interest


def settle_interest(year: int, today: date, actor: str, progress: Progress) -> Settlement:
    """结息: every open account's interest for the year to 30 June ``year``; idempotent per
    account and year (an account whose ``last_interest_on`` has reached the day is skipped)."""
    from portal.services.payouts import deposit_rate

    day = check_settlement_year(year, today)
    rate = deposit_rate(day)
    ids = [
        a
        for (a,) in Account.select(Account.id)
        .where((Account.status != "销户") & (Account.opened_on < day))
        .order_by(Account.id)
        .tuples()
    ]
    result = Settlement(year)
    progress(1, f"共 {len(ids)} 户待核对")
    for start in range(0, len(ids), SETTLE_CHUNK):
        with write_tx():
            _settle_chunk(ids[start : start + SETTLE_CHUNK], day, rate, result)
        done = min(start + SETTLE_CHUNK, len(ids))
        progress(1 + 98 * done // max(1, len(ids)), f"已处理 {done}/{len(ids)} 户")
    with write_tx():
        audit.record(
            actor,
            "interest.settlement",
            "account",
            "",
            year=year,
            rate=str(rate),
            settled=result.settled,
            skipped=result.skipped,
            total=str(result.total),
        )
    return result


def run_interest_settlement(params: dict, user: StaffUser | None, today: date, progress) -> Result:
    try:
        year = int(params.get("year"))
    except (TypeError, ValueError):
        raise Refused("请选择正确的结息年度", "year") from None
    actor = f"staff:{user.username}" if user else "system"
    return Result(settle_interest(year, today, actor, progress).message)


KINDS: dict[str, Kind] = {
    k.code: k
    for k in (
        Kind(
            "ledger_export",
            "台账导出",
            ("liaison", "clerk", "handler", "auditor"),
            run_ledger_export,
        ),
        Kind("dashboard_export", "统计导出", ("admin", "official"), run_dashboard_export),
        Kind("interest_settlement", "年度结息", ("admin",), run_interest_settlement),
        Kind("deadline_reminders", "到期提醒", (), run_deadline_reminders),
        Kind("demo_large", "大规模演示数据", ("admin",), run_demo_large),
    )
}


def kind_label(code: str) -> str:
    return KINDS[code].label if code in KINDS else code


# --- enqueue and read ---------------------------------------------------------------------


def enqueue(user: StaffUser | None, kind: str, params: dict | None = None) -> Job:
    """Queue a job; ``user`` None is the system (the daily reminders)."""
    spec = KINDS.get(kind)
    if spec is None:
        raise Refused("没有这种后台任务")
    if user is not None and user.role not in spec.roles:
        raise Refused("您不能发起这项后台任务")
    params = dict(params or {})
    with write_tx():
        job = Job.create(kind=kind, params=params, created_by=user)
        audit.record(
            f"staff:{user.username}" if user else "system",
            "job.enqueue",
            "job",
            job.id,
            kind=kind,
            params=params,
        )
    return job


def _visible(user: StaffUser):
    """A job is its creator's; admins also see the system's (no personal data in those)."""
    clause = Job.created_by == user.id
    if user.role == "admin":
        clause = clause | Job.created_by.is_null()
    return clause


def get_for(user: StaffUser, job_id: int) -> Job:
    job = Job.get_or_none((Job.id == job_id) & _visible(user))
    if job is None:
        raise NotFound(job_id)
    return job


def recent(user: StaffUser, limit: int = 20) -> list[Job]:
    return list(
        Job.select()
        .where(_visible(user))
        .order_by(Job.created_at.desc(), Job.id.desc())
        .limit(limit)
    )


def active(user: StaffUser, kind: str) -> Job | None:
    """The user's queued or running job of this kind (to point at instead of a second one)."""
    return (
        Job.select()
        .where(_visible(user) & (Job.kind == kind) & Job.status.in_(("queued", "running")))
        .order_by(Job.id.desc())
        .first()
    )


def result_file(user: StaffUser, job_id: int) -> tuple[str, bytes]:
    """The finished job's file (its name and bytes); NotFound when there is none."""
    from portal.storage import get_storage

    job = get_for(user, job_id)
    if job.status != "done" or not job.result_key:
        raise NotFound(job_id)
    data = get_storage().get(job.result_key)
    with write_tx():
        audit.record(f"staff:{user.username}", "job.download", "job", job.id, kind=job.kind)
    return job.result_name, data


# --- the worker side ----------------------------------------------------------------------


def claim(now=None) -> Job | None:
    """Take the oldest queued job (or a running one whose worker's lease expired)."""
    now = now or utcnow()
    with write_tx():
        for candidate in (
            Job.select()
            .where(
                (Job.status == "queued") | ((Job.status == "running") & (Job.locked_until < now))
            )
            .order_by(Job.id)
            .limit(5)
        ):
            if candidate.attempts >= MAX_ATTEMPTS:
                _finish(candidate, "failed", "任务多次中断，已停止；请重新发起", now=now)
                continue
            won = (
                Job.update(
                    status="running",
                    started_at=candidate.started_at or now,
                    locked_until=now + LEASE,
                    attempts=Job.attempts + 1,
                    updated_at=now,
                )
                .where(
                    (Job.id == candidate.id)
                    & (Job.status == candidate.status)
                    & (Job.attempts == candidate.attempts)
                )
                .execute()
            )
            if won:
                return Job.get_by_id(candidate.id)
    return None


def reporter(job: Job) -> Progress:
    """A progress callback that writes the job's progress (at most every REPORT_EVERY s, and
    whenever the percentage grows) and extends its lease."""
    state = {"pct": -1, "at": 0.0}

    def report(percent: int, message: str = "") -> None:
        percent = max(0, min(99, int(percent)))  # 100 is reached by finishing
        moment = time.monotonic()
        if percent <= state["pct"] and moment - state["at"] < REPORT_EVERY:
            return
        state.update(pct=max(percent, state["pct"]), at=moment)
        now = utcnow()
        with write_tx():
            Job.update(
                progress=max(percent, job.progress),
                message=message[:300],
                locked_until=now + LEASE,
                updated_at=now,
            ).where((Job.id == job.id) & (Job.status == "running")).execute()
        job.progress = max(percent, job.progress)

    return report


def _finish(job: Job, status: str, message: str, now=None, **fields) -> None:
    now = now or utcnow()
    Job.update(
        status=status,
        message=message[:300],
        finished_at=now,
        updated_at=now,
        locked_until=None,
        **fields,
    ).where(Job.id == job.id).execute()


def run(job: Job, today: date) -> Job:
    """Run a claimed job to its end: done with its result, or failed with the reason."""
    from portal.storage import get_storage

    spec = KINDS.get(job.kind)
    user = StaffUser.get_or_none(StaffUser.id == job.created_by_id) if job.created_by_id else None
    try:
        if spec is None:
            raise Refused("没有这种后台任务")
        result = spec.run(job.params or {}, user, today, reporter(job))
    except Refused as exc:
        with write_tx():
            _finish(job, "failed", exc.message)
    except Exception:
        log.exception("job %s (%s) failed", job.id, job.kind)
        with write_tx():
            _finish(job, "failed", "任务因系统错误失败，请稍后重新发起")
    else:
        fields = {"progress": 100}
        if result.data is not None:
            suffix = "." + result.filename.rsplit(".", 1)[-1] if "." in result.filename else ""
            key, _digest = get_storage().put(result.data, "jobs", suffix)
            fields.update(result_key=key, result_name=result.filename)
        with write_tx():
            _finish(job, "done", result.message, **fields)
    job = Job.get_by_id(job.id)
    if user is not None:
        with write_tx():
            notices.notify(
                ("staff", user.id),
                f"后台任务{STATUS_LABELS[job.status]}：{kind_label(job.kind)}",
                job.message,
                f"/staff/jobs/{job.id}",
                f"job:{job.id}:{job.status}",
            )
    return job


def work_once(today: date) -> Job | None:
    """Claim and run one job; None when there was nothing to do."""
    job = claim()
    if job is None:
        return None
    return run(job, today)


def ensure_daily(today: date) -> Job | None:
    """Queue today's deadline reminders unless they are queued or done already."""
    day = today.isoformat()
    for job in Job.select().where(
        (Job.kind == "deadline_reminders")
        & Job.created_by.is_null()
        & (Job.created_at >= utcnow() - timedelta(days=2))
    ):
        if (job.params or {}).get("day") == day and job.status != "failed":
            return None
    return enqueue(None, "deadline_reminders", {"day": day})


@dataclass
class Row:
    """A job as the pages show it."""

    job: Job
    label: str
    status_label: str

    @property
    def finished(self) -> bool:
        return self.job.status in ("done", "failed")

    @property
    def downloadable(self) -> bool:
        return self.job.status == "done" and bool(self.job.result_key)


def row(job: Job) -> Row:
    return Row(job, kind_label(job.kind), STATUS_LABELS.get(job.status, job.status))
