"""A center-sized demo dataset for the benchmark (``flask seed-demo --large``).

The small demo (``portal.demo``, 500 depositors, so its example logins keep working) plus bulk
rows up to: 100,000 depositors, 2,000 employers, about 6 million monthly deposit records (with
the yearly interest lines and some withdrawals on top), 20,000 loans with their repayments, and
50,000 proxy cases of which 5,000 are open.

Everything is deterministic for a seed and a day, fictional and valid: resident IDs carry their
MOD 11-2 check character, credit codes their GB 32100 / GB 11714 ones, bank cards their Luhn
digit (``portal.rules.ids``). Money and interest come from ``portal.rules.money``.

Speed: rows are built as tuples and written in big batches, each batch in one transaction
(``executemany`` on SQLite, ``COPY`` on PostgreSQL); every generated account shares one password
hash (the small demo's). On a 2-core machine the whole load takes a few minutes.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache

from portal import crypto, demo
from portal import items as item_config
from portal.db import db, is_postgres
from portal.models import (
    Account,
    CaseEvent,
    Center,
    Department,
    Depositor,
    DepositRecord,
    Employer,
    EmployerOperator,
    Loan,
    LoanRepayment,
    ProxyCase,
    StaffUser,
)
from portal.rules import casestates
from portal.rules.casestates import INBOUND, OUTBOUND
from portal.rules.dates import add_months
from portal.rules.ids import (
    luhn_check_digit,
    org_code_check_char,
    resident_id_check_char,
    uscc_check_char,
)
from portal.rules.money import deposit_interest, quantize, rate_for, repayment_schedule
from portal.rules.workdays import add_workdays, is_workday

DEPOSITORS = 100_000
EMPLOYERS = 2_000
LOANS = 20_000
CASES = 50_000
OPEN_CASES = 5_000
SMALL_SIZE = 500  # the small demo underneath
MAX_MONTHS = 120  # the longest deposit history: 10 years
CHUNK = 2_500  # depositors per transaction (about 170,000 deposit records)
ROW_BATCH = 5_000  # rows per executemany / COPY flush

OPEN_STATES = {
    OUTBOUND: (("accepted", 30), ("verifying", 25), ("transmitted", 25), ("feedback", 10)),
    INBOUND: (("received", 15), ("distributed", 20), ("processing", 35), ("done", 15)),
}
SUPPLEMENT_SHARE = 10  # percent of open cases waiting in 待补正
REJECTED_SHARE = 10  # percent of closed cases 退回


@dataclass
class LargeSummary:
    employers: int
    depositors: int
    deposit_records: int
    monthly_records: int
    loans: int
    repayments: int
    cases: int
    open_cases: int
    seconds: float


# --- writing rows fast ----------------------------------------------------------------------


def _columns(model) -> list[str]:
    return [f.column_name for f in model._meta.sorted_fields]


class _Writer:
    """Writes tuples (in the model's column order) in batches: ``executemany`` on SQLite,
    ``COPY ... FROM STDIN`` on PostgreSQL. Values are already database values: ints for money
    (fen) and booleans, ISO text for dates and times, JSON text."""

    def __init__(self):
        self.pg = is_postgres()
        self.written: dict[str, int] = {}  # rows copied per table (PostgreSQL)
        self.analyzed: dict[str, int] = {}

    def _fresh_plans(self, table: str, count: int) -> None:
        """PostgreSQL keeps the plans of the foreign-key checks for the whole session, made
        while the referenced tables were tiny (a sequential scan), and the pooled connection
        keeps the session for the whole load: 2,000 employers read in full for each of
        seven million deposit records. ANALYZE each table whenever it has grown fourfold
        since its last one: the new statistics invalidate those plans (index lookups)."""
        total = self.written[table] = self.written.get(table, 0) + count
        if total >= 4 * max(self.analyzed.get(table, 0), 250):
            db.execute_sql(f'ANALYZE "{table}"')
            self.analyzed[table] = total

    def write(self, model, rows: Iterable[tuple], with_id: bool = True) -> int:
        columns = _columns(model)
        if not with_id:
            columns = columns[1:]
        table = model._meta.table_name
        names = ", ".join(f'"{c}"' for c in columns)
        count = 0
        if self.pg:
            with db.connection().cursor() as cursor:
                with cursor.copy(f'COPY "{table}" ({names}) FROM STDIN') as copy:
                    for row in rows:
                        copy.write_row(row)
                        count += 1
            self._fresh_plans(table, count)
            return count
        sql = f'INSERT INTO "{table}" ({names}) VALUES ({", ".join("?" * len(columns))})'  # noqa: S608  # nosec B608 - our own table names
        conn = db.connection()
        batch: list[tuple] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= ROW_BATCH:
                conn.executemany(sql, batch)
                count += len(batch)
                batch = []
        if batch:
            conn.executemany(sql, batch)
            count += len(batch)
        return count

    def fix_sequences(self, models) -> None:
        """After explicit ids: move PostgreSQL's serial sequences past them (SQLite's
        AUTOINCREMENT follows by itself)."""
        if not self.pg:
            return
        for model in models:
            table = model._meta.table_name
            db.execute_sql(
                f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), "  # noqa: S608  # nosec B608 - our own table names
                f'COALESCE((SELECT MAX("id") FROM "{table}"), 1))'
            )


@contextmanager
def _indexes_rebuilt_after(*models):
    """Drop the plain (non-unique) indexes of these tables for the bulk load and build them
    again afterwards (much faster than keeping them up to date row by row). The definitions
    come from the database itself, so they stay whatever the migrations made them."""
    tables = [m._meta.table_name for m in models]
    if is_postgres():
        rows = db.execute_sql(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
            "AND tablename = ANY(%s) AND indexdef NOT LIKE 'CREATE UNIQUE%%'",
            (tables,),
        ).fetchall()
    else:
        marks = ", ".join("?" * len(tables))
        rows = db.execute_sql(
            f"SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "  # noqa: S608  # nosec B608 - our own table names
            f"AND tbl_name IN ({marks}) AND sql NOT LIKE 'CREATE UNIQUE%'",
            tables,
        ).fetchall()
    for name, _definition in rows:
        db.execute_sql(f'DROP INDEX "{name}"')
    try:
        yield
    finally:
        for _name, definition in rows:
            db.execute_sql(definition)


def _next_id(model) -> int:
    return (model.select(model.id).order_by(model.id.desc()).scalar() or 0) + 1


def _fen(amount: Decimal) -> int:
    """Decimal yuan (already to the fen) as integer fen."""
    return int(amount.scaleb(2))


def _json(value) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


@lru_cache(maxsize=8192)
def _iso(d: date) -> str:
    return d.isoformat()


def _stamp(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%d %H:%M:%S")


@lru_cache(maxsize=8192)
def _deadline(start: date, n: int) -> date:
    return add_workdays(start, n)


@lru_cache(maxsize=16384)
def _workday(d: date) -> bool:
    return is_workday(d)


@lru_cache(maxsize=16384)
def _event_time(start: date, today: date, i: int, steps: int) -> datetime:
    """``demo._event_time`` with the working days looked up once per date."""
    span, d = 0, start
    while d < today and span < 12:
        d += timedelta(days=1)
        if _workday(d):
            span += 1
    day = _deadline(start, round(i * span / max(1, steps - 1))) if span else start
    return datetime(day.year, day.month, day.day, 2 + i, 0)


class _Progress:
    def __init__(self, log: Callable[[str], None]):
        self.log = log
        self.started = time.monotonic()

    def __call__(self, text: str) -> None:
        self.log(f"  [{time.monotonic() - self.started:6.1f}s] {text}")


# --- identifiers ----------------------------------------------------------------------------


class _Ids:
    """Deterministic identifiers that collide neither with each other nor with the small demo
    (checked against the blind indexes already in the database)."""

    def __init__(self, r: random.Random):
        self.r = r
        self.taken = {v for (v,) in Depositor.select(Depositor.resident_id_index).tuples()} | {
            v for (v,) in EmployerOperator.select(EmployerOperator.resident_id_index).tuples()
        }
        self.used: set[str] = set()

    def resident_id(self, region: str, birth: date, sex: str) -> str:
        while True:
            seq = self.r.randrange(0, 100) * 10 + self.r.choice(
                (1, 3, 5, 7, 9) if sex == "M" else (0, 2, 4, 6, 8)
            )
            first17 = f"{region}{birth:%Y%m%d}{seq:03d}"
            rid = first17 + resident_id_check_char(first17)
            if rid in self.used:
                continue
            self.used.add(rid)
            if crypto.blind_index(rid, "resident_id") in self.taken:
                continue
            return rid

    def card(self) -> str:
        body = "621700" + "".join(self.r.choice("0123456789") for _ in range(12))
        return body + luhn_check_digit(body)

    @staticmethod
    def phone(n: int) -> str:
        return f"1{'35789'[n % 5]}{(n * 7919) % 1_000_000_000:09d}"

    @staticmethod
    def uscc(region: str, n: int) -> str:
        """A credit code whose organisation code is "MB" + ``n`` in base 31 (the small demo's
        start with "MA", so they never meet)."""
        alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
        digits = ""
        for _ in range(6):
            n, rem = divmod(n, len(alphabet))
            digits = alphabet[rem] + digits
        body = "MB" + digits
        org = body + org_code_check_char(body)
        first17 = f"91{region}{org}"
        return first17 + uscc_check_char(first17)


def _name(r: random.Random, sex: str) -> str:
    given = demo.GIVEN_M if sex == "M" else demo.GIVEN_F
    text = r.choice(demo.SURNAMES) + r.choice(given)
    return text + r.choice(given) if r.random() < 0.6 else text


# --- the load -------------------------------------------------------------------------------


def load(
    today: date,
    seed: int = demo.SEED,
    log: Callable[[str], None] = print,
    scale: float = 1.0,
) -> LargeSummary:
    """Load the small demo, then the bulk rows up to the center-sized totals (``scale``
    shrinks every total, for a quick try)."""
    _check_columns()
    started = time.monotonic()
    progress = _Progress(log)
    progress(f"small demo ({SMALL_SIZE} depositors)")
    demo.load(today, seed=seed, size=SMALL_SIZE, log=lambda _text: None)
    gen = _Bulk(today, seed, progress, scale)
    gen.run()
    progress("statistics for the query planner")
    if is_postgres():  # VACUUM also marks the pages all-visible: index-only scans work at once
        db.execute_sql("ANALYZE" if db.in_transaction() else "VACUUM ANALYZE")
    else:
        db.execute_sql("ANALYZE")
        db.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    summary = gen.summary(time.monotonic() - started)
    progress(f"done: {summary}")
    return summary


class _Bulk:
    def __init__(self, today: date, seed: int, progress: _Progress, scale: float):
        self.today = today
        self.r = random.Random(seed + 10)
        self.progress = progress
        self.writer = _Writer()
        self.ids = _Ids(random.Random(seed + 11))
        self.last_month = add_months(date(today.year, today.month, 1), -1)
        self.n_depositors = max(SMALL_SIZE + 10, int(DEPOSITORS * scale))
        self.n_employers = max(40, int(EMPLOYERS * scale))
        self.n_loans = max(100, int(LOANS * scale))
        self.n_cases = max(200, int(CASES * scale))
        self.n_open = max(40, int(OPEN_CASES * scale))
        self.pw_hash = (
            Depositor.select(Depositor.password_hash)
            .where(Depositor.password_hash.is_null(False))
            .order_by(Depositor.id)
            .scalar()
        )
        self.departments = {d.code: d for d in Department.select()}
        self.regions = {code: region for code, _n, region, _a in demo.DEPARTMENTS}
        self.staff = {s.username: s for s in StaffUser.select()}
        self.peers = list(Center.select().where(~Center.is_self).order_by(Center.id))
        self.employers: list[tuple[int, str, int, int]] = []  # id, dept code, ratio, index
        self.people: list[tuple] = []  # (depositor id, name, rid, phone, dept code, birth, ok)
        self.counts = dict(records=0, monthly=0, repayments=0)

    # employers ---------------------------------------------------------------------------

    def run(self) -> None:
        self._employers()
        with _indexes_rebuilt_after(DepositRecord, LoanRepayment):
            self._depositors()
            self._loans()
            self.progress("building the indexes of the deposit records and repayments")
        self._cases()
        self.writer.fix_sequences(
            [
                Employer,
                EmployerOperator,
                Depositor,
                Account,
                DepositRecord,
                Loan,
                LoanRepayment,
                ProxyCase,
                CaseEvent,
            ]
        )

    def _employers(self) -> None:
        existing = list(Employer.select().order_by(Employer.id))
        for e in existing:
            code = e.department.code if e.department_id else "AZQ"
            self.employers.append((e.id, code, e.employer_ratio, len(self.employers)))
        first_id = _next_id(Employer)
        op_id = _next_id(EmployerOperator)
        rows, operators = [], []
        now = _stamp(datetime(2025, 1, 1))
        for k in range(self.n_employers - len(existing)):
            r = self.r
            dept_code = demo.DEPARTMENTS[k % 3][0]
            region = self.regions[dept_code]
            ratio = r.choice([5, 8, 10, 12, 12, 12])
            opened = date(r.randint(2000, 2020), r.randint(1, 12), r.randint(1, 28))
            words = demo.COMPANY_WORDS
            name = (
                f"阿拉善{r.choice(['盟', '左旗', '右旗', '额济纳'])}"
                f"{words[k % len(words)]}{words[(k // len(words)) % len(words)]}"
                f"{'有限责任公司' if k % 3 else '股份有限公司'}"
            )
            eid = first_id + k
            rows.append(
                (
                    eid,
                    self.ids.uscc(region, k),
                    name,
                    f"{self.departments[dept_code].name[:5]}{r.choice(demo.STREETS)} "
                    f"{r.randint(1, 300)} 号",
                    _name(r, r.choice("MF")),
                    self.ids.phone(3_000_000 + k),
                    ratio,
                    ratio,
                    "正常",
                    self.departments[dept_code].id,
                    f"{region}02{k:06d}",
                    _iso(opened),
                    f"{self.last_month:%Y-%m}",
                    now,
                )
            )
            sex = r.choice("MF")
            birth = date(r.randint(1975, 1998), r.randint(1, 12), r.randint(1, 28))
            rid = self.ids.resident_id(region, birth, sex)
            operators.append(
                (
                    op_id + k,
                    eid,
                    crypto.seal(rid, "employer_operator.resident_id"),
                    crypto.blind_index(rid, "resident_id"),
                    _name(r, sex),
                    self.ids.phone(4_000_000 + k),
                    self.pw_hash,
                    1,
                    1,
                    now,
                    now,
                )
            )
            self.employers.append((eid, dept_code, ratio, len(self.employers)))
        with db.atomic():
            self.writer.write(Employer, rows)
            self.writer.write(EmployerOperator, operators)
        self.progress(f"employers: {len(self.employers):,}")

    # depositors, accounts, deposit records -----------------------------------------------

    def _depositors(self) -> None:
        self.small = list(
            Depositor.select(Depositor, Account)
            .join(Account, on=(Account.depositor == Depositor.id))
            .order_by(Depositor.id)
            .objects()
        )
        first = _next_id(Depositor)
        account_first = _next_id(Account)
        total = self.n_depositors - len(self.small)
        done = 0
        while done < total:
            size = min(CHUNK, total - done)
            with db.atomic():
                self._depositor_chunk(first + done, account_first + done, done, size)
            done += size
            self.progress(
                f"depositors {len(self.small) + done:,}/{self.n_depositors:,}, "
                f"deposit records {self.counts['records']:,}"
            )

    def _depositor_chunk(self, first_id: int, first_account: int, offset: int, size: int):
        depositors, accounts, records = [], [], []
        r = self.r
        created = _stamp(datetime(2025, 1, 1))
        for k in range(size):
            n = SMALL_SIZE + offset + k  # the small demo used 0 .. SMALL_SIZE - 1
            sex = "M" if r.random() < 0.55 else "F"
            year = r.randint(1968, 2001) if n % 50 else r.randint(1960, 1972)
            birth = date(year, r.randint(1, 12), r.randint(1, 28))
            category = "male" if sex == "M" else ("female_55" if r.random() < 0.4 else "female_50")
            emp_id, dept_code, ratio, emp_index = self.employers[n % len(self.employers)]
            dept = self.departments[dept_code]
            region = self.regions[dept_code]
            rid = self.ids.resident_id(region, birth, sex)
            name = _name(r, sex)
            phone = self.ids.phone(n)
            did = first_id + k
            changed = datetime(2020, 3, 1) if n % 97 else datetime(2026, 1, 5)
            depositors.append(
                (
                    did,
                    crypto.seal(rid, "depositor.resident_id"),
                    crypto.blind_index(rid, "resident_id"),
                    name,
                    sex,
                    _iso(birth),
                    category,
                    None,
                    phone,
                    crypto.seal(self.ids.card(), "depositor.bank_card"),
                    r.choice(demo.BANKS),
                    _stamp(changed),
                    f"{dept.name[:5]}{r.choice(demo.STREETS)} {r.randint(1, 300)} 号",
                    dept.id,
                    None if n % 50 == 7 else self.pw_hash,
                    1,
                    created,
                )
            )
            status = "封存" if n % 40 == 3 else ("冻结" if n % 90 == 5 else "正常")
            months = MAX_MONTHS if n % 200 == 1 else r.randint(6, MAX_MONTHS)
            stop = self.last_month
            if status == "封存":
                stop = add_months(stop, -r.randint(3, 20))
            opened = add_months(stop, -(months - 1))
            base = Decimal(r.randrange(3000, 15000, 100))
            monthly = Account(
                deposit_base=base, employer_ratio=ratio, employee_ratio=ratio
            ).monthly_amount
            aid = first_account + k
            withdraw = add_months(opened, r.randint(12, 30)) if r.random() < 0.08 else None
            balance, settled = self._history(aid, emp_id, opened, stop, monthly, withdraw, records)
            accounts.append(
                (
                    aid,
                    f"{region}{n + 1:08d}",
                    did,
                    emp_id,
                    _fen(base),
                    ratio,
                    ratio,
                    status,
                    _iso(opened),
                    None,
                    _fen(balance),
                    f"{stop:%Y-%m}",
                    _iso(settled) if settled else None,
                    1,
                )
            )
            ok = status == "正常" and birth.year >= 1972
            self.people.append((did, name, rid, phone, dept_code, birth, ok))
        self.writer.write(Depositor, depositors)
        self.writer.write(Account, accounts)
        self.counts["records"] += self.writer.write(DepositRecord, records, with_id=False)

    def _history(self, account_id, employer_id, opened, stop, monthly, withdraw, out):
        """The account's lines in date order, the interest settled each 30 June (积数 method,
        ``rules.money.deposit_interest``); returns (balance, last settlement).

        Balances run in integer fen; they become Decimal yuan only for the interest."""
        balance = 0
        year_events: list[tuple[date, int]] = []  # since the last settlement
        opening = 0
        since: date | None = None
        settled: date | None = None
        random_ = self.r.random

        def settle_through(day: date):
            nonlocal balance, opening, settled, year_events
            year = settled.year + 1 if settled else since.year
            while date(year, 6, 30) < day:
                on = date(year, 6, 30)
                if on > since or settled:
                    interest = deposit_interest(
                        [(d, Decimal(f).scaleb(-2)) for d, f in year_events],
                        settled or since,
                        on,
                        opening_balance=Decimal(opening).scaleb(-2),
                    )
                    if interest > 0:
                        balance += _fen(interest)
                        out.append(
                            (
                                account_id,
                                None,
                                "结息",
                                None,
                                _iso(on),
                                _fen(interest),
                                balance,
                                f"{year} 年度结息",
                            )
                        )
                    year_events = []
                    opening = balance
                    settled = on
                year += 1

        amount = _fen(monthly)
        y, m = opened.year, opened.month
        end = (stop.year, stop.month)
        next_settle = date(opened.year if opened.month <= 6 else opened.year + 1, 6, 30)
        wy, wm = (withdraw.year, withdraw.month) if withdraw else (0, 0)
        count = 0
        while (y, m) <= end:
            posted = date(y, m, 15)
            if since is None:
                since = posted
            elif posted > next_settle:
                settle_through(posted)
                next_settle = date(y + 1, 6, 30)
            balance += amount
            year_events.append((posted, balance))
            out.append(
                (
                    account_id,
                    employer_id,
                    "补缴" if random_() < 0.02 else "汇缴",
                    f"{y}-{m:02d}",
                    _iso(posted),
                    amount,
                    balance,
                    "",
                )
            )
            count += 1
            if y == wy and m == wm:
                day = date(y, m, 22)
                taken = _fen(quantize(Decimal(balance).scaleb(-2) * Decimal("0.6")))
                balance -= taken
                year_events.append((day, balance))
                out.append((account_id, None, "提取", None, _iso(day), -taken, balance, "购房提取"))
            m += 1
            if m == 13:
                y, m = y + 1, 1
        self.counts["monthly"] += count
        if since is not None:
            settle_through(self.today)
        return Decimal(balance).scaleb(-2), settled

    # loans -----------------------------------------------------------------------------

    def _loans(self) -> None:
        table = demo.rate_table()
        existing = Loan.select().count()
        wanted = self.n_loans - existing
        candidates = [p for p in self.people if p[6]]
        chosen = self.r.sample(candidates, min(len(candidates), wanted))
        first = _next_id(Loan)
        schedules: dict[tuple, list] = {}
        loans, repayments = [], []
        r = self.r
        for idx, person in enumerate(chosen):
            did = person[0]
            kind = {3: "overdue", 5: "settled_early", 8: "settled_early", 9: "settled_normal"}.get(
                idx % 10, "active"
            )
            if kind == "settled_normal":
                term = 60
                disbursed = add_months(self.today, -r.randint(64, 90))
            else:
                term = r.choice([120, 180, 240, 300, 360])
                disbursed = add_months(self.today, -r.randint(6, 120))
            disbursed = demo.loan_day(disbursed, idx)
            amount = Decimal(r.randrange(150000, 600001, 10000))
            rate = rate_for(table, disbursed, term, True)
            first_due = add_months(disbursed, 1)
            method = r.choice(["annuity", "annuity", "equal_principal"])
            key = (amount, rate, term, method)
            if key not in schedules:  # the amounts do not depend on the dates
                schedules[key] = [
                    (i.period, i.principal, i.interest, i.payment, i.remaining)
                    for i in repayment_schedule(amount, rate, term, date(2000, 1, 1), method)
                ]
            rows = [
                (p, add_months(first_due, p - 1), a, b, c, d) for p, a, b, c, d in schedules[key]
            ]
            due = [row for row in rows if row[1] < self.today]
            paid = due
            status, settled_on, settled_kind = "active", None, None
            if kind == "overdue":
                paid = due[: -r.randint(1, 3)] if len(due) > 3 else due[:-1]
            elif kind == "settled_early":
                paid = due[: max(1, len(due) // 2)]
                settled_on = paid[-1][1] + timedelta(days=r.randint(3, 20))
                status, settled_kind = "settled", "early"
            elif kind == "settled_normal":
                paid = rows
                settled_on, status, settled_kind = rows[-1][1], "settled", "normal"
            outstanding = paid[-1][5] if paid else amount
            lid = first + idx
            n = existing + idx + 1
            loans.append(
                (
                    lid,
                    f"ALS{disbursed:%Y}JK{n:06d}",
                    f"15290081{n:08d}",
                    did,
                    None,
                    _fen(amount),
                    term,
                    str(rate),
                    method,
                    1,
                    _iso(disbursed),
                    _iso(first_due),
                    0 if status == "settled" else _fen(outstanding),
                    status,
                    _iso(settled_on) if settled_on else None,
                    settled_kind,
                    f"阿拉善左旗巴彦浩特镇{r.choice(demo.STREETS)}{r.randint(1, 40)}号小区 "
                    f"{r.randint(1, 12)}-{r.randint(101, 2402)}",
                    f"蒙({disbursed:%Y})阿拉善左旗不动产证明第{r.randint(1000000, 9999999)}号",
                    r.choice(demo.BANKS),
                    1,
                )
            )
            for p, due_on, principal, interest, payment, _rest in paid:
                day = _iso(due_on)
                repayments.append(
                    (
                        lid,
                        p,
                        day,
                        day,
                        _fen(principal),
                        _fen(interest),
                        _fen(payment),
                        "scheduled",
                        None,
                    )
                )
            if kind == "settled_early":
                remaining = paid[-1][5]
                interest = quantize(remaining * rate * (settled_on - paid[-1][1]).days / 360)
                repayments.append(
                    (
                        lid,
                        None,
                        None,
                        _iso(settled_on),
                        _fen(remaining),
                        _fen(interest),
                        _fen(remaining + interest),
                        "early",
                        None,
                    )
                )
            if len(repayments) > 200_000 or idx == len(chosen) - 1:
                with db.atomic():
                    self.writer.write(Loan, loans)
                    self.counts["repayments"] += self.writer.write(
                        LoanRepayment, repayments, with_id=False
                    )
                loans, repayments = [], []
                self.progress(
                    f"loans {existing + idx + 1:,}/{self.n_loans:,}, "
                    f"repayments {self.counts['repayments']:,}"
                )

    # proxy cases -----------------------------------------------------------------------

    def _cases(self) -> None:
        existing = list(ProxyCase.select(ProxyCase.direction, ProxyCase.state).tuples())
        open_now = sum(1 for d, s in existing if casestates.is_open(d, s))
        wanted = self.n_cases - len(existing)
        open_wanted = max(0, self.n_open - open_now)
        first = _next_id(ProxyCase)
        inbound_people = self.people
        cases, events = [], []
        done = 0
        for k in range(wanted):
            is_open = k < open_wanted
            direction = OUTBOUND if k % 2 == 0 else INBOUND
            case = self._case(first + k, k, direction, is_open, inbound_people, events)
            cases.append(case)
            if len(cases) >= 10_000 or k == wanted - 1:
                with db.atomic():
                    self.writer.write(ProxyCase, cases)
                    self.writer.write(CaseEvent, events, with_id=False)
                done += len(cases)
                cases, events = [], []
                self.progress(f"proxy cases {len(existing) + done:,}/{self.n_cases:,}")
        self.open_cases = open_now + min(open_wanted, wanted)

    def _state(self, direction: str, is_open: bool) -> str:
        roll = self.r.randrange(100)
        if not is_open:
            final = casestates.FINAL[direction]
            return final[1] if roll < REJECTED_SHARE else final[0]
        if roll < SUPPLEMENT_SHARE:
            return casestates.PAUSED
        roll = self.r.randrange(100)
        for state, share in OPEN_STATES[direction]:
            if roll < share:
                return state
            roll -= share
        return OPEN_STATES[direction][0][0]

    def _case(self, cid: int, k: int, direction: str, is_open: bool, people, events) -> tuple:
        r = self.r
        state = self._state(direction, is_open)
        paths = demo.OUT_PATHS if direction == OUTBOUND else demo.IN_PATHS
        path = paths[state]
        peer = self.peers[k % len(self.peers)]
        if is_open:
            start = demo._workdays_back(self.today, r.randint(0, 9))
        else:
            start = self.today - timedelta(days=r.randint(20, 5 * 365))
            while not _workday(start):
                start -= timedelta(days=1)
        limit = 7 if direction == OUTBOUND else 3
        seq = 1000 + k
        if direction == OUTBOUND:
            choices = [
                i
                for i in (
                    "purchase_withdrawal",
                    "settlement_certificate",
                    "employer_registration",
                    "retirement_withdrawal",
                    "usage_certificate",
                )
                if not peer.offers_online(i)
            ]
            sex = r.choice("MF")
            birth = date(r.randint(1965, 1998), r.randint(1, 12), r.randint(1, 28))
            region = "110105" if peer.code == "110000" else "640104"
            name, rid = _name(r, sex), self.ids.resident_id(region, birth, sex)
            phone = self.ids.phone(5_000_000 + k)
            depositor_id = None
            dept_code = demo.DEPARTMENTS[(k // 2) % 3][0]
            assignee = None
            accepted_by = self.staff["clerk"].id
        else:
            choices = ["purchase_withdrawal", "settlement_certificate", "employer_registration"]
            did, name, rid, phone, dept_code, _birth, _ok = people[(k * 7919) % len(people)]
            depositor_id = did
            assignee = None
            if state in ("processing", "done", "fed_back", "supplement"):
                handler = {"AZQ": "handler" if k % 4 else "handler3", "AYQ": "handler2"}.get(
                    dept_code
                )
                assignee = self.staff[handler].id if handler else None
            if state in ("received",) or (state == "rejected" and k % 3):
                dept_code = None
            accepted_by = None
        item = choices[k % len(choices)]
        application = {"item": item, "note": "演示数据"}
        if item == "purchase_withdrawal":
            application.update(contract_no=f"HT{start:%Y%m%d}{seq:05d}", price="680000.00")
        if item == "employer_registration":
            application.update(demo._demo_registration(seq))
        checklist = {m.code: True for m in item_config.get(item).materials}
        paused_since = self.today - timedelta(days=1) if state == "supplement" else None
        at = datetime(start.year, start.month, start.day, 2, 0)
        last = at
        events.append(
            (
                cid,
                self.staff["clerk"].id if direction == OUTBOUND else None,
                "窗口受理" if direction == OUTBOUND else "全国住房公积金监管服务平台",
                "create",
                None,
                path[0],
                "{}",
                _stamp(at),
            )
        )
        for i in range(1, len(path)):
            role = demo.MOVER[path[i]]
            if role == "handler":
                username = "handler2" if dept_code == "AYQ" else "handler"
            else:
                username = role
            actor = self.staff[username]
            last = _event_time(start, self.today, i, len(path))
            events.append(
                (cid, actor.id, actor.name, "move", path[i - 1], path[i], "{}", _stamp(last))
            )
        dept_id = self.departments[dept_code].id if dept_code else None
        return (
            cid,
            f"KS{start:%Y%m%d}{seq:06d}",
            f"HZ{start:%Y%m%d}{seq:06d}",
            item,
            direction,
            state,
            peer.id,
            depositor_id,
            None,
            name,
            crypto.seal(rid, "proxy_case.applicant_id_no"),
            crypto.blind_index(rid, "resident_id"),
            phone,
            _json(application),
            _json(checklist),
            dept_id,
            assignee,
            accepted_by,
            _iso(start),
            _iso(_deadline(start, limit)),
            _iso(paused_since) if paused_since else None,
            0,
            _json(["购房发票或首付款证明"] if state == "supplement" else []),
            "申请人非本中心缴存职工" if state == "rejected" else "",
            _json(
                {"outcome": "办结", "note": "已按规定办理"}
                if state in ("feedback", "done", "fed_back", "archived")
                else {}
            ),
            "SF1234567890" if state in ("feedback", "archived") and k % 2 else "",
            None,
            "",
            None,
            None,
            _stamp(at),
            _stamp(last),
            1,
        )

    def summary(self, seconds: float) -> LargeSummary:
        return LargeSummary(
            employers=Employer.select().count(),
            depositors=Depositor.select().count(),
            deposit_records=DepositRecord.select().count(),
            monthly_records=DepositRecord.select()
            .where(DepositRecord.kind.in_(("汇缴", "补缴")))
            .count(),
            loans=Loan.select().count(),
            repayments=LoanRepayment.select().count(),
            cases=ProxyCase.select().count(),
            open_cases=sum(
                1
                for d, s in ProxyCase.select(ProxyCase.direction, ProxyCase.state).tuples()
                if casestates.is_open(d, s)
            ),
            seconds=round(seconds, 1),
        )


def _check_columns() -> None:
    """The tuples above follow these column orders; fail loudly when a model changes."""
    expected = {
        Employer: 14,
        EmployerOperator: 11,
        Depositor: 17,
        Account: 14,
        DepositRecord: 9,
        Loan: 20,
        LoanRepayment: 10,
        ProxyCase: 33,
        CaseEvent: 9,
    }
    for model, n in expected.items():
        if len(_columns(model)) != n:
            raise RuntimeError(
                f"{model._meta.table_name} changed ({len(_columns(model))} columns, "
                f"expected {n}): update portal/demo_large.py"
            )
