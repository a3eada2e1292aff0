"""Browser journeys against the real portal, started as a subprocess per test session.

* Debian's Chromium (``/usr/bin/chromium``) is used; Playwright never downloads a browser.
  Without it the tests are skipped, unless ``E2E_REQUIRED=1`` (then they fail).
* ``portal_server`` (SQLite) backs ``base_url``; ``pg_portal_server`` runs a second portal on
  PostgreSQL (``PG_TEST_URL``, default ``postgresql://postgres@127.0.0.1:5432/test``), skipped
  when unreachable unless ``PG_REQUIRED=1`` or ``E2E_REQUIRED=1``.
* Every browser context is watched: a console message about the Content Security Policy, or
  an uncaught page error, fails the test that caused it (``E2E_DEBUG_CONSOLE=1`` prints all
  console messages). ``E2E_CHROMIUM`` points at another Chromium binary.
* Screenshots and the servers' logs land in ``e2e/artifacts/`` (gitignored).
* Journey helpers (``Portal.login_depositor`` ...) act like a user: labels, buttons, and the
  development SMS outbox page for the one-time codes.
"""

from __future__ import annotations

import base64
import http.client
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import pyotp
import pytest
from playwright.sync_api import BrowserContext, Page, expect

from portal import crypto

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"  # gitignored
CHROMIUM = os.environ.get("E2E_CHROMIUM", "/usr/bin/chromium")  # Debian package
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
PG_E2E_DB = os.environ.get("E2E_PG_DB", "portal_e2e")
DEMO_SIZE = 80
STARTUP_TIMEOUT = 30.0

expect.set_options(timeout=10_000)

# The portals under test and this test process share one set of encryption keys, so tests can
# read the demo people (IDs are encrypted at rest) straight from the servers' databases.
# Kept in the environment: test modules import this file a second time as e2e.conftest, and
# both copies must agree.
E2E_DATA_KEYS = os.environ.setdefault(
    "E2E_DATA_KEYS", "e2e:" + base64.b64encode(secrets.token_bytes(32)).decode()
)
E2E_LOOKUP_KEY = os.environ.setdefault(
    "E2E_LOOKUP_KEY", base64.b64encode(secrets.token_bytes(32)).decode()
)
crypto.configure(crypto.parse_keys(E2E_DATA_KEYS, E2E_LOOKUP_KEY))


def _flag(name: str) -> bool:
    return os.environ.get(name, "0") == "1"


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "csp_violation_expected: the test provokes a CSP violation on purpose"
    )


# --- the browser --------------------------------------------------------------------------


@pytest.fixture(scope="session", autouse=True)
def _chromium_available():
    if not os.access(CHROMIUM, os.X_OK):
        message = f"Chromium not found at {CHROMIUM} (Debian package 'chromium')"
        if _flag("E2E_REQUIRED"):
            pytest.fail(f"E2E_REQUIRED=1 but {message}", pytrace=False)
        pytest.skip(message)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-default-apps",
        ],
    }


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    # no viewport here: tests pass their own to new_context(), which must not repeat a key
    return {**browser_context_args, "locale": "zh-CN", "timezone_id": "Asia/Shanghai"}


class BrowserLog:
    """Console messages and page errors of every context a test opens."""

    def __init__(self):
        self.messages: list[str] = []
        self.page_errors: list[str] = []

    def watch(self, context: BrowserContext) -> None:
        context.on("console", self._on_console)
        context.on(
            "weberror",
            lambda error: self.page_errors.append(
                f"{error.page.url if error.page else '?'}: {error.error}"
            ),
        )

    def _on_console(self, message) -> None:
        page = message.page
        self.messages.append(f"[{message.type}] {page.url if page else '?'}: {message.text}")

    @property
    def csp_violations(self) -> list[str]:
        return [m for m in self.messages if "Content Security Policy" in m]


@pytest.fixture(autouse=True)
def browser_log() -> BrowserLog:
    return BrowserLog()


@pytest.fixture
def new_context(new_context, browser_log):
    """pytest-playwright's factory, with every context watched by ``browser_log``."""

    def factory(**kwargs) -> BrowserContext:
        context = new_context(**kwargs)
        browser_log.watch(context)
        return context

    return factory


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    result = yield
    log = getattr(item, "funcargs", {}).get("browser_log")
    if os.environ.get("E2E_DEBUG_CONSOLE") and isinstance(log, BrowserLog):
        print("\n".join(log.messages + log.page_errors))
    if isinstance(log, BrowserLog) and not item.get_closest_marker("csp_violation_expected"):
        problems = log.csp_violations + [f"page error: {e}" for e in log.page_errors]
        if problems:
            raise AssertionError(
                "browser reported CSP violations or script errors:\n" + "\n".join(problems)
            )
    return result


# --- the portal server --------------------------------------------------------------------


@dataclass
class Person:
    resident_id: str
    name: str
    phone: str


@dataclass
class Operator(Person):
    credit_code: str
    employer_name: str


@dataclass
class Demo:
    depositors: list[Person]  # with a password, account 正常
    unactivated: list[Person]  # no password yet (first login)
    operators: list[Operator]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _flask(*args: str) -> list[str]:
    return [str(Path(sys.executable).parent / "flask"), "--app", "portal", *args]


def _read_demo(database_url: str) -> Demo:
    """Logins for the journeys, read straight from the database the server uses."""
    from portal.db import make_database
    from portal.models import Account, Depositor, Employer, EmployerOperator

    database = make_database(database_url, root=str(ROOT))
    with database.bind_ctx([Account, Depositor, Employer, EmployerOperator]):
        database.connect()
        try:

            def person(d):
                return Person(d.resident_id, d.name, d.phone)

            depositors = [
                person(d)
                for d in (
                    Depositor.select()
                    .join(Account, on=(Account.depositor == Depositor.id))
                    .where(
                        Depositor.password_hash.is_null(False),
                        Depositor.active,
                        Account.status == "正常",
                    )
                    .order_by(Depositor.id)
                    .limit(10)
                )
            ]
            unactivated = [
                person(d)
                for d in (
                    Depositor.select()
                    .where(Depositor.password_hash.is_null(), Depositor.active)
                    .order_by(Depositor.id)
                )
            ]
            operators = [
                Operator(o.resident_id, o.name, o.phone, o.employer.credit_code, o.employer.name)
                for o in (
                    EmployerOperator.select(EmployerOperator, Employer)
                    .join(Employer)
                    .where(
                        EmployerOperator.active,
                        EmployerOperator.password_hash.is_null(False),
                        Employer.status != "注销",
                    )
                    .order_by(EmployerOperator.id)
                )
            ]
        finally:
            database.close()
    assert depositors and unactivated and operators, "demo data lacks the needed logins"
    return Demo(depositors, unactivated, operators)


class PortalServer:
    """``flask run`` on a fresh, migrated, seeded database."""

    def __init__(self, database_url: str, workdir: Path):
        self.database_url = database_url
        self.workdir = workdir
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "server.log"
        self.env = {
            **os.environ,
            "PORTAL_DATABASE_URL": database_url,
            "PORTAL_SECRET_KEY": secrets.token_hex(32),
            "PORTAL_DATA_KEYS": E2E_DATA_KEYS,
            "PORTAL_LOOKUP_KEY": E2E_LOOKUP_KEY,
            "PORTAL_ENV": "development",
            "PORTAL_STORAGE_DIR": str(workdir / "storage"),
            # every journey logs in from 127.0.0.1: lift the per-address login limit
            "PORTAL_LOGIN_ADDRESS_LIMIT": "100000",
            "PYTHONUNBUFFERED": "1",
        }
        self.env.pop("FLASK_DEBUG", None)
        self.process: subprocess.Popen | None = None
        self.totp_steps: dict[str, int] = {}  # staff username -> last TOTP step used
        self.staff_states: dict[str, dict] = {}  # staff username -> storage_state
        self.demo: Demo | None = None

    def _run(self, *args: str) -> None:
        done = subprocess.run(
            _flask(*args),
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"flask {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
            )

    def start(self) -> PortalServer:
        self._run("db", "upgrade")
        self._run("seed-demo", "--size", str(DEMO_SIZE))
        self.demo = _read_demo(self.database_url)
        log = self.log_path.open("w")
        self.process = subprocess.Popen(
            _flask("run", "--host", "127.0.0.1", "--port", str(self.port), "--no-reload"),
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"portal exited with {self.process.returncode}:\n{self.log()}")
            if self._healthy():
                return self
            time.sleep(0.1)  # polling the server while it starts, not waiting in a test
        self.stop()
        raise RuntimeError(f"portal not healthy after {STARTUP_TIMEOUT}s:\n{self.log()}")

    def _healthy(self) -> bool:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
        try:
            connection.request("GET", "/healthz")
            return connection.getresponse().status == 200
        except OSError:  # refused / reset / timed out while the server starts
            return False
        finally:
            connection.close()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def keep_log(self, name: str) -> None:
        """Copy the server's output to e2e/artifacts/ for a look after a failure."""
        if self.log_path.exists():
            ARTIFACTS.mkdir(exist_ok=True)
            shutil.copyfile(self.log_path, ARTIFACTS / name)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""


@pytest.fixture(scope="session")
def portal_server(_chromium_available):
    workdir = Path(tempfile.mkdtemp(prefix="portal-e2e-"))
    server = PortalServer(f"sqlite:///{workdir / 'e2e.db'}", workdir)  # absolute: 4 slashes
    try:
        yield server.start()
    finally:
        server.stop()
        server.keep_log("server-sqlite.log")
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def base_url(portal_server) -> str:
    return portal_server.url


def _pg_url(database: str | None = None) -> str:
    url = os.environ.get("PG_TEST_URL", DEFAULT_PG_URL)
    if database is None:
        return url
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + database))


def _prepare_pg_database() -> str:
    """Create ``portal_e2e`` if missing and give it an empty ``public`` schema."""
    import psycopg
    from psycopg import sql

    admin_url = _pg_url()
    try:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=3) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (PG_E2E_DB,)
            ).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(PG_E2E_DB)))
    except psycopg.OperationalError as exc:
        message = f"PostgreSQL at {admin_url} unreachable: {exc}".strip()
        if _flag("PG_REQUIRED") or _flag("E2E_REQUIRED"):
            pytest.fail(
                f"PostgreSQL is required (PG_REQUIRED/E2E_REQUIRED=1): {message}", pytrace=False
            )
        pytest.skip(message)
    url = _pg_url(PG_E2E_DB)
    with psycopg.connect(url, autocommit=True, connect_timeout=3) as conn:
        conn.execute("SET lock_timeout = '15s'")
        conn.execute("DROP SCHEMA IF EXISTS public CASCADE")
        conn.execute("CREATE SCHEMA public")
    return url


@pytest.fixture(scope="session")
def pg_portal_server(_chromium_available):
    url = _prepare_pg_database()
    workdir = Path(tempfile.mkdtemp(prefix="portal-e2e-pg-"))
    server = PortalServer(url, workdir)
    try:
        yield server.start()
    finally:
        server.stop()
        server.keep_log("server-postgresql.log")
        shutil.rmtree(workdir, ignore_errors=True)


# --- journeys -----------------------------------------------------------------------------


def read_sms_code(context: BrowserContext, phone: str, purpose_text: str = "登录") -> str:
    """Open the development SMS outbox in a second tab and read the newest code."""
    outbox = context.new_page()
    try:
        outbox.goto(f"/dev/sms?phone={quote(phone)}")
        newest = outbox.locator("tr.sms .sms-body").first
        expect(newest).to_contain_text(f"【{purpose_text}】验证码")
        text = newest.inner_text()
    finally:
        outbox.close()
    match = re.search(r"验证码\s*(\d{6})", text)
    assert match, f"no code in SMS {text!r}"
    return match.group(1)


def masked_phone(phone: str) -> str:
    return phone[:3] + "*" * (len(phone) - 7) + phone[-4:]


def masked_id(resident_id: str) -> str:
    return resident_id[:4] + "*" * (len(resident_id) - 8) + resident_id[-4:]


STAFF_PASSWORD = "Staff2026"
DEMO_PASSWORD = "Demo1234"


def _staff_secret(username: str) -> tuple[str, str, str]:
    from portal.access import ROLE_LABELS
    from portal.demo import DEMO_STAFF

    for user, name, role, _dept, secret in DEMO_STAFF:
        if user == username:
            return name, ROLE_LABELS[role], secret
    raise KeyError(username)


@dataclass
class Portal:
    """Journeys through one running portal (the page's context has its base_url)."""

    server: PortalServer
    demo_password = DEMO_PASSWORD
    masked_id = staticmethod(masked_id)
    masked_phone = staticmethod(masked_phone)

    @property
    def demo(self) -> Demo:
        return self.server.demo

    def submit_sms_code(self, page: Page, phone: str, purpose_text: str = "登录") -> None:
        expect(page.get_by_text(masked_phone(phone))).to_be_visible()
        page.get_by_label("短信验证码", exact=True).fill(
            read_sms_code(page.context, phone, purpose_text)
        )

    def login_depositor(self, page: Page, person: Person, password: str = DEMO_PASSWORD) -> None:
        page.goto("/login")
        expect(page.get_by_role("heading", level=1)).to_have_text("个人登录")
        page.get_by_label("身份证号码", exact=True).fill(person.resident_id)
        page.get_by_label("密码", exact=True).fill(password)
        page.get_by_role("button", name="下一步：短信验证").click()
        expect(page).to_have_url(re.compile(r"/login/code$"))
        self.submit_sms_code(page, person.phone)
        page.get_by_role("button", name="登录", exact=True).click()
        expect(page).to_have_url(re.compile(r"/me/$"))
        expect(page.get_by_role("heading", level=1)).to_have_text(f"您好，{person.name}")

    def login_operator(self, page: Page, operator: Operator) -> None:
        page.goto("/employer/login")
        expect(page.get_by_role("heading", level=1)).to_have_text("单位经办人登录")
        page.get_by_label("统一社会信用代码", exact=True).fill(operator.credit_code)
        page.get_by_label("经办人身份证号码", exact=True).fill(operator.resident_id)
        page.get_by_label("密码", exact=True).fill(DEMO_PASSWORD)
        page.get_by_role("button", name="下一步：短信验证").click()
        expect(page).to_have_url(re.compile(r"/employer/login/code$"))
        self.submit_sms_code(page, operator.phone)
        page.get_by_role("button", name="登录", exact=True).click()
        expect(page).to_have_url(re.compile(r"/employer/$"))
        expect(page.get_by_role("heading", level=1)).to_have_text(operator.employer_name)

    def totp_code(self, username: str) -> str:
        """A code the portal accepts: its time step must be newer than the last one used."""
        _name, _label, secret = _staff_secret(username)
        totp = pyotp.TOTP(secret)
        current = totp.timecode(time.time())
        step = max(current, self.server.totp_steps.get(username, 0) + 1)
        if step > current + 1:
            pytest.fail(
                f"staff user {username!r} logged in too often within 30 s; "
                "use another demo staff user in this test"
            )
        self.server.totp_steps[username] = step
        return totp.generate_otp(step)

    def login_staff(self, page: Page, username: str) -> None:
        name, role_label, _secret = _staff_secret(username)
        page.goto("/staff/login")
        expect(page.get_by_role("heading", level=1)).to_have_text("工作人员登录")
        page.get_by_label("用户名", exact=True).fill(username)
        page.get_by_label("密码", exact=True).fill(STAFF_PASSWORD)
        page.get_by_role("button", name="下一步：动态口令").click()
        expect(page).to_have_url(re.compile(r"/staff/login/totp$"))
        page.get_by_label("动态口令", exact=True).fill(self.totp_code(username))
        page.get_by_role("button", name="登录", exact=True).click()
        expect(page).to_have_url(re.compile(r"/staff/$"))
        expect(page.get_by_role("heading", level=1)).to_contain_text("工作台")
        expect(page.locator(".who-name")).to_have_text(name)
        expect(page.locator(".who .badge")).to_have_text(role_label)
        self.server.staff_states[username] = page.context.storage_state()

    def staff_state(self, new_context, username: str) -> dict:
        """A logged-in staff session (storage state), reusing one from an earlier login."""
        if username not in self.server.staff_states:
            context = new_context()
            try:
                self.login_staff(context.new_page(), username)
            finally:
                context.close()
        return self.server.staff_states[username]


@pytest.fixture
def portal(portal_server) -> Portal:
    return Portal(portal_server)


@pytest.fixture
def pg_portal(pg_portal_server) -> Portal:
    return Portal(pg_portal_server)
