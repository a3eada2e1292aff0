#!/usr/bin/env python3
"""Crash consistency of withdrawals (issue 9, point 17), against a real multi-worker server.

Each run starts the portal under gunicorn (2 workers, 127.0.0.1 only) with a crash point armed
in the development bank adapter (``PORTAL_CRASH_POINT``, see ``portal.services.bank``):

* ``before``: the payout is recorded as pending, the bank was not called yet;
* ``during``: the bank's own transaction has written the transfer but not committed it;
* ``after``: the bank committed the transfer, the portal did not confirm the payout yet.

A retired demo depositor logs in, asks for a code and submits the retirement withdrawal. When
the worker reaches the point it says so in a marker file and waits; the script then kills the
whole server — master and workers — by its process group id with ``kill -9``. It restarts the
server (``PORTAL_RECONCILE_GRACE_SECONDS=0``: nothing of the dead server can still be in
flight), which reconciles pending payouts on start, and checks:

* the payout was reversed (``before``, ``during``) or confirmed (``after``), never left pending;
* ``flask --app portal backup check``: database integrity (SQLite ``integrity_check``, or the
  PostgreSQL index/constraint checks), every ledger adds up, the portal's payouts equal the bank
  adapter's own ledger, and the audit chain is intact; ``flask --app portal audit verify`` too;
* the balance invariant: the starting balance plus the interest credited equals the final
  balance plus what was paid;
* a retry pays once: resubmitting the old form gives the stored result (or, for a reversed
  payout, a clear refusal), and a fresh submission pays only when nothing was paid.

Usage (bounded: a few runs, each under a minute; loopback only)::

    .venv/bin/python scripts/crash_test.py                  # 6 runs at random points, SQLite
    .venv/bin/python scripts/crash_test.py --runs 3 --points before,during,after --seed 1
    .venv/bin/python scripts/crash_test.py --wipe \
        --database-url postgresql://postgres@127.0.0.1:5432/dev_security_crash

The module also holds the harness the tests use (``Server``, ``Browser``, the login and
withdrawal steps): ``tests/test_money_invariants.py`` and ``tests/test_crash_consistency.py``.
"""

from __future__ import annotations

import argparse
import http.cookiejar
import os
import random
import re
import secrets
import signal
import socket
import subprocess  # nosec B404 - starts gunicorn and flask with argument lists, no shell
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
SECRET_KEY = "crash-test-secret-key-0123456789abcdef0123456789abcdef"  # noqa: S105 # nosec B105
POINTS = ("before", "during", "after")
REQUEST_TIMEOUT = 90
PASSWORD = "Demo1234"  # noqa: S105 # nosec B105 - the published demo login


def check(condition, detail) -> None:
    """An assertion that also holds under ``python -O``: AssertionError with the detail."""
    if not condition:
        raise AssertionError(detail)


# --- a real server ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class ServerFailed(RuntimeError):
    pass


@dataclass
class Server:
    """gunicorn serving ``portal:create_app()`` on 127.0.0.1, in its own process group."""

    database_url: str
    storage_dir: str
    workdir: Path
    workers: int = 2
    threads: int = 4
    port: int = 0
    proc: subprocess.Popen | None = None
    starts: int = 0

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.port}"

    def env(self, extra: dict | None = None) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
        env.update(
            PORTAL_ENV="development",
            PORTAL_DATABASE_URL=self.database_url,
            PORTAL_STORAGE_DIR=self.storage_dir,
            PORTAL_SECRET_KEY=SECRET_KEY,
        )
        env.update(extra or {})
        return env

    def start(self, extra_env: dict | None = None, timeout: float = 45.0) -> None:
        self.port = free_port()
        self.starts += 1
        config = self.workdir / "gunicorn_test.conf.py"
        config.write_text("# test server: every setting is on the command line\n")
        log = open(self.workdir / f"server-{self.starts}.log", "ab")  # noqa: SIM115
        cmd = [
            str(BIN / "gunicorn"),
            "--config",
            str(config),
            "--bind",
            f"{HOST}:{self.port}",
            "--workers",
            str(self.workers),
            "--threads",
            str(self.threads),
            "--worker-class",
            "gthread",
            "--timeout",
            "120",
            "--graceful-timeout",
            "5",
            "--no-control-socket",
            "--chdir",
            str(ROOT),
            "portal:create_app()",
        ]
        self.proc = subprocess.Popen(  # noqa: S603 # nosec B603 - fixed argument list
            cmd,
            env=self.env(extra_env),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                raise ServerFailed(f"the server exited ({code}):\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.base}/healthz", timeout=2) as r:  # noqa: S310 # nosec B310
                    if r.status == 200:
                        return
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.2)
        self.kill()
        raise ServerFailed(f"the server did not answer in {timeout} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        path = self.workdir / f"server-{self.starts}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def kill(self) -> None:
        """kill -9 the whole server (master and workers) by its process group id."""
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=15)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            self.kill()


# --- a browser without JavaScript ---------------------------------------------------------


@dataclass
class Answer:
    status: int
    location: str
    text: str

    def field(self, name: str) -> str:
        m = re.search(rf'name="{re.escape(name)}"[^>]*?value="([^"]*)"', self.text)
        if m is None:
            m = re.search(rf'value="([^"]*)"[^>]*?name="{re.escape(name)}"', self.text)
        return m.group(1) if m else ""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Browser:
    """Cookies, no redirects followed, CSRF token taken from the last page."""

    def __init__(self, base: str):
        check(urllib.parse.urlsplit(base).hostname == HOST, "loopback only")
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect()
        )
        self.csrf = ""

    def open(self, method: str, path: str, data: dict | None = None) -> Answer:
        body = urllib.parse.urlencode(data or {}, doseq=True).encode() if data is not None else None
        request = urllib.request.Request(self.base + path, data=body, method=method)  # noqa: S310
        try:
            with self.opener.open(request, timeout=REQUEST_TIMEOUT) as r:  # nosec B310
                answer = Answer(r.status, r.headers.get("Location", ""), r.read().decode())
        except urllib.error.HTTPError as e:
            text = e.read().decode(errors="replace")
            answer = Answer(e.code, e.headers.get("Location", ""), text)
        token = answer.field("csrf_token")
        if token:
            self.csrf = token
        return answer

    def get(self, path: str) -> Answer:
        return self.open("GET", path)

    def post(self, path: str, data: dict) -> Answer:
        return self.open("POST", path, {"csrf_token": self.csrf, **data})


# --- steps on the portal's database (the caller points portal.db.db at it) -----------------


def sms_mark(phone: str) -> int:
    from portal.models import SmsMessage

    return (
        SmsMessage.select(SmsMessage.id)
        .where(SmsMessage.phone == phone)
        .order_by(SmsMessage.id.desc())
        .scalar()
        or 0
    )


def sms_code(phone: str, after: int) -> str:
    from portal.models import SmsMessage

    for _ in range(50):
        message = (
            SmsMessage.select()
            .where((SmsMessage.phone == phone) & (SmsMessage.id > after))
            .order_by(SmsMessage.id.desc())
            .first()
        )
        if message is not None:
            return re.search(r"验证码 (\d{6})", message.body).group(1)
        time.sleep(0.1)
    raise AssertionError(f"no SMS code reached {phone[:3]}****")


def reset_rate_limits() -> None:
    """Several sessions of one person within minutes: lift the SMS limits (test data only)."""
    from portal.models import RateLimitHit

    RateLimitHit.delete().execute()


def login_depositor(browser: Browser, depositor) -> None:
    browser.get("/login")
    mark = sms_mark(depositor.phone)
    r = browser.post("/login", {"resident_id": depositor.resident_id, "password": PASSWORD})
    check(r.status == 303, (r.status, r.text[-500:]))
    browser.get("/login/code")
    r = browser.post("/login/code", {"code": sms_code(depositor.phone, mark)})
    check(r.status == 303 and "/login" not in r.location, (r.status, r.location))


def login_staff(browser: Browser, username: str, secret: str, password: str) -> None:
    import pyotp

    browser.get("/staff/login")
    r = browser.post("/staff/login", {"username": username, "password": password})
    check(r.status == 303, (r.status, r.text[-500:]))
    browser.get("/staff/login/totp")
    r = browser.post("/staff/login/totp", {"code": pyotp.TOTP(secret).now()})
    check(r.status == 303 and "/login" not in r.location, (r.status, r.location))


def prepare_withdrawal(browser: Browser, depositor) -> dict:
    """The confirmation form of the retirement withdrawal, with a fresh code: what to POST."""
    page = browser.get("/me/retirement")
    check(page.status == 200, page.status)
    token = page.field("token")
    check(token, "the retirement form is not offered")
    mark = sms_mark(depositor.phone)
    r = browser.post("/me/code/withdraw", {"next": "/me/retirement"})
    check(r.status == 303, r.status)
    return {"csrf_token": browser.csrf, "token": token, "code": sms_code(depositor.phone, mark)}


def prepare_payoff(browser: Browser, depositor, loan_id: int) -> dict:
    path = f"/me/loans/{loan_id}/payoff"
    page = browser.get(path)
    check(page.status == 200, page.status)
    token = page.field("token")
    check(token, "the payoff form is not offered")
    mark = sms_mark(depositor.phone)
    r = browser.post("/me/code/payoff", {"next": path})
    check(r.status == 303, r.status)
    return {
        "csrf_token": browser.csrf,
        "token": token,
        "funding": "balance",
        "code": sms_code(depositor.phone, mark),
    }


def retired_people(today, limit: int):
    """Demo depositors who can log in and withdraw their whole balance on retirement."""
    from portal.models import Account, Depositor, Payout
    from portal.services import payouts

    found = []
    query = (
        Depositor.select()
        .join(Account)
        .where(Depositor.password_hash.is_null(False) & (Account.status == "正常"))
        .order_by(Depositor.id)
    )
    for person in query:
        if Payout.select().join(Account).where(Account.depositor == person).exists():
            continue  # a person some earlier test or run already paid
        if payouts.retirement_quote(person, today).eligible:
            found.append(person)
            if len(found) == limit:
                break
    return found


def money_of(depositor) -> dict:
    """Balance, interest credited and confirmed payouts of the person's account (Decimal)."""
    from portal.models import Account, BankTransfer, DepositRecord, Payout

    account = Account.get(Account.depositor == depositor)
    payouts = list(Payout.select().where(Payout.account == account))
    keys = [p.idempotency_key for p in payouts] or ["-"]
    return {
        "balance": account.balance,
        "status": account.status,
        "interest": sum(
            (
                r.amount
                for r in DepositRecord.select().where(
                    (DepositRecord.account == account) & (DepositRecord.kind == "结息")
                )
            ),
            Decimal("0.00"),
        ),
        "paid": sum((p.amount for p in payouts if p.status == "confirmed"), Decimal("0.00")),
        "statuses": sorted(p.status for p in payouts),
        "bank_out": sum(
            (
                t.amount
                for t in BankTransfer.select().where(
                    BankTransfer.idempotency_key.in_(keys) & (BankTransfer.direction == "out")
                )
            ),
            Decimal("0.00"),
        ),
    }


def flask_command(server: Server, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603 # nosec B603 - fixed argument list
        [str(BIN / "flask"), "--app", "portal", *args],
        env=server.env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


# --- one crash run ------------------------------------------------------------------------


@dataclass
class RunResult:
    point: str
    ok: bool
    notes: list[str] = field(default_factory=list)


def _wait_for(path: Path, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return True
        time.sleep(0.05)
    return False


def crash_run(server: Server, person, point: str, today) -> RunResult:
    result = RunResult(point, True)

    def fail(note: str) -> None:
        result.ok = False
        result.notes.append(note)

    marker = server.workdir / f"crash-{server.starts + 1}.marker"
    server.start({"PORTAL_CRASH_POINT": point, "PORTAL_CRASH_MARKER": str(marker)})
    before = money_of(person)
    browser = Browser(server.base)
    reset_rate_limits()
    login_depositor(browser, person)
    form = prepare_withdrawal(browser, person)
    answers: list = []

    def submit():
        try:
            answers.append(browser.post("/me/retirement", form))
        except Exception as exc:  # the server dies under the request: that is the point
            answers.append(exc)

    thread = threading.Thread(target=submit, daemon=True)
    thread.start()
    if not _wait_for(marker, 30):
        server.kill()
        fail(f"the withdrawal never reached the crash point {point!r}: {answers}")
        return result
    server.kill()  # kill -9, master and workers, in the middle of the withdrawal
    thread.join(15)
    crashed = money_of(person)
    result.notes.append(f"killed at {point}: payouts {crashed['statuses']}")

    server.start({"PORTAL_RECONCILE_GRACE_SECONDS": "0"})  # start-up reconciliation
    after = money_of(person)
    expected = "confirmed" if point == "after" else "reversed"
    if after["statuses"] != [expected]:
        fail(f"after the restart the payouts are {after['statuses']}, expected [{expected!r}]")
    checks = flask_command(server, "backup", "check")
    if checks.returncode != 0:
        fail(f"backup check: {checks.stdout}{checks.stderr}")
    chain = flask_command(server, "audit", "verify")
    if chain.returncode != 0:
        fail(f"audit verify: {chain.stdout}{chain.stderr}")

    # a retry: the old form again (same key) gives the stored result or a clear refusal
    browser = Browser(server.base)
    reset_rate_limits()
    login_depositor(browser, person)
    again = browser.post("/me/retirement", {**form, "csrf_token": browser.csrf})
    if again.status >= 500 or "database is locked" in again.text:
        fail(f"the replay got HTTP {again.status}")
    if point == "after" and not (again.status == 303 and "/receipt/" in again.location):
        fail(f"the replay of a paid withdrawal did not show its receipt ({again.status})")
    if point != "after" and again.status != 422:
        fail(f"the replay of a reversed withdrawal was not refused ({again.status})")
    # ... and a fresh submission pays only if nothing was paid
    page = browser.get("/me/retirement")
    if page.field("token") and 'name="code"' in page.text:
        fresh = prepare_withdrawal(browser, person)
        answer = browser.post("/me/retirement", fresh)
        if answer.status >= 500:
            fail(f"the fresh retry got HTTP {answer.status}")
    final = money_of(person)
    if final["statuses"].count("confirmed") != 1:
        fail(f"paid {final['statuses'].count('confirmed')} times: {final['statuses']}")
    if final["paid"] != final["bank_out"]:
        fail(f"the portal paid {final['paid']}, the bank's ledger says {final['bank_out']}")
    credited = final["interest"] - before["interest"]
    if before["balance"] + credited != final["balance"] + final["paid"]:
        fail(
            f"balance invariant: {before['balance']} + interest {credited} "
            f"!= {final['balance']} + {final['paid']}"
        )
    checks = flask_command(server, "backup", "check")
    if checks.returncode != 0:
        fail(f"backup check after the retry: {checks.stdout}{checks.stderr}")
    server.stop()
    return result


# --- the database under test --------------------------------------------------------------


def prepare_database(url: str, wipe: bool) -> None:
    """Migrate and load the small demo data into an empty database (or a wiped one)."""
    from portal import demo, migrate
    from portal.db import db, make_database
    from portal.filters import local_today

    database = make_database(url, str(ROOT))
    database.connect()
    if database.get_tables():
        if not wipe:
            raise SystemExit(f"{url} is not empty; pass --wipe to start it over")
        if url.startswith("sqlite"):
            raise SystemExit("give a new SQLite file instead of wiping one")
        database.execute_sql("DROP SCHEMA IF EXISTS public CASCADE")
        database.execute_sql("CREATE SCHEMA public")
    database.close()
    db.initialize(make_database(url, str(ROOT)))
    migrate.upgrade(db.obj, log=lambda *_: None)
    demo.load(local_today(), size=60, log=lambda *_: None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=6, help="crash runs (each < 1 minute)")
    parser.add_argument("--points", default=",".join(POINTS), help="crash points to draw from")
    parser.add_argument("--seed", type=int, default=None, help="random seed (printed)")
    parser.add_argument("--database-url", default=None, help="default: a new SQLite file")
    parser.add_argument("--wipe", action="store_true", help="start a PostgreSQL database over")
    parser.add_argument("--max-seconds", type=float, default=900, help="stop starting new runs")
    args = parser.parse_args(argv)
    points = [p.strip() for p in args.points.split(",") if p.strip()]
    if not points or any(p not in POINTS for p in points):
        parser.error(f"--points takes {', '.join(POINTS)}")
    seed = args.seed if args.seed is not None else secrets.randbelow(10**6)
    rng = random.Random(seed)  # noqa: S311 # nosec B311 - picks crash points, not secrets
    # every point at least once when the runs allow it, then at random
    schedule = rng.sample(points, len(points))[: args.runs]
    schedule += [rng.choice(points) for _ in range(args.runs - len(schedule))]
    print(f"crash test: seed {seed}, points {schedule}")

    with tempfile.TemporaryDirectory(prefix="hpf-crash-") as tmp:
        workdir = Path(tmp)
        url = args.database_url or f"sqlite:///{workdir / 'portal.db'}"
        os.environ.setdefault("PORTAL_SECRET_KEY", SECRET_KEY)
        from portal import create_app
        from portal.filters import local_today

        app = create_app(
            {"DATABASE_URL": url, "STORAGE_DIR": str(workdir / "storage"), "ENV": "development"}
        )
        with app.app_context():
            prepare_database(url, args.wipe)
            today = local_today()
            people = retired_people(today, len(schedule))
            if len(people) < len(schedule):
                print(f"only {len(people)} retired demo depositors: fewer runs")
            server = Server(url, str(workdir / "storage"), workdir)
            started = time.monotonic()
            results = []
            try:
                for point, person in zip(schedule, people, strict=False):
                    if time.monotonic() - started > args.max_seconds:
                        print("time is up: no more runs")
                        break
                    result = crash_run(server, person, point, today)
                    results.append(result)
                    verdict = "ok  " if result.ok else "FAIL"
                    print(f"  {verdict} {point:7} " + "; ".join(result.notes))
            finally:
                server.kill()
    failed = [r for r in results if not r.ok]
    print(f"{len(results) - len(failed)}/{len(results)} runs consistent")
    return 1 if failed or not results else 0


if __name__ == "__main__":
    sys.exit(main())
