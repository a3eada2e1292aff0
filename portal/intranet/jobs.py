"""后台任务 at /staff/jobs/: start long work (the ledger and dashboard exports, the 30 June
interest settlement, the large demo load) and watch its progress bar.

A job's page polls itself every second through htmx (``X-Portal-Poll``: not session activity)
while the job is queued or running; once it has finished the answer is the final fragment with
status 286, which stops htmx polling. A job is its creator's: anyone else's is a 404.
"""

from __future__ import annotations

from datetime import date

from flask import Blueprint, abort, current_app, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import SelectField
from wtforms.validators import InputRequired

from portal import htmx
from portal.access import guard_kind
from portal.filters import local_today
from portal.forms import EmptyForm, choices
from portal.intranet.common import NavLink, download
from portal.rules.money import last_settlement_date
from portal.services import jobs

bp = Blueprint("jobs", __name__, url_prefix="/staff/jobs")
bp.before_request(guard_kind("staff"))

STOP_POLLING = 286  # htmx stops polling on this status (and still swaps the fragment)
CONTENT_TYPES = {"xlsx": jobs.XLSX}
NAV_ROLES = ("admin", "official")


class SettlementForm(FlaskForm):
    year = SelectField(
        _l("结息年度"),
        [InputRequired(message=_l("请选择结息年度"))],
        invalid_choice_message=_l("请选择正确的结息年度"),
    )

    def __init__(self, *args, today: date, **kwargs):
        super().__init__(*args, **kwargs)
        latest = last_settlement_date(today).year
        self.year.choices = choices(
            (str(y), _("%(y)s 年度（%(y)s-06-30）", y=y)) for y in range(latest, latest - 3, -1)
        )


@bp.app_template_global("staff_job_links")
def staff_job_links() -> list[NavLink]:
    """后台任务 in the staff navigation (admins run the settlement, officials export)."""
    if not current_user.is_authenticated or current_user.kind != "staff":
        return []
    if current_user.role not in NAV_ROLES:
        return []
    return [NavLink("jobs", "后台任务", url_for("jobs.index"))]


@bp.app_template_global("ledger_export_limit")
def ledger_export_limit() -> int:
    from portal.services.counter import LEDGER_EXPORT_LIMIT

    return LEDGER_EXPORT_LIMIT


def _demo_enabled() -> bool:
    return current_app.config["ENV"] == "development"


def _index(status=200, settlement_form=None):
    user = current_user.obj
    today = local_today()
    return htmx.render(
        "jobs/index.html",
        None,
        status=status,
        rows=[jobs.row(j) for j in jobs.recent(user)],
        settlement_form=settlement_form
        or (SettlementForm(formdata=None, today=today) if user.role == "admin" else None),
        can_dashboard=user.role in jobs.KINDS["dashboard_export"].roles,
        can_demo=user.role in jobs.KINDS["demo_large"].roles and _demo_enabled(),
        form=EmptyForm(formdata=None),
        nav_active="jobs",
    )


@bp.get("/")
def index():
    return _index()


def _started(job, already: bool = False):
    url = url_for("jobs.show", job_id=job.id)
    if htmx.is_htmx():
        return htmx.location(url)
    if already:
        flash(_("已有一个同类任务正在进行，请等待其完成。"), "warning")
    else:
        flash(_("任务已提交，正在后台处理。"), "success")
    return redirect(url, code=303)


def _enqueue(kind: str, params: dict):
    user = current_user.obj
    if user.role not in jobs.KINDS[kind].roles:
        abort(403)
    running = jobs.active(user, kind)
    if running is not None and running.params == params:
        return _started(running, already=True)
    try:
        job = jobs.enqueue(user, kind, params)
    except jobs.Refused:
        abort(403)
    return _started(job)


@bp.post("/settlement")
def start_settlement():
    if current_user.role != "admin":
        abort(403)
    today = local_today()
    form = SettlementForm(today=today)
    if not form.validate():
        return _index(422, form)
    year = int(form.year.data)
    try:
        jobs.check_settlement_year(year, today)
    except jobs.Refused as exc:
        form.year.errors = [*form.year.errors, exc.message]
        return _index(422, form)
    return _enqueue("interest_settlement", {"year": year})


@bp.post("/dashboard-export")
def start_dashboard_export():
    return _enqueue("dashboard_export", {})


@bp.post("/demo-large")
def start_demo_large():
    if not _demo_enabled():
        abort(404)
    return _enqueue("demo_large", {"scale": 1.0})


@bp.post("/ledger-export")
def start_ledger_export():
    """后台导出 from the ledger: the same filters, the whole range, as a job."""
    from portal.intranet import counter_forms
    from portal.services import counter

    if current_user.role not in jobs.KINDS["ledger_export"].roles:
        abort(403)
    form = counter_forms.LedgerFilterForm(formdata=request.form, centers=counter.peer_centers())
    if not form.validate():
        message = "；".join(str(e) for f in form for e in f.errors)
        flash(_("筛选条件有误：%(m)s", m=message), "warning")
        return redirect(url_for("ledger.index"), code=303)
    query = jobs.ledger_query(
        {
            "date_from": form.date_from.data or "",
            "date_to": form.date_to.data or "",
            "item": form.item.data or "",
            "direction": form.direction.data or "",
            "state": form.state.data or "",
            "center": form.center.data or "",
        }
    )
    return _enqueue("ledger_export", query.as_args())


def _job_or_404(job_id: int):
    try:
        return jobs.get_for(current_user.obj, job_id)
    except jobs.NotFound:
        abort(404)


@bp.get("/<int:job_id>")
def show(job_id: int):
    r = jobs.row(_job_or_404(job_id))
    status = STOP_POLLING if (r.finished and htmx.is_htmx()) else 200
    response = htmx.render(
        "jobs/show.html", "jobs/_progress.html", status=status, j=r, nav_active="jobs"
    )
    if status == STOP_POLLING:  # its "finished" notice is in the inbox now: refresh the bell
        htmx.trigger(response, "inbox-changed")
    return response


@bp.get("/<int:job_id>/download")
def download_result(job_id: int):
    try:
        name, data = jobs.result_file(current_user.obj, job_id)
    except jobs.NotFound:
        abort(404)
    suffix = name.rsplit(".", 1)[-1] if "." in name else ""
    return download(data, name, CONTENT_TYPES.get(suffix, "application/octet-stream"))
