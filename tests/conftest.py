"""Fixtures: one migrated database per run (SQLite by default, PostgreSQL with
TEST_DATABASE_URL), the small demo data committed once, and each test inside a transaction
that is rolled back, so tests are isolated and fast."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import time
from datetime import date

import pyotp
import pytest

from portal import create_app, migrate
from portal.db import db, make_database
from portal.models import SmsMessage

TODAY = date(2026, 11, 25)


def _database_url(tmp_root: str) -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return url
    return f"sqlite:///{os.path.join(tmp_root, 'test.db')}"


def _reset(url: str) -> None:
    """Empty the test database before migrating it."""
    database = make_database(url)
    database.connect()
    if url.startswith(("postgres", "psycopg")):
        database.execute_sql("DROP SCHEMA IF EXISTS public CASCADE")
        database.execute_sql("CREATE SCHEMA public")
    database.close()


@pytest.fixture(scope="session")
def app():
    with tempfile.TemporaryDirectory() as tmp:
        url = _database_url(tmp)
        _reset(url)
        application = create_app(
            {
                "ENV": "testing",
                "TESTING": True,
                "DATABASE_URL": url,
                "SECRET_KEY": "test-secret-key-not-for-production-0123456789",
                "WTF_CSRF_ENABLED": False,
                "STORAGE_DIR": os.path.join(tmp, "storage"),
            }
        )
        migrate.upgrade(db.obj, log=lambda *_: None)
        from portal import demo

        demo.load(TODAY, size=60, log=lambda *_: None)
        db.close()
        yield application
        if not db.is_closed():
            db.close()


@pytest.fixture(autouse=True)
def _rollback(request, app):
    """Every test runs in a transaction that is rolled back afterwards."""
    if request.node.get_closest_marker("committed"):
        yield
        return
    db.connect(reuse_if_open=True)
    with db.atomic() as tx:
        yield
        tx.rollback()
    db.close()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


# --- logging in as each kind of user ------------------------------------------------------


def last_code(phone: str) -> str:
    message = (
        SmsMessage.select().where(SmsMessage.phone == phone).order_by(SmsMessage.id.desc()).first()
    )
    assert message is not None, "no SMS was sent"
    return re.search(r"验证码 (\d{6})", message.body).group(1)


def login_depositor(client, depositor, password="Demo1234"):
    r = client.post("/login", data={"resident_id": depositor.resident_id, "password": password})
    assert r.status_code == 303, r.get_data(as_text=True)
    r = client.post("/login/code", data={"code": last_code(depositor.phone)})
    assert r.status_code == 303
    return r


def login_operator(client, operator, password="Demo1234"):
    r = client.post(
        "/employer/login",
        data={
            "credit_code": operator.employer.credit_code,
            "resident_id": operator.resident_id,
            "password": password,
        },
    )
    assert r.status_code == 303, r.get_data(as_text=True)
    r = client.post("/employer/login/code", data={"code": last_code(operator.phone)})
    assert r.status_code == 303
    return r


def totp_code(secret: str, offset_steps: int = 0) -> str:
    return pyotp.TOTP(secret).at(time.time() + 30 * offset_steps)


def login_staff(client, username, password="Staff2026"):
    from portal.models import StaffUser

    user = StaffUser.get(StaffUser.username == username)
    r = client.post("/staff/login", data={"username": username, "password": password})
    assert r.status_code == 303, r.get_data(as_text=True)
    r = client.post("/staff/login/totp", data={"code": totp_code(user.totp_secret)})
    assert r.status_code == 303, r.get_data(as_text=True)
    return r


@pytest.fixture
def depositor():
    """A demo depositor with a password, an active account and no loan trouble."""
    from portal.models import Account, Depositor

    return (
        Depositor.select()
        .join(Account)
        .where(Depositor.password_hash.is_null(False) & (Account.status == "正常"))
        .order_by(Depositor.id)
        .first()
    )


@pytest.fixture
def other_depositor(depositor):
    from portal.models import Account, Depositor

    return (
        Depositor.select()
        .join(Account)
        .where(Depositor.password_hash.is_null(False) & (Depositor.id != depositor.id))
        .order_by(Depositor.id.desc())
        .first()
    )


@pytest.fixture
def operator():
    from portal.models import EmployerOperator

    return (
        EmployerOperator.select()
        .where(EmployerOperator.is_primary)
        .order_by(EmployerOperator.id)
        .first()
    )


def pdf_text(data: bytes) -> str:
    """The text of a PDF, as pdftotext (poppler-utils, installed by `make test`) reads it."""
    return subprocess.run(
        ["pdftotext", "-layout", "-", "-"], input=data, capture_output=True, check=True
    ).stdout.decode()
