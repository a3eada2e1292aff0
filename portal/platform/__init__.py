"""The national platform exchange (全国住房公积金监管服务平台), DESIGN.md section 6.

* ``schema/case-message-v1.json``: the versioned message format;
* ``messages``: build, validate and canonicalise messages;
* ``signing``: Ed25519 keys and signatures;
* ``files``: the file adapter (signed zip packages a liaison exports and imports by hand).

Commands (``flask --app portal platform ...``): ``import FILE``, ``export CASE_NO``,
``public-key`` and, in development, ``demo-package``.
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
