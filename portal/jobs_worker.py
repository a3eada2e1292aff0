"""The background-job worker and the commands around it (issue 11).

* ``flask --app portal jobs worker [--once] [--interval S]``: claims queued jobs one at a time
  and runs them (``services.jobs``); ``make run`` starts it beside the server. It also queues
  the daily deadline reminders once a day.
* ``flask --app portal jobs run KIND [--year Y] [--user NAME] [--out FILE]``: runs a job kind
  directly in the terminal with a progress bar (the interest settlement, the exports).
* ``flask --app portal notices deadlines [--date YYYY-MM-DD]``: the deadline reminders now.
"""

from __future__ import annotations

import logging
import signal
import time
from datetime import date
from pathlib import Path

import click
from flask.cli import AppGroup

log = logging.getLogger(__name__)

jobs_cli = AppGroup("jobs", help="Background jobs: the worker, and running a job directly.")
notices_cli = AppGroup("notices", help="Notifications (站内消息).")


def _connect():
    from portal.db import db

    logging.getLogger("fontTools").setLevel(logging.WARNING)
    db.connect(reuse_if_open=True)


def _today(value: str | None) -> date:
    from portal.filters import local_today

    if not value:
        return local_today()
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter("use YYYY-MM-DD") from None


def work(
    once: bool = False,
    interval: float = 1.0,
    should_stop=lambda: False,
    echo=lambda _text: None,
    today=None,
) -> int:
    """The worker loop: run every queued job, then wait ``interval`` seconds; with ``once``,
    run what is queued now and return. A database hiccup is logged and the loop goes on.
    Returns the number of jobs run."""
    from portal.db import db
    from portal.filters import local_today
    from portal.services import jobs

    ran = 0
    while True:
        opened = db.is_closed()
        try:
            if opened:
                db.connect()
            day = today or local_today()
            if not once:
                jobs.ensure_daily(day)
            while not should_stop():
                job = jobs.work_once(day)
                if job is None:
                    break
                ran += 1
                echo(f"job {job.id} {job.kind}: {job.status} — {job.message}")
        except Exception:  # the loop must survive a database restart
            log.exception("job round failed")
            if once:
                raise
        finally:
            if opened and not db.is_closed() and not db.in_transaction():
                db.close()
        if once or should_stop():
            return ran
        deadline = time.monotonic() + interval
        while time.monotonic() < deadline and not should_stop():
            time.sleep(min(0.2, interval))
        if should_stop():
            return ran


@jobs_cli.command("worker", help="Run queued background jobs (exports, 结息, demo load).")
@click.option("--once", is_flag=True, help="Run what is queued now, then exit (tests, cron).")
@click.option("--interval", default=1.0, show_default=True, help="Seconds between polls.")
def worker_command(once: bool, interval: float):
    stopping = {"now": False}

    def stop(_signum, _frame):
        stopping["now"] = True

    if not once:
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        click.echo(f"job worker: polling every {interval}s (Ctrl-C to stop)")
    ran = work(
        once=once,
        interval=max(0.05, interval),
        should_stop=lambda: stopping["now"],
        echo=click.echo,
    )
    if once:
        click.echo(f"{ran} job(s) run")


@jobs_cli.command("run", help="Run one job kind now, in this terminal, with a progress bar.")
@click.argument("kind")
@click.option("--year", type=int, help="interest_settlement: the year of the 30 June.")
@click.option("--user", "username", help="The staff user the job runs as (exports).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Result file.")
@click.option("--date", "on", help="Business date (YYYY-MM-DD), default today.")
@click.option("--scale", type=float, help="demo_large: shrink the totals (e.g. 0.01).")
def run_command(
    kind: str, year: int | None, username: str | None, out: Path | None, on, scale: float | None
):
    from portal.models import StaffUser
    from portal.services import jobs

    _connect()
    spec = jobs.KINDS.get(kind)
    if spec is None:
        raise click.BadParameter(f"one of: {', '.join(jobs.KINDS)}", param_hint="KIND")
    user = None
    if username:
        user = StaffUser.get_or_none(StaffUser.username == username)
        if user is None:
            raise click.BadParameter(f"no staff user {username!r}", param_hint="--user")
    params = {"year": year} if year is not None else {}
    if scale is not None:
        params["scale"] = scale
    today = _today(on)
    with click.progressbar(length=100, label=spec.label, show_percent=True) as bar:
        shown = {"pct": 0}

        def progress(percent: int, message: str = "") -> None:
            percent = max(0, min(100, int(percent)))
            if percent > shown["pct"]:
                bar.update(percent - shown["pct"])
                shown["pct"] = percent

        try:
            result = spec.run(params, user, today, progress)
        except jobs.Refused as exc:
            raise click.ClickException(exc.message) from None
        bar.update(100 - shown["pct"])
    click.echo(result.message)
    if result.data is not None:
        target = out or Path(result.filename)
        target.write_bytes(result.data)
        click.echo(f"written: {target} ({len(result.data)} bytes)")


@notices_cli.command("deadlines", help="Tell staff of cases due today or the next working day.")
@click.option("--date", "on", help="The day (YYYY-MM-DD), default today.")
def deadlines_command(on: str | None):
    from portal.services import notices, settings

    _connect()
    done = notices.remind_deadlines(_today(on), settings.holiday_overrides())
    click.echo(f"{done.cases} case(s) due soon, {done.notices} notice(s) sent")


def init_app(app) -> None:
    app.cli.add_command(jobs_cli)
    app.cli.add_command(notices_cli)
