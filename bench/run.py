"""The benchmark (``make bench``): the portal under gunicorn, driven by a bounded load.

For each database (SQLite, PostgreSQL) and each dataset (the center-sized one from
``flask seed-demo --large`` and the small demo), it serves the portal with gunicorn and the
production settings of ``gunicorn.conf.py`` on 127.0.0.1 (a free port), logs virtual users in
through the real login pages, and runs every scenario at 1 and 4 concurrent users from this
process (threads, one keep-alive connection each). Every run is bounded in requests and in time,
and lasts at least a few seconds (``MIN_SECONDS``): on a fast machine 300 requests took a
third of a second, and one pause of the machine in that window halved a scenario's figures.

It prints a table and writes ``bench/results.json``: per scenario p50 / p95 / p99 latency,
requests per second, the response size, the workers' peak memory, the throughput as a share of
the bare route's (``/healthz/bare``, served by the same server in the same run, at the same
number of users, just before and just after the scenario: the mean of the two), and the
large/small p95 ratio; then the targets of issue 10, met or missed.

    .venv/bin/python bench/run.py                   # everything (a quarter of an hour or so)
    .venv/bin/python bench/run.py --db sqlite --quick
    .venv/bin/python bench/run.py --db postgresql --dataset large

Datasets are created once and kept under ``instance/bench/`` (SQLite) or in the PostgreSQL
databases ``bench`` and ``bench_small`` (``--pg-url`` / ``--pg-small-url``); the keys they
are encrypted with are in ``instance/bench/keys.json``. Delete them to start afresh.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import http.client
import json
import os
import platform
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode, urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BENCH_DIR = ROOT / "instance" / "bench"
BIN = Path(sys.executable).parent
RESULTS = ROOT / "bench" / "results.json"
PG_LARGE = "postgresql://postgres@127.0.0.1:5432/bench"
PG_SMALL = "postgresql://postgres@127.0.0.1:5432/bench_small"
SMALL_SIZE = 500
USERS = (1, 4)
DEPOSITOR_PASSWORD = "Demo1234"  # noqa: S105 - the published demo password
STAFF_PASSWORD = "Staff2026"  # noqa: S105 - the published demo password
ADDRESSEE = "北京住房公积金管理中心"
MB = 1024 * 1024

# Targets of issue 10 (SQLite, large dataset, 4 concurrent users).
P95_TARGETS_MS = {
    "summary": 30,
    "deposit_detail": 30,
    "loan_schedule": 30,
    "verification": 30,
    "card_move": 30,
    "board": 80,
    "ledger_month": 80,
    "certificate_download": 30,
    "certificate_generate": 300,
}
DEPENDS_ON_GENERATE = {"certificate_download", "verification"}  # they use its certificates
PAGE_LIKE = ("summary", "deposit_detail", "loan_schedule", "verification", "board", "ledger_month")
SHARE_OF_BARE = 0.30
LARGE_SMALL_RATIO = 1.5
MOVE_BYTES = 6 * 1024
PAGE_BYTES = 60 * 1024
JS_GZIP_BYTES = 40 * 1024
WORKER_BYTES = 150 * MB


# --- the environment ----------------------------------------------------------------------


def bench_keys() -> dict[str, str]:
    """Secrets for the production mode, made once: the datasets are encrypted with them."""
    path = BENCH_DIR / "keys.json"
    if not path.exists():
        BENCH_DIR.mkdir(parents=True, exist_ok=True)
        keys = {
            "PORTAL_SECRET_KEY": secrets.token_hex(32),
            "PORTAL_DATA_KEYS": "b1:" + base64.b64encode(secrets.token_bytes(32)).decode(),
            "PORTAL_LOOKUP_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
            "PORTAL_SIGNING_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        }
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(keys, fh)
    return json.loads(path.read_text())


def portal_env(url: str, storage: Path) -> dict[str, str]:
    # GUNICORN_* variables reach the server (``GUNICORN_WORKER_CLASS=gthread
    # GUNICORN_THREADS=2 make bench``); the bind address and log level are the benchmark's own
    # (Server.start)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    env.update(bench_keys())
    env.update(
        PORTAL_ENV="production",
        PORTAL_DATABASE_URL=url,
        PORTAL_STORAGE_DIR=str(storage),
        PORTAL_BENCH_ROUTES="1",
        # the login scenario logs in hundreds of times from one address
        PORTAL_LOGIN_ADDRESS_LIMIT="100000000",
        PYTHONUNBUFFERED="1",
    )
    return env


@dataclass
class Dataset:
    db: str  # sqlite / postgresql
    size: str  # large / small
    url: str

    @property
    def name(self) -> str:
        return f"{self.db}-{self.size}"

    @property
    def storage(self) -> Path:
        return BENCH_DIR / f"storage-{self.name}"


def datasets(args) -> list[Dataset]:
    out = []
    for db in ("sqlite", "postgresql") if args.db == "both" else (args.db,):
        for size in ("large", "small") if args.dataset == "both" else (args.dataset,):
            if db == "sqlite":
                url = f"sqlite:///{BENCH_DIR / f'{size}.db'}"
            else:
                url = args.pg_url if size == "large" else args.pg_small_url
            out.append(Dataset(db, size, url))
    return out


def _ensure_pg_database(url: str) -> None:
    import psycopg

    parts = urlparse(url)
    name = parts.path.lstrip("/")
    if name in ("test", "postgres", "template0", "template1"):
        raise SystemExit(f"refusing to use the {name!r} database for the benchmark")
    admin = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def _vacuum(url: str) -> None:
    """What autovacuum does on a live server: the visibility map current (index-only scans)
    and fresh statistics, after the previous run's writes."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE) proxy_case")
        conn.execute("ANALYZE")


def _flask(env: dict, *args: str, log=None) -> None:
    subprocess.run(  # noqa: S603 - our own venv's flask
        [str(BIN / "flask"), "--app", "portal", *args],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=log,
        stderr=subprocess.STDOUT if log else None,
    )


def prepare(ds: Dataset) -> dict:
    """Migrate (new migrations such as the indexes apply to a kept dataset too) and seed
    once; returns the row counts."""
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    if ds.db == "postgresql":
        _ensure_pg_database(ds.url)
    env = portal_env(ds.url, ds.storage)
    _flask(env, "db", "upgrade", log=subprocess.DEVNULL)
    if ds.db == "postgresql":
        _vacuum(ds.url)
    counts = _counts(ds)
    if counts["depositors"] == 0:
        print(f"seeding {ds.name} ...", flush=True)
        started = time.monotonic()
        _flask(env, "seed-demo", *(["--large"] if ds.size == "large" else ["--size", "500"]))
        print(f"seeded {ds.name} in {time.monotonic() - started:.0f}s", flush=True)
        counts = _counts(ds)
        counts["seeded_seconds"] = round(time.monotonic() - started, 1)
    return counts


# --- reading the database (subjects, SMS codes) --------------------------------------------


def _open(ds: Dataset) -> None:
    from portal import crypto
    from portal.db import db, init_db

    _close()
    keys = bench_keys()
    crypto.configure(crypto.parse_keys(keys["PORTAL_DATA_KEYS"], keys["PORTAL_LOOKUP_KEY"]))
    init_db(ds.url, root=str(ROOT))
    db.connect(reuse_if_open=True)


def _close() -> None:
    from portal.db import db

    if db.obj is not None and not db.is_closed():
        db.close()


def _counts(ds: Dataset) -> dict:
    from peewee import fn

    from portal.models import Depositor, DepositRecord, Employer, Loan, ProxyCase
    from portal.rules import casestates

    _open(ds)
    try:
        counts = {
            "depositors": Depositor.select().count(),
            "employers": Employer.select().count(),
            "deposit_records": DepositRecord.select().count(),
            "loans": Loan.select().count(),
            "cases": ProxyCase.select().count(),
        }
        counts["open_cases"] = sum(
            n
            for d, s, n in ProxyCase.select(
                ProxyCase.direction, ProxyCase.state, fn.COUNT(ProxyCase.id)
            )
            .group_by(ProxyCase.direction, ProxyCase.state)
            .tuples()
            if casestates.is_open(d, s)
        )
        return counts
    finally:
        _close()


@dataclass
class Subjects:
    depositors: list[dict]  # resident_id, phone, loan_id, records
    move_cards: list[dict]  # id, state, version
    month: tuple[date, date]


def subjects(ds: Dataset) -> Subjects:
    """The same people and cards in both datasets: the large one is the small demo plus bulk
    rows, so they come from the small demo's ids (the large/small ratio then measures the
    amount of data alone)."""
    from peewee import fn

    from portal.models import Account, Department, Depositor, DepositRecord, Loan, ProxyCase

    _open(ds)
    try:
        records = dict(
            DepositRecord.select(DepositRecord.account, fn.COUNT(DepositRecord.id))
            .where(DepositRecord.account <= SMALL_SIZE)
            .group_by(DepositRecord.account)
            .tuples()
        )
        rows = (
            Depositor.select(Depositor, Account.id.alias("account_id"), Loan.id.alias("loan_id"))
            .join(Account, on=(Account.depositor == Depositor.id))
            .switch(Depositor)
            .join(Loan, on=(Loan.depositor == Depositor.id))
            .where(
                (Depositor.id <= SMALL_SIZE)
                & Depositor.password_hash.is_null(False)
                & Depositor.active
                & (Account.status == "正常")
                & (Loan.status == "active")
            )
            .order_by(Depositor.id)
            .objects()
        )
        people = sorted(
            (
                {
                    "id": r.id,
                    "resident_id": r.resident_id,
                    "phone": r.phone,
                    "loan_id": r.loan_id,
                    "records": records.get(r.account_id, 0),
                }
                for r in rows
            ),
            key=lambda p: (-p["records"], p["id"]),
        )
        seen, chosen = set(), []
        for p in people:
            if p["id"] not in seen:
                seen.add(p["id"])
                chosen.append(p)
        azq = Department.get(Department.code == "AZQ")
        cards = [
            {"id": c.id, "state": c.state, "version": c.version}
            for c in ProxyCase.select()
            .where(
                (ProxyCase.direction == "outbound")
                & (ProxyCase.department == azq)
                & ProxyCase.state.in_(("accepted", "supplement"))
                & (fn.LENGTH(ProxyCase.case_no) == 14)  # the small demo's numbering
            )
            .order_by(ProxyCase.id)
        ]
        today = datetime.now(UTC).date()
        first = date(today.year, today.month, 1)
        last_month_end = first - timedelta(days=1)
        month = (date(last_month_end.year, last_month_end.month, 1), last_month_end)
        return Subjects(chosen[: max(USERS)], cards[: max(USERS)], month)
    finally:
        _close()


class Db:
    """The benchmark's own read access while a server runs (SMS codes, TOTP steps, certificate
    codes): short reads, no locks kept."""

    def __init__(self, ds: Dataset):
        self.ds = ds
        self.lock = threading.Lock()

    def __enter__(self):
        _open(self.ds)
        return self

    def __exit__(self, *exc):
        _close()

    def last_sms_code(self, phone: str) -> str:
        from portal.models import SmsMessage

        with self.lock:
            message = (
                SmsMessage.select()
                .where(SmsMessage.phone == phone)
                .order_by(SmsMessage.id.desc())
                .first()
            )
        match = re.search(r"验证码 (\d{6})", message.body if message else "")
        if not match:
            raise RuntimeError("no SMS code found")
        return match.group(1)

    def totp_last_step(self, username: str) -> tuple[str, int]:
        from portal.models import StaffUser

        with self.lock:
            user = StaffUser.get(StaffUser.username == username)
        return user.totp_secret, user.totp_last_step

    def verify_codes(self, ids: list[int]) -> list[str]:
        from portal.models import Certificate

        with self.lock:
            return [
                c.verify_code
                for c in Certificate.select(Certificate.verify_code).where(Certificate.id.in_(ids))
            ]

    def card(self, case_id: int) -> dict:
        from portal.models import ProxyCase

        with self.lock:
            c = ProxyCase.get_by_id(case_id)
        return {"id": c.id, "state": c.state, "version": c.version}


# --- the server ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """gunicorn with gunicorn.conf.py (production settings), on a free loopback port."""

    def __init__(self, ds: Dataset):
        self.ds = ds
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.log_path = BENCH_DIR / f"server-{ds.name}.log"
        self.peak_hwm = 0  # the largest VmHWM (peak RSS) of any worker
        self.peak_pss = 0  # the largest PSS seen (shared library pages split between workers)
        self.window_rss = 0  # the largest VmRSS since the last reset
        self.workers_seen: set[int] = set()
        # the PDF renderer's processes (portal/documents.py; not workers): the largest VmHWM
        self.renderer_peak_hwm = 0
        self.renderer_peak_pss = 0
        self._stop = threading.Event()

    def start(self) -> None:
        env = portal_env(self.ds.url, self.ds.storage)
        env["GUNICORN_BIND"] = f"127.0.0.1:{self.port}"
        env["GUNICORN_LOGLEVEL"] = "warning"
        self.log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(  # noqa: S603 - our own venv's gunicorn
            [str(BIN / "gunicorn"), "--config", "gunicorn.conf.py", "portal:create_app()"],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited; see {self.log_path}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/healthz/bare")
                if conn.getresponse().status == 200:
                    conn.close()
                    break
            except OSError:
                pass
            time.sleep(0.3)
        else:
            raise RuntimeError("gunicorn did not answer within 90 s")
        while len(self.workers()) < self.expected_workers():
            time.sleep(0.2)
        threading.Thread(target=self._sample, daemon=True).start()

    @staticmethod
    def expected_workers() -> int:
        import multiprocessing

        return int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count() * 2 + 1))

    @staticmethod
    def _children(pid: int) -> list[int]:
        try:
            return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
        except OSError:
            return []

    @staticmethod
    def _is_renderer(pid: int) -> bool:
        try:
            return b"portal.documents" in Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return False

    def workers(self) -> list[int]:
        """gunicorn's workers: the master's children but the PDF renderer."""
        if self.proc is None:
            return []
        return [pid for pid in self._children(self.proc.pid) if not self._is_renderer(pid)]

    def renderers(self) -> list[int]:
        """The PDF renderer's processes: the one gunicorn started and those it forked."""
        if self.proc is None:
            return []
        first = [pid for pid in self._children(self.proc.pid) if self._is_renderer(pid)]
        return first + [child for pid in first for child in self._children(pid)]

    @staticmethod
    def _status(pid: int) -> dict[str, int]:
        out = {}
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith(("VmHWM:", "VmRSS:")):
                    key, value = line.split(":", 1)
                    out[key] = int(value.split()[0]) * 1024
        except OSError:
            pass
        return out

    @staticmethod
    def _pss(pid: int) -> int:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            pass
        return 0

    def _sample(self) -> None:
        while not self._stop.is_set():
            for pid in self.workers():
                self.workers_seen.add(pid)
                status = self._status(pid)
                self.peak_hwm = max(self.peak_hwm, status.get("VmHWM", 0))
                self.window_rss = max(self.window_rss, status.get("VmRSS", 0))
                self.peak_pss = max(self.peak_pss, self._pss(pid))
            for pid in self.renderers():
                self.renderer_peak_hwm = max(
                    self.renderer_peak_hwm, self._status(pid).get("VmHWM", 0)
                )
                self.renderer_peak_pss = max(self.renderer_peak_pss, self._pss(pid))
            time.sleep(0.2)

    def stop(self) -> None:
        self._stop.set()
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


# --- the HTTP client ----------------------------------------------------------------------


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class Client:
    """One virtual user's keep-alive connection; the cookie jar may be shared (one login used
    from several connections, like one person's tabs)."""

    def __init__(self, port: int, cookies: dict | None = None):
        self.port = port
        self.cookies = {} if cookies is None else cookies
        self.conn: http.client.HTTPConnection | None = None
        self.csrf = ""

    def _connect(self):
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)

    def request(self, method: str, path: str, form=None, headers=None) -> Response:
        body = urlencode(form, doseq=True).encode() if form is not None else None
        head = {"Accept": "text/html", "User-Agent": "hpf-bench"}
        if body is not None:
            head["Content-Type"] = "application/x-www-form-urlencoded"
        if self.cookies:
            head["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        head.update(headers or {})
        for attempt in (1, 2):
            if self.conn is None:
                self._connect()
            started = time.perf_counter()
            try:
                self.conn.request(method, path, body=body, headers=head)
                r = self.conn.getresponse()
                data = r.read()
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise
                continue
            seconds = time.perf_counter() - started
            break
        for name, value in r.getheaders():
            if name.lower() == "set-cookie":
                pair = value.split(";", 1)[0]
                key, _, val = pair.partition("=")
                if "expires=thu, 01 jan 1970" in value.lower() or val == "":
                    self.cookies.pop(key.strip(), None)
                else:
                    self.cookies[key.strip()] = val.strip()
        headers_out = {k.lower(): v for k, v in r.getheaders()}
        if headers_out.get("connection", "").lower() == "close":
            self.conn.close()
            self.conn = None
        return Response(r.status, headers_out, data, seconds)

    def get(self, path: str, **headers) -> Response:
        return self.request("GET", path, headers=headers)

    def post(self, path: str, form: dict, **headers) -> Response:
        return self.request("POST", path, form=form, headers=headers)

    def fetch_csrf(self, path: str) -> str:
        r = self.get(path)
        match = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', r.text)
        match = match or re.search(r'"X-CSRFToken": "([^"]+)"', r.text)
        if not match:
            raise RuntimeError(f"no CSRF token on {path} ({r.status})")
        self.csrf = match.group(1)
        return self.csrf


def login_depositor(port: int, db: Db, person: dict) -> dict:
    c = Client(port)
    token = c.fetch_csrf("/login")
    r = c.post(
        "/login",
        {"csrf_token": token, "resident_id": person["resident_id"], "password": DEPOSITOR_PASSWORD},
    )
    if r.status != 303:
        raise RuntimeError(f"depositor login failed ({r.status})")
    code = db.last_sms_code(person["phone"])
    r = c.post("/login/code", {"csrf_token": token, "code": code})
    if r.status != 303:
        raise RuntimeError(f"depositor code refused ({r.status})")
    c.fetch_csrf("/me/")
    return c.cookies | {"_csrf": c.csrf}


def totp_code(db: Db, username: str) -> str:
    """The staff member's next TOTP code: a code is accepted once, so it waits for a step
    after the last one used."""
    import pyotp

    secret, last_step = db.totp_last_step(username)
    while int(time.time()) // 30 <= last_step:
        time.sleep(1)
    return pyotp.TOTP(secret).now()


def login_staff(port: int, db: Db, username: str) -> dict:
    c = Client(port)
    token = c.fetch_csrf("/staff/login")
    r = c.post(
        "/staff/login", {"csrf_token": token, "username": username, "password": STAFF_PASSWORD}
    )
    if r.status != 303:
        raise RuntimeError(f"staff login failed for {username} ({r.status})")
    r = c.post("/staff/login/totp", {"csrf_token": token, "code": totp_code(db, username)})
    if r.status != 303:
        raise RuntimeError(f"staff TOTP refused for {username} ({r.status})")
    c.fetch_csrf("/staff/")
    return c.cookies | {"_csrf": c.csrf}


_COLUMN = re.compile(r'<ol class="cards" id="cards-(\w+)".*?>(.*?)</ol>', re.S)
_SWAPPED_COLUMN = re.compile(r'<ol id="cards-(\w+)" hx-swap-oob="innerHTML">(.*?)</ol>', re.S)
_CARD_ID = re.compile(r'<li class="kcard[^"]*" id="case-(\d+)"')
_DELETE = re.compile(r'<li id="case-(\d+)" hx-swap-oob="delete">')
_INSERT = re.compile(
    r'<div hx-swap-oob="(beforebegin|beforeend):#(?:case|cards)-(\w+)">\s*'
    r'<li class="kcard[^"]*" id="case-(\d+)"'
)


class BoardTab:
    """What one browser tab of the board shows (the card ids of each column), kept up to date
    from the move answers as htmx would, so a move can say what it shows (board.js's
    ``seen_<state>``)."""

    def __init__(self, html: str):
        self.columns = {s: _CARD_ID.findall(body) for s, body in _COLUMN.findall(html)}

    def seen(self) -> dict[str, str]:
        return {f"seen_{s}": ",".join(ids) for s, ids in self.columns.items()}

    def apply(self, html: str) -> None:
        for state, body in _SWAPPED_COLUMN.findall(html):  # whole columns
            self.columns[state] = _CARD_ID.findall(body)
        for card_id in _DELETE.findall(html):
            for ids in self.columns.values():
                if card_id in ids:
                    ids.remove(card_id)
        for how, where, card_id in _INSERT.findall(html):
            if how == "beforeend":
                self.columns.setdefault(where, []).append(card_id)
                continue
            for ids in self.columns.values():
                if where in ids:
                    ids.insert(ids.index(where), card_id)
                    break


def session_client(port: int, jar: dict) -> Client:
    cookies = {k: v for k, v in jar.items() if k != "_csrf"}
    c = Client(port, cookies)
    c.csrf = jar["_csrf"]
    return c


# --- scenarios ----------------------------------------------------------------------------


@dataclass
class Scenario:
    name: str
    label: str
    run: Callable[[int, int], tuple[Response, bool]]  # (virtual user, i) -> response, ok
    requests: int = 300  # at least, unless ``seconds`` run out first
    seconds: float = 12.0  # at most
    warmup: int = 5
    min_seconds: float = 0.0  # and at least this long (run_level: MIN_SECONDS by default)
    setup: Callable[[int], None] | None = None


@dataclass
class Level:
    users: int
    n: int
    errors: int
    p50: float
    p95: float
    p99: float
    mean: float
    rps: float
    bytes: int
    seconds: float = 0.0  # how long the measured requests took, wall clock
    statuses: dict[str, int] = field(default_factory=dict)
    worker_rss: int = 0


def _pct(sorted_ms: list[float], q: float) -> float:
    if not sorted_ms:
        return 0.0
    k = max(0, min(len(sorted_ms) - 1, round(q * (len(sorted_ms) - 1))))
    return sorted_ms[k]


# A level runs its requests and for at least this long (a quarter of it with --quick): on a
# fast machine 300 requests of a page took 0.3 s and 300 of the bare route 0.15 s, so one
# pause of the machine in that window (another process, a worker recycled by gunicorn's
# max_requests) halved a share or doubled a p95. Seconds, not requests, make such a pause a
# small part of every measurement, whatever the machine's speed.
MIN_SECONDS = 3.0
ADJACENT_MIN_SECONDS = 1.0  # the bare route's runs beside a scenario


def run_level(server: Server, scenario: Scenario, users: int, scale: float) -> Level:
    limit = max(8, int(scenario.requests * scale))
    least = (scenario.min_seconds or MIN_SECONDS) * max(scale, 0.25)
    for vu in range(users):  # warm-up, not measured
        for i in range(scenario.warmup):
            scenario.run(vu, -1 - i)
    server.window_rss = 0
    lock = threading.Lock()
    counter = [0]
    latencies: list[float] = []
    sizes: list[int] = []
    statuses: Counter = Counter()
    errors = [0]
    start = time.monotonic()
    deadline = start + max(scenario.seconds * max(scale, 0.25), least)
    enough = start + least

    def worker(vu: int):
        while True:
            with lock:
                now = time.monotonic()
                if (counter[0] >= limit and now >= enough) or now > deadline:
                    return
                i = counter[0]
                counter[0] += 1
            try:
                response, ok = scenario.run(vu, i)
            except Exception as exc:  # noqa: BLE001 - counted, the run goes on
                with lock:
                    errors[0] += 1
                    statuses[type(exc).__name__] += 1
                continue
            with lock:
                latencies.append(response.seconds * 1000)
                sizes.append(len(response.body))
                statuses[str(response.status)] += 1
                if not ok:
                    errors[0] += 1

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(vu,)) for vu in range(users)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    ms = sorted(latencies)
    return Level(
        users=users,
        n=len(ms),
        errors=errors[0],
        p50=round(_pct(ms, 0.50), 2),
        p95=round(_pct(ms, 0.95), 2),
        p99=round(_pct(ms, 0.99), 2),
        mean=round(statistics.fmean(ms), 2) if ms else 0.0,
        rps=round(len(ms) / wall, 1) if wall else 0.0,
        bytes=int(statistics.median(sizes)) if sizes else 0,
        seconds=round(wall, 2),
        statuses=dict(statuses),
        worker_rss=server.window_rss,
    )


def build_scenarios(port: int, db: Db, subj: Subjects, quick: bool) -> list[Scenario]:
    if len(subj.depositors) < max(USERS) or len(subj.move_cards) < max(USERS):
        raise RuntimeError("the dataset lacks the demo people or cards the benchmark needs")
    print("  logging in the virtual users ...", flush=True)
    dep_jars = [login_depositor(port, db, p) for p in subj.depositors]
    staff_jars = {u: login_staff(port, db, u) for u in ("liaison", "auditor", "clerk")}
    n = max(USERS)
    depositors = [session_client(port, dep_jars[vu]) for vu in range(n)]
    board_users = [
        session_client(port, staff_jars["liaison" if vu % 2 == 0 else "auditor"]) for vu in range(n)
    ]
    movers = [session_client(port, staff_jars["clerk"]) for vu in range(n)]
    tabs = [BoardTab(movers[vu].get("/staff/board/outbound").text) for vu in range(n)]
    anonymous = [Client(port) for _ in range(n)]
    login_clients = [Client(port) for _ in range(n)]
    for c in login_clients:
        c.fetch_csrf("/login")
    cards = [dict(card) for card in subj.move_cards[:n]]
    certificates: list[list[int]] = [[] for _ in range(n)]
    codes: list[str] = []
    month_from, month_to = subj.month
    htmx = {"HX-Request": "true"}

    def ok_html(r: Response, status: int = 200) -> bool:
        return r.status == status

    def bare(vu, i):
        r = anonymous[vu].get("/healthz/bare")
        return r, r.status == 200

    def summary(vu, i):
        r = depositors[vu].get("/me/")
        return r, ok_html(r)

    def deposit_detail(vu, i):
        page = 1 + (i % 6)
        r = depositors[vu].get(f"/me/deposits?page={page}", **htmx)
        return r, ok_html(r)

    def loan_schedule(vu, i):
        r = depositors[vu].get(f"/me/loans/{subj.depositors[vu]['loan_id']}")
        return r, ok_html(r)

    def certificate_generate(vu, i):
        c = depositors[vu]
        r = c.post("/me/certificates", {"csrf_token": c.csrf, "addressee": ADDRESSEE})
        match = re.search(r"/me/certificates/(\d+)$", r.headers.get("location", ""))
        if match:
            certificates[vu].append(int(match.group(1)))
        return r, r.status == 303 and bool(match)

    def certificate_download(vu, i):
        mine = certificates[vu]
        r = depositors[vu].get(f"/me/certificates/{mine[i % len(mine)]}.pdf")
        return r, r.status == 200 and r.body.startswith(b"%PDF")

    def verification(vu, i):
        r = anonymous[vu].get(f"/verify/{codes[(i + vu) % len(codes)]}")
        return r, ok_html(r)

    def board(vu, i):
        r = board_users[vu].get("/staff/board/outbound")
        return r, ok_html(r)

    def card_move(vu, i):
        card = cards[vu]
        c = movers[vu]
        target = "supplement" if card["state"] == "accepted" else "accepted"
        form = {
            "target": target,
            "version": card["version"],
            "from_state": card["state"],
        }
        if target == "supplement":
            form.update({"with_data": "1", f"c{card['id']}-other": "购房合同原件"})
        form.update(tabs[vu].seen())
        r = c.post(
            f"/staff/board/case/{card['id']}/move",
            form,
            **htmx,
            **{"X-CSRFToken": c.csrf},
        )
        tabs[vu].apply(r.text)
        if r.status == 200:
            card.update(state=target, version=card["version"] + 1)
            return r, True
        cards[vu] = db.card(card["id"])
        return r, False

    def ledger_month(vu, i):
        query = urlencode({"date_from": month_from.isoformat(), "date_to": month_to.isoformat()})
        r = board_users[vu].get(f"/staff/ledger/?{query}", **htmx)
        return r, ok_html(r)

    def login(vu, i):
        c = login_clients[vu]
        person = subj.depositors[vu]
        r = c.post(
            "/login",
            {
                "csrf_token": c.csrf,
                "resident_id": person["resident_id"],
                "password": DEPOSITOR_PASSWORD,
            },
        )
        return r, r.status == 303

    def fill_codes(_users):
        codes[:] = db.verify_codes([i for mine in certificates for i in mine])

    heavy = 0.25 if quick else 1.0
    return [
        Scenario("bare", "空路由 /healthz/bare", bare, requests=600),
        Scenario("summary", "账户概览", summary),
        Scenario("deposit_detail", "缴存明细 (htmx)", deposit_detail),
        Scenario("loan_schedule", "贷款还款计划", loan_schedule),
        Scenario(
            "certificate_generate",
            "出具缴存使用证明",
            certificate_generate,
            requests=int(60 * heavy) or 8,
            seconds=30,
            warmup=3,
        ),
        Scenario("certificate_download", "下载已出具的证明", certificate_download),
        Scenario("verification", "证明核验页", verification, setup=fill_codes),
        Scenario("board", "看板 (外地业务)", board, requests=200),
        Scenario("card_move", "移动卡片 (htmx)", card_move, requests=200),
        Scenario("ledger_month", "台账按月筛选 (htmx)", ledger_month, requests=200),
        Scenario("login", "登录 (密码一步)", login, requests=int(80 * heavy) or 8, seconds=20),
    ]


# --- pages and static sizes ---------------------------------------------------------------


def page_sizes(port: int, db: Db, subj: Subjects) -> dict[str, int]:
    """The HTML of the main pages, whole (not the htmx fragments)."""
    dep = session_client(port, login_depositor(port, db, subj.depositors[0]))
    staff = session_client(port, login_staff(port, db, "liaison"))
    anon = Client(port)
    loan = subj.depositors[0]["loan_id"]
    pages = {
        "/": anon,
        "/login": anon,
        "/verify": anon,
        "/me/": dep,
        "/me/deposits": dep,
        "/me/loans": dep,
        f"/me/loans/{loan}": dep,
        "/me/certificates": dep,
        "/staff/board/outbound": staff,
        "/staff/board/inbound": staff,
        "/staff/ledger/": staff,
    }
    out = {}
    for path, client in pages.items():
        r = client.get(path)
        if r.status == 200:
            out[path] = len(r.body)
    return out


def javascript_gzip() -> dict[str, int]:
    out = {}
    for path in sorted((ROOT / "static").rglob("*.js")):
        out[str(path.relative_to(ROOT))] = len(gzip.compress(path.read_bytes(), 9))
    return out


# --- one dataset ----------------------------------------------------------------------------


def gunicorn_settings() -> dict:
    """What gunicorn.conf.py gives with this environment (GUNICORN_* variables), read in a
    process of its own: the file prepares the process that reads it for serving (on SQLite it
    keeps the PostgreSQL driver out), and this one needs the driver."""
    code = (
        "import json, runpy, sys\n"
        "conf = runpy.run_path(sys.argv[1])\n"
        "names = ('worker_class', 'workers', 'threads', 'preload_app', 'pdf_renderers')\n"
        "print(json.dumps({k: conf[k] for k in names}))\n"
    )
    done = subprocess.run(  # noqa: S603 - this interpreter, a fixed script
        [sys.executable, "-c", code, str(ROOT / "gunicorn.conf.py")],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


def bench_dataset(ds: Dataset, scale: float, quick: bool, only: set[str] | None = None) -> dict:
    counts = prepare(ds)
    subj = subjects(ds)
    server = Server(ds)
    print(f"== {ds.name}: {counts}", flush=True)
    server.start()
    result: dict = {"dataset": ds.name, "counts": counts, "scenarios": {}}
    try:
        with Db(ds) as db:
            scenarios = build_scenarios(server.port, db, subj, quick)
            bare = next(s for s in scenarios if s.name == "bare")
            for scenario in scenarios:
                if only and scenario.name not in only | {"bare"}:
                    if not (scenario.name == "certificate_generate" and only & DEPENDS_ON_GENERATE):
                        continue
                if scenario.setup:
                    scenario.setup(max(USERS))
                levels = {}
                for users in USERS:
                    before = adjacent_bare(server, bare, scenario, users, scale)
                    level = run_level(server, scenario, users, scale)
                    after = adjacent_bare(server, bare, scenario, users, scale)
                    levels[str(users)] = level.__dict__
                    if before is not None:
                        levels[str(users)]["bare_rps"] = [before, after]
                    print(
                        f"  {scenario.name:22} users={users} n={level.n:4} "
                        f"p50={level.p50:7.1f} p95={level.p95:7.1f} p99={level.p99:7.1f} ms "
                        f"{level.rps:7.1f}/s {level.bytes:7d} B err={level.errors}"
                        + (f" (bare {before:.0f}/{after:.0f}/s)" if before is not None else ""),
                        flush=True,
                    )
                result["scenarios"][scenario.name] = {"label": scenario.label, "levels": levels}
            if not only:
                result["pages"] = page_sizes(server.port, db, subj)
    finally:
        server.stop()
    result["worker_peak_bytes"] = server.peak_hwm
    result["worker_peak_pss_bytes"] = server.peak_pss
    result["workers_seen"] = len(server.workers_seen)
    result["renderer_peak_bytes"] = server.renderer_peak_hwm
    result["renderer_peak_pss_bytes"] = server.renderer_peak_pss
    bare = result["scenarios"]["bare"]["levels"]
    for scenario in result["scenarios"].values():
        for users, level in scenario["levels"].items():
            adjacent = level.get("bare_rps")
            base = statistics.fmean(adjacent) if adjacent else bare[users]["rps"]
            level["share_of_bare"] = round(level["rps"] / base, 3) if base else None
    return result


ADJACENT_BARE_REQUESTS = 300


def adjacent_bare(server: Server, bare: Scenario, scenario: Scenario, users: int, scale: float):
    """The bare route's requests/s just before or after a scenario at ``users`` users: its
    share of the bare route compares it with the machine as it was at that moment (on a
    shared virtual machine the same run's bare route went from 1,000 to 2,000 requests/s
    within minutes, and every share with it). None for the bare route itself."""
    if scenario is bare:
        return None
    quick = Scenario(
        bare.name,
        bare.label,
        bare.run,
        requests=ADJACENT_BARE_REQUESTS,
        warmup=2,
        min_seconds=ADJACENT_MIN_SECONDS,
    )
    return run_level(server, quick, users, max(scale, 0.5)).rps


# --- targets and the table -----------------------------------------------------------------


def checks(results: dict) -> list[dict]:
    out = []

    def add(what: str, value, target, ok: bool, where: str):
        out.append({"check": what, "value": value, "target": target, "ok": ok, "where": where})

    js = results["javascript_gzip"]
    add(
        "JavaScript shipped (gzip)",
        sum(js.values()),
        JS_GZIP_BYTES,
        sum(js.values()) <= JS_GZIP_BYTES,
        "static/",
    )
    for name, run in results["runs"].items():
        db_name, size = name.split("-")
        four = {k: v["levels"][str(max(USERS))] for k, v in run["scenarios"].items()}
        if size == "large":
            for scenario, target in P95_TARGETS_MS.items():
                if scenario in four:
                    p95 = four[scenario]["p95"]
                    add(f"p95 {scenario} (ms)", p95, target, p95 <= target, name)
            for scenario in PAGE_LIKE:
                if scenario in four:
                    share = four[scenario]["share_of_bare"]
                    add(
                        f"share of bare {scenario}",
                        share,
                        SHARE_OF_BARE,
                        (share or 0) >= SHARE_OF_BARE,
                        name,
                    )
            small = results["runs"].get(f"{db_name}-small")
            if small:
                for scenario, level in four.items():
                    if scenario == "bare":
                        continue
                    base = small["scenarios"][scenario]["levels"][str(max(USERS))]["p95"]
                    ratio = round(level["p95"] / base, 2) if base else None
                    run["scenarios"][scenario]["large_small_p95"] = ratio
                    add(
                        f"large/small p95 {scenario}",
                        ratio,
                        LARGE_SMALL_RATIO,
                        ratio is not None and ratio <= LARGE_SMALL_RATIO,
                        db_name,
                    )
        if "card_move" in four:
            size_b = four["card_move"]["bytes"]
            add("card move response (bytes)", size_b, MOVE_BYTES, size_b <= MOVE_BYTES, name)
        biggest = max(run.get("pages", {}).items(), key=lambda kv: kv[1], default=("", 0))
        add(
            f"largest page HTML (bytes) {biggest[0]}",
            biggest[1],
            PAGE_BYTES,
            biggest[1] <= PAGE_BYTES,
            name,
        )
        peak = run["worker_peak_bytes"]
        add(
            "worker peak memory (MB)",
            round(peak / MB, 1),
            WORKER_BYTES // MB,
            peak <= WORKER_BYTES,
            name,
        )
    return out


def memory_line(run: dict) -> str:
    line = (
        f"workers' peak memory: RSS {run['worker_peak_bytes'] / MB:.0f} MB, "
        f"PSS {run.get('worker_peak_pss_bytes', 0) / MB:.0f} MB"
    )
    if run.get("renderer_peak_bytes"):
        line += (
            f"; PDF renderer's: RSS {run['renderer_peak_bytes'] / MB:.0f} MB, "
            f"PSS {run.get('renderer_peak_pss_bytes', 0) / MB:.0f} MB"
        )
    return line


def print_table(results: dict) -> None:
    for name, run in results["runs"].items():
        print(f"\n{name}  ({memory_line(run)})")
        head = (
            f"{'scenario':22} {'users':>5} {'p50':>7} {'p95':>7} {'p99':>7} {'req/s':>7} "
            f"{'÷bare':>6} {'bytes':>8} {'L/S p95':>7} {'err':>4}"
        )
        print(head)
        print("-" * len(head))
        for scenario, data in run["scenarios"].items():
            for users, lv in data["levels"].items():
                ratio = data.get("large_small_p95") if users == str(max(USERS)) else None
                print(
                    f"{scenario:22} {users:>5} {lv['p50']:7.1f} {lv['p95']:7.1f} {lv['p99']:7.1f} "
                    f"{lv['rps']:7.1f} {lv['share_of_bare'] or 0:6.2f} {lv['bytes']:8d} "
                    f"{'' if ratio is None else f'{ratio:.2f}':>7} {lv['errors']:4d}"
                )
    print("\ntargets (issue 10):")
    for c in results["checks"]:
        mark = "ok  " if c["ok"] else "MISS"
        print(f"  {mark} {c['check']:48} {c['value']!s:>10} (target {c['target']}) [{c['where']}]")


def markdown(results: dict) -> str:
    """The figures as Markdown tables (for docs/performance.md)."""
    out = []
    for name, run in results["runs"].items():
        counts = run["counts"]
        out.append(
            f"### {name}\n\n{counts['depositors']:,} depositors, "
            f"{counts['deposit_records']:,} deposit records, {counts['loans']:,} loans, "
            f"{counts['cases']:,} cases ({counts['open_cases']:,} open). "
            f"{memory_line(run)[0].upper()}{memory_line(run)[1:]}.\n"
        )
        out.append(
            "| scenario | users | p50 ms | p95 ms | p99 ms | req/s | bare req/s | ÷ bare | bytes "
            "| large/small p95 |"
        )
        out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for scenario, data in run["scenarios"].items():
            for users, lv in data["levels"].items():
                ratio = data.get("large_small_p95") if users == str(max(USERS)) else None
                adjacent = lv.get("bare_rps") or [lv["rps"]]
                out.append(
                    f"| {scenario} | {users} | {lv['p50']:.1f} | {lv['p95']:.1f} | "
                    f"{lv['p99']:.1f} | {lv['rps']:.1f} | {statistics.fmean(adjacent):.0f} | "
                    f"{lv['share_of_bare'] or 0:.2f} | "
                    f"{lv['bytes']:,} | {'' if ratio is None else f'{ratio:.2f}'} |"
                )
        out.append("")
    out.append("| target | value | limit | met | run |")
    out.append("|---|---:|---:|:---:|---|")
    for c in results["checks"]:
        out.append(
            f"| {c['check']} | {c['value']} | {c['target']} | {'yes' if c['ok'] else '**no**'} "
            f"| {c['where']} |"
        )
    return "\n".join(out) + "\n"


def machine() -> dict:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = 0
    try:
        mem = int(Path("/proc/meminfo").read_text().split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(mem / 1024**3, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average": os.getloadavg(),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--dataset", choices=("large", "small", "both"), default="both")
    parser.add_argument("--pg-url", default=PG_LARGE)
    parser.add_argument("--pg-small-url", default=PG_SMALL)
    parser.add_argument("--quick", action="store_true", help="a quarter of the requests")
    parser.add_argument("--output", default=str(RESULTS))
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated scenarios to run (the bare route always runs); for trying a change",
    )
    args = parser.parse_args(argv)
    only = {name for name in args.only.split(",") if name}
    scale = 0.25 if args.quick else 1.0
    results = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "gunicorn": gunicorn_settings(),
        "users": list(USERS),
        "quick": args.quick,
        "runs": {},
        "javascript_gzip": javascript_gzip(),
    }
    for ds in datasets(args):
        results["runs"][ds.name] = bench_dataset(ds, scale, args.quick, only)
    results["checks"] = checks(results)
    results["machine"]["load_average_after"] = os.getloadavg()
    Path(args.output).write_text(json.dumps(results, ensure_ascii=False, indent=2, default=str))
    (BENCH_DIR / "results.md").write_text(markdown(results))  # tables for the docs
    print_table(results)
    print(f"\nwritten to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
