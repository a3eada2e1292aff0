"""Server-side sessions stored in the ``web_session`` table.

The cookie carries only a random id. Deleting the row (logout, account disabled) ends the
session on the server, so a copied cookie stops working. Idle limits depend on who is logged
in (staff 15 minutes, public 10); no session outlives ``SESSION_MAX_HOURS``. Background
polling (requests with ``X-Portal-Poll: 1``) does not count as activity.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from flask.sessions import SessionInterface, SessionMixin
from werkzeug.datastructures import CallbackDict

from portal.models import WebSession, utcnow

TOUCH_EVERY = timedelta(seconds=30)


class ServerSession(CallbackDict, SessionMixin):
    def __init__(self, initial=None, sid=None, new=False, row=None):
        def on_update(_self):
            _self.modified = True

        super().__init__(initial, on_update)
        self.sid = sid
        self.new = new
        self.row = row
        self.modified = False
        self.rotate_from = None

    def regenerate(self):
        """A fresh id for the same data (at login: defeats session fixation)."""
        if self.sid and not self.new:
            self.rotate_from = self.sid
        self.sid = secrets.token_urlsafe(32)
        self.new = True
        self.modified = True

    def end(self):
        """Forget everything and delete the server row (logout)."""
        self.clear()
        if self.sid and not self.new:
            WebSession.delete().where(WebSession.sid == self.sid).execute()
        self.sid = None
        self.new = True
        self.modified = True


def is_background(request) -> bool:
    return request.headers.get("X-Portal-Poll") == "1"


def idle_limit(app, principal: str | None) -> timedelta:
    if principal and principal.startswith("s:"):
        return timedelta(minutes=app.config["SESSION_IDLE_MINUTES_STAFF"])
    return timedelta(minutes=app.config["SESSION_IDLE_MINUTES_PUBLIC"])


class DatabaseSessionInterface(SessionInterface):
    def open_session(self, app, request):
        sid = request.cookies.get(self.get_cookie_name(app))
        if not sid:
            return ServerSession(new=True)
        row = WebSession.get_or_none(WebSession.sid == sid)
        if row is None:
            return ServerSession(new=True)
        now = utcnow()
        expired = now - row.last_seen > idle_limit(app, row.principal) or (
            now - row.created_at > timedelta(hours=app.config["SESSION_MAX_HOURS"])
        )
        if expired:
            row.delete_instance()
            session = ServerSession(new=True)
            session["_expired"] = True
            return session
        return ServerSession(row.data, sid=sid, row=row)

    def save_session(self, app, session, response):
        name = self.get_cookie_name(app)
        domain = self.get_cookie_domain(app)
        path = self.get_cookie_path(app)
        if session.rotate_from:
            WebSession.delete().where(WebSession.sid == session.rotate_from).execute()
        if not session:
            if session.sid and not session.new:
                WebSession.delete().where(WebSession.sid == session.sid).execute()
            if session.modified or request_had_cookie(name):
                response.delete_cookie(name, domain=domain, path=path)
            return
        principal = _principal(session)
        now = utcnow()
        if session.new or session.sid is None:
            session.sid = session.sid or secrets.token_urlsafe(32)
            WebSession.insert(
                sid=session.sid,
                principal=principal,
                data=dict(session),
                created_at=now,
                last_seen=now,
            ).execute()
        else:
            from flask import request

            fields = {}
            if session.modified:
                fields.update(data=dict(session), principal=principal)
            if not is_background(request) and now - session.row.last_seen > TOUCH_EVERY:
                fields["last_seen"] = now
            if fields:
                WebSession.update(**fields).where(WebSession.sid == session.sid).execute()
            if not session.new and not session.modified:
                return
        response.set_cookie(
            name,
            session.sid,
            httponly=True,
            secure=app.config["SESSION_COOKIE_SECURE"],
            samesite="Lax",
            path=path,
            domain=domain,
        )


def request_had_cookie(name: str) -> bool:
    from flask import request

    return name in request.cookies


def _principal(session) -> str | None:
    return session.get("_user_id")
