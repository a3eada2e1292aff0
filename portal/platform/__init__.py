"""The national platform exchange (全国住房公积金监管服务平台), DESIGN.md section 6.

* ``schema/case-message-v1.json``: the versioned message format;
* ``messages``: build, validate and canonicalise messages;
* ``signing``: Ed25519 keys and signatures;
* ``files``: the file adapter (signed zip packages a liaison exports and imports by hand);
* ``exchange``: the adapter interface (send / receive each message type), file or HTTP per peer;
* ``http``: the peer HTTP transport; ``inbox``: the endpoint peers POST to (/platform/inbox);
* ``outbox``: the durable outbox and its worker (retries with bounded backoff).

Commands (``flask --app portal platform ...``): ``import FILE``, ``export CASE_NO``,
``public-key``, ``worker [--once]`` (sends the outbox; ``make run`` starts it),
``configure-self`` and ``peer CODE`` (set up a pair of centers) and, in development,
``demo-package``.
"""

from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

platform_cli = AppGroup("platform", help="National platform exchange: signed case packages.")


def _connect():
    import logging

    from portal.db import db

    logging.getLogger("fontTools").setLevel(logging.WARNING)  # PDF font subsetting chatter
    db.connect(reuse_if_open=True)


@platform_cli.command("import", help="Import a signed case package (.zip) into 平台接收.")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_command(file: Path):
    from portal.platform import files

    _connect()
    try:
        imported = files.receive(file.read_bytes(), actor="cli")
    except files.ImportRefused as exc:
        raise click.ClickException(str(exc)) from None
    case = imported.case
    what = (
        "already imported (duplicate message id, nothing changed)"
        if imported.duplicate
        else ("imported")
    )
    click.echo(f"{what}: {case.case_no} ({case.item}, from {case.center.code}, {case.state})")


@platform_cli.command("export", help="Export the signed package of an outbound case.")
@click.argument("case_no")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Also write it here.")
def export_command(case_no: str, out: Path | None):
    from portal.models import ProxyCase
    from portal.platform import files
    from portal.storage import get_storage

    _connect()
    case = ProxyCase.get_or_none(ProxyCase.case_no == case_no)
    if case is None:
        raise click.ClickException(f"no case {case_no}")
    try:
        key = files.export_case(case, actor="cli")
    except files.ExportRefused as exc:
        raise click.ClickException(str(exc)) from None
    if out:
        out.write_bytes(get_storage().get(key))
        click.echo(f"written: {out}")
    click.echo(f"stored: {key}")


@platform_cli.command("public-key", help="Print our center's Ed25519 public key (base64).")
def public_key_command():
    from portal.platform import signing

    click.echo(signing.public_key_b64(signing.private_key()))


@platform_cli.command(
    "demo-package", help="Development: a signed sample inbound package from a demo peer."
)
@click.option("--from", "peer_code", default="110000", show_default=True, help="Peer center code.")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--item",
    default="purchase_withdrawal",
    show_default=True,
    type=click.Choice(["purchase_withdrawal", "settlement_certificate"]),
)
@click.option("--depositor", "resident_id", default=None, help="Our depositor's resident ID.")
def demo_package_command(peer_code: str, out: Path, item: str, resident_id: str | None):
    from portal.filters import local_today
    from portal.models import Account, Depositor
    from portal.platform import files

    if current_app.config["ENV"] == "production":
        raise click.ClickException("not available in production")
    _connect()
    query = Depositor.select().join(Account).where(Depositor.active & (Account.status == "正常"))
    if resident_id:
        query = query.where(Depositor.resident_id == resident_id.strip().upper())
    depositor = query.order_by(Depositor.id).first()
    if depositor is None:
        raise click.ClickException("no such depositor with an active account")
    try:
        data = files.demo_package(peer_code, depositor, local_today(), item)
    except files.ImportRefused as exc:
        raise click.ClickException(str(exc)) from None
    out.write_bytes(data)
    click.echo(f"written: {out} ({len(data)} bytes, from {peer_code}, depositor #{depositor.id})")


# --- the HTTP exchange (issue 8) ----------------------------------------------------------


@platform_cli.command("worker", help="Send the outbox to peer centers, retrying with backoff.")
@click.option("--once", is_flag=True, help="One round, then exit (tests, cron).")
@click.option("--interval", default=1.0, show_default=True, help="Seconds between rounds.")
@click.option("--base-delay", default=None, type=float, help="First retry delay (s).")
@click.option("--max-delay", default=None, type=float, help="Longest retry delay (s).")
def worker_command(once: bool, interval: float, base_delay, max_delay):
    import signal

    from portal.platform import outbox

    _connect()
    stopping = {"now": False}

    def stop(_signum, _frame):
        stopping["now"] = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if not once:
        click.echo(f"outbox worker: every {interval}s (Ctrl-C to stop)")
    outbox.work(
        interval=max(0.05, interval),
        once=once,
        should_stop=lambda: stopping["now"],
        base=outbox.BASE_DELAY if base_delay is None else base_delay,
        cap=outbox.MAX_DELAY if max_delay is None else max_delay,
        echo=click.echo,
    )


_SWAPPED = ("name", "region", "address", "phone", "online_items")


@platform_cli.command(
    "configure-self",
    help="Make our center's row match PORTAL_CENTER_CODE / PORTAL_CENTER_NAME (a peer row "
    "with that code trades places with it).",
)
def configure_self_command():
    from portal.db import write_tx
    from portal.models import Center
    from portal.services import audit

    _connect()
    code = str(current_app.config["CENTER_CODE"])
    name = str(current_app.config["CENTER_NAME"])
    me = Center.get_or_none(Center.is_self)
    with write_tx():
        if me is None:
            Center.create(code=code, name=name, is_self=True)
        elif me.code == code and me.name == name:
            click.echo(f"our center is already {code} {name}")
            return
        else:
            other = Center.get_or_none((Center.code == code) & ~Center.is_self)
            if other is not None:
                mine = {f: getattr(me, f) for f in _SWAPPED}
                theirs = {f: getattr(other, f) for f in _SWAPPED}
                Center.update(code="~swap").where(Center.id == other.id).execute()
                Center.update(code=code, **{**theirs, "name": name}).where(
                    Center.id == me.id
                ).execute()
                Center.update(
                    code=me.code,
                    hall_url="",
                    public_key=None,
                    exchange_url="",
                    **mine,
                ).where(Center.id == other.id).execute()
            else:
                Center.update(code=code, name=name).where(Center.id == me.id).execute()
        audit.record("cli", "center.configure_self", "center", code, name=name)
    click.echo(f"our center is now {code} {name}")


@platform_cli.command("peer", help="Add or update a peer center: public key, exchange URL.")
@click.argument("code")
@click.option("--name", default=None, help="The center's name (required for a new one).")
@click.option("--public-key", default=None, help="Its Ed25519 public key (base64).")
@click.option("--exchange-url", default=None, help="Its inbox, e.g. https://…/platform/inbox.")
def peer_command(code: str, name: str | None, public_key: str | None, exchange_url: str | None):
    import re

    from portal.db import write_tx
    from portal.models import Center
    from portal.platform import exchange
    from portal.services import admin, audit

    _connect()
    if not re.fullmatch(r"\d{6}", code):
        raise click.ClickException("a center code has six digits")
    center = Center.get_or_none(Center.code == code)
    if center is not None and center.is_self:
        raise click.ClickException(f"{code} is our own center")
    if center is None and not name:
        raise click.ClickException(f"no center {code}: give --name to add it")
    try:
        key = admin.parse_public_key(public_key) if public_key is not None else None
        url = exchange.check_exchange_url(exchange_url) if exchange_url is not None else None
    except (admin.AdminError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    with write_tx():
        if center is None:
            center = Center.create(code=code, name=name)
        fields = {}
        if name:
            fields["name"] = name
        if public_key is not None:
            fields["public_key"] = key
        if exchange_url is not None:
            fields["exchange_url"] = url
        if fields:
            Center.update(**fields).where(Center.id == center.id).execute()
        audit.record(
            "cli",
            "center.update",
            "center",
            code,
            after={
                "key_set": bool(key) if public_key is not None else bool(center.public_key),
                "key_changed": public_key is not None and key != center.public_key,
                "exchange_url": url if exchange_url is not None else center.exchange_url,
            },
        )
    center = Center.get(Center.code == code)
    channel = "http " + center.exchange_url if center.exchange_url else "file"
    key_state = "set" if center.public_key else "missing"
    click.echo(f"peer {code} {center.name}: key {key_state}, {channel}")
