"""站内消息: the inbox, one set of views served to each kind of user under their own prefix
and guard — depositors at /me/inbox/ and employer operators at /employer/inbox/ (here), staff at
/staff/inbox/ (``portal.intranet.inbox``).

The header's bell (``templates/inbox/_bell.html``, included by base.html) shows the unread
count; it refreshes itself every minute and whenever the inbox changes (``inbox-changed``),
with ``X-Portal-Poll`` so it does not keep an idle session alive. Marking read and opening a
notice are POSTs; opening marks it read and goes to the notice's page. Someone else's notice is
a 404.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from portal import htmx
from portal.access import guard_kind
from portal.services import notices

PAGE = "inbox/page.html"
LIST = "inbox/_list.html"
BELL = "inbox/_bell.html"

# the blueprint (endpoint prefix) serving each kind of user's inbox
ENDPOINTS = {"depositor": "hall_inbox", "operator": "employer_inbox", "staff": "staff_inbox"}
LAYOUTS = {
    "depositor": "hall/_layout.html",
    "operator": "employer/_layout.html",
    "staff": "intranet/counter_base.html",
}


def _page_number(raw: str | None) -> int:
    raw = raw or "1"
    return int(raw) if raw.isdigit() and 0 < len(raw) < 6 else 1


def make_blueprint(name: str, prefix: str, kind: str) -> Blueprint:
    bp = Blueprint(name, __name__, url_prefix=prefix)
    bp.before_request(guard_kind(kind))

    def me():
        return notices.recipient_of(current_user)

    def state() -> tuple[int, bool]:
        source = request.form if request.method == "POST" else request.args
        return _page_number(source.get("page")), source.get("unread") == "1"

    def render_list(status: int = 200):
        number, only_unread = state()
        page = notices.page(me(), number, only_unread)
        response = htmx.render(
            PAGE,
            LIST,
            status=status,
            p=page,
            ep=name,
            kind=kind,
            layout=LAYOUTS[kind],
            active="inbox",
            nav_active="inbox",
        )
        if request.method == "POST":
            htmx.trigger(response, "inbox-changed")
        return response

    def back():
        number, only_unread = state()
        args = {"page": number} if number > 1 else {}
        if only_unread:
            args["unread"] = "1"
        return redirect(url_for(f"{name}.index", **args), code=303)

    @bp.get("/")
    def index():
        return render_list()

    @bp.get("/count")
    def count():
        """The bell (to htmx); the inbox page itself otherwise."""
        if not htmx.is_htmx():
            return render_list()
        return htmx.render(BELL, bell={"ep": name, "count": notices.unread_count(me())})

    @bp.post("/<int:notice_id>/read")
    def read(notice_id: int):
        try:
            notices.mark_read(me(), notice_id)
        except notices.NotFound:
            abort(404)
        if htmx.is_htmx():
            return render_list()
        flash(_("已标为已读"), "success")
        return back()

    @bp.post("/read-all")
    def read_all():
        n = notices.mark_all_read(me())
        if htmx.is_htmx():
            return render_list()
        flash(_("已将 %(n)s 条消息标为已读", n=n), "success")
        return back()

    @bp.post("/<int:notice_id>/open")
    def open_notice(notice_id: int):
        """查看: mark read and go to the notice's page (the inbox when it has none)."""
        try:
            notice = notices.mark_read(me(), notice_id)
        except notices.NotFound:
            abort(404)
        target = notices.safe_link(notice) or url_for(f"{name}.index")
        if htmx.is_htmx():
            return htmx.location(target)
        return redirect(target, code=303)

    return bp


hall_bp = make_blueprint("hall_inbox", "/me/inbox", "depositor")
employer_bp = make_blueprint("employer_inbox", "/employer/inbox", "operator")


def inbox_bell() -> dict | None:
    """For the header: the inbox endpoint of the logged-in user and their unread count."""
    if not current_user.is_authenticated or current_user.kind not in ENDPOINTS:
        return None
    count = notices.unread_count(notices.recipient_of(current_user))
    return {"ep": ENDPOINTS[current_user.kind], "count": count}


def init_app(app) -> None:
    """Register the depositor's and the operator's inbox, and the bell for the header."""
    app.register_blueprint(hall_bp)
    app.register_blueprint(employer_bp)
    app.add_template_global(inbox_bell, "inbox_bell")
