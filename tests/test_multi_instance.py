"""Two portal instances on one PostgreSQL and one Redis (scale-out, issue 12).

Starts two real servers (gunicorn, two workers each) on two ports of 127.0.0.1 against a
database of their own, and checks what instances must share: migrations applied once when
both start together; a login on one is valid on the other and a logout on one ends it on both;
concurrent withdrawals split across the instances pay once; a board move on one is seen on the
other; lockout counts add up across instances.

Runs in the PostgreSQL pass of the suite (TEST_DATABASE_URL=postgresql://…) and needs Redis
on 127.0.0.1:6379; in CI both are required.
"""

from __future__ import annotations

import http.cookiejar
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import psycopg
import pyotp
import pytest

from portal import crypto
from portal.demo import DEMO_PASSWORD, DEMO_STAFF, STAFF_PASSWORD

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.committed

_pg = os.environ.get("TEST_DATABASE_URL", "")
if not _pg.startswith(("postgres", "psycopg")):
    pytest.skip("runs in the PostgreSQL pass (TEST_DATABASE_URL)", allow_module_level=True)
# a database of its own, named after the test database so parallel runs do not collide
DB_NAME = urllib.parse.urlsplit(_pg).path.lstrip("/") + "_multi"


def _url(database: str) -> str:
    parts = urllib.parse.urlsplit(_pg.replace("psycopg3://", "postgresql://", 1))
    return urllib.parse.urlunsplit(parts._replace(path="/" + database))


def _redis_url() -> str:
    url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/14")
    import redis

    try:
        redis.Redis.from_url(url).ping()
    except redis.ConnectionError:
        if os.environ.get("CI") or os.environ.get("PG_REQUIRED") == "1":
            raise
        pytest.skip("Redis is not running")
    return url


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Instance:
    def __init__(self, env: dict, workdir: Path, name: str):
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = env
        self.log = workdir / f"{name}.log"
        self.process = None
        self.output = None

    def start(self):
        self.output = self.log.open("w")
        self.process = subprocess.Popen(
            [
                str(BIN / "gunicorn"),
                "--config",
                "gunicorn.conf.py",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                "2",
                "portal:create_app()",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=self.output,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.base + "/healthz", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"instance did not start:\n{self.log.read_text()[-3000:]}")

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)
        if self.output:
            self.output.close()


class Browser:
    """A cookie jar and a few helpers: what one person's browser does."""

    def __init__(self, instance: Instance):
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect()
        )
        self.at = instance

    def use(self, instance: Instance) -> Browser:
        """The same cookies against another instance (same host, another port)."""
        self.at = instance
        return self

    def get(self, path: str) -> tuple[int, str, str]:
        return self._send(urllib.request.Request(self.at.base + path))

    def post(self, path: str, data: dict) -> tuple[int, str, str]:
        body = urllib.parse.urlencode(data, doseq=True).encode()
        return self._send(urllib.request.Request(self.at.base + path, data=body, method="POST"))

    def get_bytes(self, path: str) -> tuple[int, bytes]:
        with self.opener.open(urllib.request.Request(self.at.base + path), timeout=30) as r:
            return r.status, r.read()

    def _send(self, request) -> tuple[int, str, str]:
        try:
            with self.opener.open(request, timeout=30) as r:
                return r.status, r.read().decode(), r.headers.get("Location", "")
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode(), e.headers.get("Location", "")

    def csrf(self, path: str) -> str:
        status, html, _ = self.get(path)
        match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)
        assert match, f"no CSRF token on {path} ({status})"
        return match.group(1)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


@pytest.fixture(scope="module")
def pair():
    redis_url = _redis_url()
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    with psycopg.connect(_url("postgres"), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,)).fetchone():
            conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    with psycopg.connect(_url(DB_NAME), autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS public CASCADE")
        conn.execute("CREATE SCHEMA public")
    ring = crypto.ring()
    keys = ",".join(
        f"{kid}:{__import__('base64').b64encode(k).decode()}" for kid, k in ring.keys.items()
    )
    lookup = __import__("base64").b64encode(ring.lookup_key).decode()
    workdir = Path(tempfile.mkdtemp(prefix="multi-"))
    env = {
        **os.environ,
        "PORTAL_DATABASE_URL": _url(DB_NAME),
        "PORTAL_REDIS_URL": redis_url,
        "PORTAL_SECRET_KEY": "multi-instance-test-secret-key-0123456789abcdef",
        "PORTAL_DATA_KEYS": keys,
        "PORTAL_LOOKUP_KEY": lookup,
        "PORTAL_ENV": "development",
        "PORTAL_STORAGE_DIR": str(workdir / "storage"),
        "GUNICORN_WORKERS": "2",
    }
    env.pop("TEST_DATABASE_URL", None)
    # both instances migrate at the same moment: one applies, the other waits and finds nothing
    upgrades = [
        subprocess.Popen(
            [str(BIN / "flask"), "--app", "portal", "db", "upgrade"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120)[0] for p in upgrades]
    assert all(p.returncode == 0 for p in upgrades), outputs
    subprocess.run(
        [str(BIN / "flask"), "--app", "portal", "seed-demo", "--size", "40"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=180,
    )
    a, b = Instance(env, workdir, "a"), Instance(env, workdir, "b")
    try:
        yield a.start(), b.start(), outputs
    finally:
        a.stop()
        b.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def _sql(query: str, params=()):
    with psycopg.connect(_url(DB_NAME), autocommit=True) as conn:
        return conn.execute(query, params).fetchall()


def _code(phone: str) -> str:
    body = _sql("SELECT body FROM sms_message WHERE phone = %s ORDER BY id DESC LIMIT 1", (phone,))[
        0
    ][0]
    return re.search(r"验证码 (\d{6})", body).group(1)


def _person(where: str) -> tuple[str, str, int]:
    row = _sql(
        f"SELECT d.resident_id, d.phone, d.id FROM depositor d {where} "  # noqa: S608
        "ORDER BY d.id LIMIT 1"
    )[0]
    return crypto.unseal(row[0], "depositor.resident_id"), row[1], row[2]


def _login_depositor(browser: Browser, rid: str, phone: str):
    token = browser.csrf("/login")
    status, _, _ = browser.post(
        "/login", {"csrf_token": token, "resident_id": rid, "password": DEMO_PASSWORD}
    )
    assert status == 303
    token = browser.csrf("/login/code")
    status, _, location = browser.post("/login/code", {"csrf_token": token, "code": _code(phone)})
    assert status == 303 and location.endswith("/me/")


def test_migrations_ran_once_although_both_instances_started_together(pair):
    _, _, outputs = pair
    applied = [line for out in outputs for line in out.splitlines() if line.startswith("applied")]
    versions = _sql("SELECT version FROM schema_migrations ORDER BY version")
    assert len(applied) == len(versions) == len({v for (v,) in versions})


def test_login_on_one_is_valid_on_the_other_and_logout_ends_both(pair):
    a, b, _ = pair
    rid, phone, _ = _person(
        "JOIN account a ON a.depositor_id = d.id "
        "WHERE a.status = '正常' AND d.password_hash IS NOT NULL"
    )
    browser = Browser(a)
    _login_depositor(browser, rid, phone)
    assert browser.use(b).get("/me/")[0] == 200
    token = browser.use(b).csrf("/me/")
    assert browser.use(b).post("/logout", {"csrf_token": token})[0] == 303
    assert browser.use(a).get("/me/")[0] == 302


def _children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def test_certificates_are_written_by_the_pdf_renderer_not_the_workers(pair):
    """gunicorn.conf.py starts the PDF renderer (portal/documents.py) beside the workers: a
    certificate issued on one instance is written there, stored, and downloads alike from the
    other; the workers never load the PDF libraries."""
    from tests.conftest import pdf_text

    a, b, _ = pair
    children = _children(a.process.pid)
    renderers = [pid for pid in children if "portal.documents" in _cmdline(pid)]
    workers = [pid for pid in children if pid not in renderers]
    assert len(renderers) == 1 and len(workers) == 2
    rid, phone, depositor_id = _person(
        "JOIN account a ON a.depositor_id = d.id "
        "WHERE a.status = '正常' AND d.password_hash IS NOT NULL"
    )
    browser = Browser(a)
    _login_depositor(browser, rid, phone)
    token = browser.csrf("/me/certificates")
    status, _, location = browser.post(
        "/me/certificates", {"csrf_token": token, "addressee": "测试市住房公积金管理中心"}
    )
    assert status == 303 and re.search(r"/me/certificates/\d+$", location), location
    status, data = browser.use(b).get_bytes(location.split(a.base)[-1] + ".pdf")
    assert status == 200 and data.startswith(b"%PDF")
    text = re.sub(r"\s+", "", pdf_text(data))
    assert "住房公积金缴存使用证明" in text and "测试市住房公积金管理中心" in text
    # fpdf2 loads Pillow's C library: mapped in the renderer, never in a worker
    assert all("PIL/_imaging" not in Path(f"/proc/{pid}/maps").read_text() for pid in workers)
    assert "PIL/_imaging" in Path(f"/proc/{renderers[0]}/maps").read_text()


def test_concurrent_withdrawals_across_instances_pay_once(pair):
    a, b, _ = pair
    rid, phone, dep_id = _person(
        "JOIN account a ON a.depositor_id = d.id WHERE d.retired_on IS NOT NULL "
        "AND a.status = '正常' AND d.password_hash IS NOT NULL AND d.bank_card_changed_at < "
        "now() - interval '30 days' AND NOT EXISTS (SELECT 1 FROM loan l WHERE "
        "l.depositor_id = d.id AND l.status = 'active')"
    )
    browsers = []
    for instance in (a, b, a, b):
        browser = Browser(instance)
        _login_depositor(browser, rid, phone)
        status, html, _ = browser.get("/me/retirement")
        form = {
            "csrf_token": re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1),
            "token": re.search(r'name="token"[^>]*value="([0-9a-f]+)"', html).group(1),
        }
        browser.post(
            "/me/code/withdraw", {"csrf_token": form["csrf_token"], "next": "/me/retirement"}
        )
        form["code"] = _code(phone)
        browsers.append((browser, form))
    results = []
    threads = [
        threading.Thread(target=lambda br=br, f=f: results.append(br.post("/me/retirement", f)))
        for br, f in browsers
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(r[0] for r in results)
    assert statuses.count(303) == 1, statuses
    assert all(s in (303, 422) for s in statuses), statuses  # never a 500
    paid = _sql(
        "SELECT count(*) FROM payout p JOIN account a ON p.account_id = a.id "
        "WHERE a.depositor_id = %s AND p.status = 'confirmed'",
        (dep_id,),
    )[0][0]
    assert paid == 1


def _login_staff(browser: Browser, username: str):
    secret = next(s for u, _n, _r, _d, s in DEMO_STAFF if u == username)
    token = browser.csrf("/staff/login")
    assert (
        browser.post(
            "/staff/login", {"csrf_token": token, "username": username, "password": STAFF_PASSWORD}
        )[0]
        == 303
    )
    token = browser.csrf("/staff/login/totp")
    status, _, _ = browser.post(
        "/staff/login/totp", {"csrf_token": token, "code": pyotp.TOTP(secret).now()}
    )
    assert status == 303


def test_a_move_on_one_instance_shows_on_the_other(pair):
    a, b, _ = pair
    clerk, liaison = Browser(a), Browser(b)
    _login_staff(clerk, "clerk")
    _login_staff(liaison, "liaison")
    case_id, version = _sql(
        "SELECT id, version FROM proxy_case WHERE direction = 'outbound' "
        "AND state = 'accepted' ORDER BY id LIMIT 1"
    )[0]
    token = clerk.csrf("/staff/board/outbound")
    status, _, _ = clerk.post(
        f"/staff/board/case/{case_id}/move",
        {"csrf_token": token, "target": "verifying", "version": version, "from_state": "accepted"},
    )
    assert status == 303  # without htmx: back to the board
    _, html, _ = liaison.get("/staff/board/outbound")
    column = html.split('id="cards-verifying"', 1)[1].split("</ol>", 1)[0]
    assert f'id="case-{case_id}"' in column


def test_lockout_counts_add_up_across_instances(pair):
    a, b, _ = pair
    rid, phone, _ = _person("WHERE d.password_hash IS NOT NULL AND d.id > 5")
    for i in range(5):
        browser = Browser(a if i % 2 else b)
        token = browser.csrf("/login")
        browser.post("/login", {"csrf_token": token, "resident_id": rid, "password": "Wrong987"})
    for instance in (a, b):
        browser = Browser(instance)
        token = browser.csrf("/login")
        status, html, _ = browser.post(
            "/login", {"csrf_token": token, "resident_id": rid, "password": DEMO_PASSWORD}
        )
        assert status == 429 and "15 分钟后再试" in html
