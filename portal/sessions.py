"""Server-side sessions.

The cookie carries only a random id; the data lives in a store on the server: the
``web_session`` table by default, or Redis when ``PORTAL_REDIS_URL`` is set (several
instances). Deleting the record (logout, account disabled) ends the session on the server, so a
copied cookie stops working. Idle limits depend on who is logged in (staff 15 minutes, public
10); no session outlives ``SESSION_MAX_HOURS``. Background polling (requests with
``X-Portal-Poll: 1``) does not count as activity.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import request
from flask.sessions import SessionInterface, SessionMixin
from werkzeug.datastructures import CallbackDict

from portal.db import Prepared
from portal.models import WebSession, utcnow

TOUCH_EVERY = timedelta(seconds=30)


@dataclass
class Record:
    principal: str | None
    data: dict
    created_at: datetime
    last_seen: datetime


_BY_SID = Prepared(lambda sid: WebSession.select().where(WebSession.sid == sid).limit(1), 1)


class DatabaseStore:
    """Sessions in the ``web_session`` table (the single-machine default)."""

    def load(self, sid: str) -> Record | None:
        row = _BY_SID.first(sid)  # every request: its SQL is built once (issue 10)
        if row is None:
            return None
        return Record(row.principal, row.data or {}, row.created_at, row.last_seen)

    def create(self, sid: str, principal: str | None, data: dict, now: datetime) -> None:
        WebSession.insert(
            sid=sid, principal=principal, data=data, created_at=now, last_seen=now
        ).execute()

    def update(self, sid: str, **fields) -> None:
        WebSession.update(**fields).where(WebSession.sid == sid).execute()

    def delete(self, sid: str) -> None:
        WebSession.delete().where(WebSession.sid == sid).execute()

    def delete_principal(self, principal: str) -> int:
        return WebSession.delete().where(WebSession.principal == principal).execute()

    def count_principal(self, principal: str) -> int:
        return WebSession.select().where(WebSession.principal == principal).count()


class RedisStore:
    """Sessions in Redis, shared by every portal instance. A set per principal lets an admin
    end all of someone's sessions at once."""

    def __init__(self, client, max_age: timedelta, prefix: str = "hpf:"):
        self.r = client
        self.ttl = int(max_age.total_seconds()) + 60
        self.prefix = prefix

    def _key(self, sid: str) -> str:
        return f"{self.prefix}sess:{sid}"

    def _pkey(self, principal: str) -> str:
        return f"{self.prefix}principal:{principal}"

    def load(self, sid: str) -> Record | None:
        raw = self.r.get(self._key(sid))
        if raw is None:
            return None
        doc = json.loads(raw)
        return Record(
            doc["principal"],
            doc["data"],
            datetime.fromisoformat(doc["created_at"]),
            datetime.fromisoformat(doc["last_seen"]),
        )

    def _save(self, sid: str, record: Record) -> None:
        doc = {
            "principal": record.principal,
            "data": record.data,
            "created_at": record.created_at.isoformat(),
            "last_seen": record.last_seen.isoformat(),
        }
        pipe = self.r.pipeline()
        pipe.set(self._key(sid), json.dumps(doc), ex=self.ttl)
        if record.principal:
            pipe.sadd(self._pkey(record.principal), sid)
            pipe.expire(self._pkey(record.principal), self.ttl)
        pipe.execute()

    def create(self, sid: str, principal: str | None, data: dict, now: datetime) -> None:
        self._save(sid, Record(principal, data, now, now))

    def update(self, sid: str, **fields) -> None:
        record = self.load(sid)
        if record is None:
            return
        for name, value in fields.items():
            setattr(record, name, value)
        self._save(sid, record)

    def delete(self, sid: str) -> None:
        record = self.load(sid)
        self.r.delete(self._key(sid))
        if record and record.principal:
            self.r.srem(self._pkey(record.principal), sid)

    def delete_principal(self, principal: str) -> int:
        sids = [
            s.decode() if isinstance(s, bytes) else s
            for s in self.r.smembers(self._pkey(principal))
        ]
        if sids:
            self.r.delete(*[self._key(s) for s in sids])
        self.r.delete(self._pkey(principal))
        return len(sids)

    def count_principal(self, principal: str) -> int:
        sids = self.r.smembers(self._pkey(principal))
        return sum(
            1 for s in sids if self.r.exists(self._key(s.decode() if isinstance(s, bytes) else s))
        )


_store: DatabaseStore | RedisStore = DatabaseStore()


def configure(store) -> None:
    global _store
    _store = store


def store():
    return _store


def end_sessions_for(principal: str) -> int:
    """End every session of a person (account disabled, TOTP reset, password set)."""
    return _store.delete_principal(principal)


class ServerSession(CallbackDict, SessionMixin):
    def __init__(self, initial=None, sid=None, new=False, record=None):
        def on_update(_self):
            _self.modified = True

        super().__init__(initial, on_update)
        self.sid = sid
        self.new = new
        self.record = record
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
        """Forget everything and delete the server record (logout)."""
        self.clear()
        if self.sid and not self.new:
            _store.delete(self.sid)
        self.sid = None
        self.new = True
        self.modified = True


def is_background(req) -> bool:
    return req.headers.get("X-Portal-Poll") == "1"


def idle_limit(app, principal: str | None) -> timedelta:
    if principal and principal.startswith("s:"):
        return timedelta(minutes=app.config["SESSION_IDLE_MINUTES_STAFF"])
    return timedelta(minutes=app.config["SESSION_IDLE_MINUTES_PUBLIC"])


class ServerSessionInterface(SessionInterface):
    def open_session(self, app, req):
        sid = req.cookies.get(self.get_cookie_name(app))
        if not sid:
            return ServerSession(new=True)
        record = _store.load(sid)
        if record is None:
            return ServerSession(new=True)
        now = utcnow()
        expired = now - record.last_seen > idle_limit(app, record.principal) or (
            now - record.created_at > timedelta(hours=app.config["SESSION_MAX_HOURS"])
        )
        if expired:
            _store.delete(sid)
            session = ServerSession(new=True)
            session["_expired"] = True
            return session
        return ServerSession(record.data, sid=sid, record=record)

    def save_session(self, app, session, response):
        name = self.get_cookie_name(app)
        domain = self.get_cookie_domain(app)
        path = self.get_cookie_path(app)
        if session.rotate_from:
            _store.delete(session.rotate_from)
        if not session:
            if session.sid and not session.new:
                _store.delete(session.sid)
            if session.modified or name in request.cookies:
                response.delete_cookie(name, domain=domain, path=path)
            return
        principal = session.get("_user_id")
        now = utcnow()
        if session.new or session.sid is None:
            session.sid = session.sid or secrets.token_urlsafe(32)
            _store.create(session.sid, principal, dict(session), now)
        else:
            fields = {}
            if session.modified:
                fields.update(data=dict(session), principal=principal)
            if not is_background(request) and now - session.record.last_seen > TOUCH_EVERY:
                fields["last_seen"] = now
            if fields:
                _store.update(session.sid, **fields)
            if not session.modified:
                return
        response.set_cookie(
            name,
            session.sid,
            httponly=True,
            secure=bool(app.config["SESSION_COOKIE_SECURE"] or request.is_secure),
            samesite="Lax",
            path=path,
            domain=domain,
        )
