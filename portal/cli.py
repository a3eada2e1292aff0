"""Command-line tasks: ``flask --app portal <command>``."""

from __future__ import annotations

import time

import click
import pyotp
from flask import current_app

from portal import migrate
from portal.db import db
from portal.models import Center, StaffUser, utcnow
from portal.sessions import end_sessions_for


def init_app(app):
    app.cli.add_command(db_group)
    app.cli.add_command(seed_demo)
    app.cli.add_command(staff_group)
    app.cli.add_command(demo_codes)
    app.cli.add_command(demo_logins)
    app.cli.add_command(audit_group)
    app.cli.add_command(crypto_group)
    from portal.backup import backup_group  # issue 9: backup create / restore / check

    app.cli.add_command(backup_group)


@click.group("db", help="Schema migrations.")
def db_group():
    pass


@db_group.command("upgrade", help="Apply pending numbered migrations from migrations/.")
def db_upgrade():
    done = migrate.upgrade(db.obj, log=click.echo)
    click.echo(f"{len(done)} migration(s) applied; schema is current.")


@db_group.command("status", help="List applied and pending migrations.")
def db_status():
    db.connect(reuse_if_open=True)
    for _version, path in migrate.pending(db.obj):
        click.echo(f"pending {path.name}")
    click.echo("ok")


@click.command("seed-demo", help="Load the deterministic demo data.")
@click.option("--if-empty", is_flag=True, help="Do nothing when data already exists.")
@click.option("--size", default=500, show_default=True, help="Number of depositors.")
@click.option(
    "--large", is_flag=True, help="Center-sized data for the benchmark (portal/demo_large.py)."
)
def seed_demo(if_empty: bool, size: int, large: bool):
    from portal import demo
    from portal.filters import local_today

    db.connect(reuse_if_open=True)
    if Center.select().exists():
        if if_empty:
            click.echo("Demo data already present; nothing to do.")
            return
        raise click.ClickException("the database already has data; use an empty database")
    started = time.monotonic()
    if large:
        from portal import demo_large

        click.echo("Loading the large demo data (a few minutes) ...")
        summary = demo_large.load(local_today(), log=click.echo)
        click.echo(f"Done in {time.monotonic() - started:.1f}s: {summary}")
        return
    click.echo("Loading demo data ...")
    summary = demo.load(local_today(), size=size, log=click.echo)
    click.echo(f"Done in {time.monotonic() - started:.1f}s: {summary}")


@click.group("staff", help="Staff accounts.")
def staff_group():
    pass


ROLES = click.Choice(["clerk", "liaison", "handler", "official", "admin", "auditor"])


@staff_group.command("create", help="Create a staff user; prints a TOTP enrolment secret.")
@click.argument("username")
@click.option("--name", required=True)
@click.option("--role", type=ROLES, required=True)
@click.option("--department", "department_code", default=None, help="Department code.")
@click.password_option()
def staff_create(username, name, role, department_code, password):
    from portal.models import Department
    from portal.services import audit, identity

    db.connect(reuse_if_open=True)
    try:
        identity.validate_new_password(password, password)
    except identity.PasswordRejected as exc:
        raise click.ClickException(str(exc)) from None
    dept = None
    if department_code:
        dept = Department.get_or_none(Department.code == department_code)
        if dept is None:
            raise click.ClickException(f"unknown department {department_code}")
    if role in ("clerk", "handler") and dept is None:
        raise click.ClickException("clerks and handlers need --department")
    if StaffUser.select().where(StaffUser.username == username).exists():
        raise click.ClickException(f"user {username} already exists")
    with db.atomic():
        user = StaffUser.create(
            username=username,
            name=name,
            role=role,
            department=dept,
            password_hash=identity.hash_password(password),
        )
        audit.record("cli", "staff.create", "staff", user.id, username=username, role=role)
    click.echo(f"Created {username} ({role}). They enrol their authenticator at first login.")


@staff_group.command(
    "create-first-admin", help="Fresh install: the first admin; prints a one-time setup link."
)
@click.argument("username")
@click.option("--name", required=True)
@click.option("--base-url", default="http://127.0.0.1:5000", show_default=True)
def staff_create_first_admin(username, name, base_url):
    from portal.services import admin

    db.connect(reuse_if_open=True)
    try:
        user, token = admin.create_first_admin(username, name)
    except admin.AdminError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"Created admin {user.username}. Open this one-time link within "
        f"{admin.SETUP_HOURS} hours to set the password:"
    )
    click.echo(f"{base_url.rstrip('/')}/staff/setup/{token}")


@staff_group.command("reset-totp", help="Clear a user's TOTP so they enrol again at next login.")
@click.argument("username")
def staff_reset_totp(username):
    from portal.services import audit

    db.connect(reuse_if_open=True)
    user = StaffUser.get_or_none(StaffUser.username == username)
    if user is None:
        raise click.ClickException(f"no user {username}")
    with db.atomic():
        StaffUser.update(totp_secret=None, totp_confirmed=False, totp_last_step=0).where(
            StaffUser.id == user.id
        ).execute()
        end_sessions_for(f"s:{user.id}")
        audit.record("cli", "staff.reset_totp", "staff", user.id, username=username)
    click.echo(f"TOTP cleared for {username}; their sessions were ended.")


@click.command("demo-codes", help="Development: print the demo staff's current TOTP codes.")
def demo_codes():
    from portal.demo import DEMO_STAFF

    if current_app.config["ENV"] == "production":
        raise click.ClickException("not available in production")
    remaining = 30 - int(time.time()) % 30
    for username, _name, role, _dept, secret in DEMO_STAFF:
        click.echo(f"{username:10} {role:9} {pyotp.TOTP(secret).now()}")
    click.echo(f"(valid for {remaining}s more; at {utcnow():%H:%M:%S} UTC)")


@click.command("demo-logins", help="Development: list demo logins for each kind of user.")
def demo_logins():
    from portal.demo import DEMO_PASSWORD, DEMO_STAFF, STAFF_PASSWORD, example_logins

    if current_app.config["ENV"] == "production":
        raise click.ClickException("not available in production")
    db.connect(reuse_if_open=True)
    click.echo(f"Depositors (password {DEMO_PASSWORD}; SMS code at /dev/sms):")
    for label, person in example_logins():
        click.echo(f"  {label:14} {person.resident_id}  {person.name}  {person.phone}")
    click.echo(f"Staff (password {STAFF_PASSWORD}; codes: flask --app portal demo-codes):")
    for username, name, role, dept, _secret in DEMO_STAFF:
        click.echo(f"  {username:10} {name}  {role}{'  ' + dept if dept else ''}")


@click.group("audit", help="The audit log's hash chain.")
def audit_group():
    pass


@audit_group.command("verify", help="Recompute the chain; report the first broken row.")
def audit_verify():
    from portal.services import audit

    db.connect(reuse_if_open=True)
    report = audit.verify()
    if report.ok:
        click.echo(f"audit chain intact: {report.rows} rows")
        return
    raise click.ClickException(
        f"audit chain broken at row {report.broken_at} (after {report.rows} good rows): "
        f"{report.reason}"
    )


@audit_group.command("purge", help="Delete rows older than a date (at least 180 days ago).")
@click.option("--before", "before", required=True, type=click.DateTime(formats=["%Y-%m-%d"]))
def audit_purge(before):
    from portal.services import audit

    db.connect(reuse_if_open=True)
    try:
        n = audit.purge(before)
    except audit.PurgeRefused as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"purged {n} audit rows before {before:%Y-%m-%d}")


@click.group("crypto", help="Encryption of personal identifiers at rest.")
def crypto_group():
    pass


@crypto_group.command("rotate", help="Re-encrypt every sealed value with the current data key.")
def crypto_rotate():
    from portal import crypto
    from portal.models import MODELS, SealedField

    db.connect(reuse_if_open=True)
    total = 0
    for model in MODELS:
        sealed = [f for f in model._meta.sorted_fields if isinstance(f, SealedField)]
        if not sealed:
            continue
        # read the raw ciphertext, so rows already under the current key are skipped
        table = model._meta.table_name
        names = ", ".join(f'"{f.column_name}"' for f in sealed)
        rows = db.execute_sql(f'SELECT "id", {names} FROM "{table}"').fetchall()  # noqa: S608  # nosec B608 - identifiers from the models
        with db.atomic():
            for row in rows:
                stale = {
                    f: token
                    for f, token in zip(sealed, row[1:], strict=True)
                    if token is not None and not crypto.is_current(token)
                }
                if stale:
                    values = {f: f.python_value(token) for f, token in stale.items()}
                    model.update(values).where(model.id == row[0]).execute()
                    total += 1
    from portal.services import audit

    audit.record("cli", "crypto.rotate", "crypto", "", rows=total)
    click.echo(f"re-encrypted {total} rows with key {crypto.ring().current}")
