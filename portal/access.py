"""Who is logged in, and what they may reach. Object-level checks live here too."""

from __future__ import annotations

from functools import wraps

from flask import abort, redirect, request, url_for
from flask_login import AnonymousUserMixin, LoginManager, current_user

from portal.db import Prepared
from portal.models import Depositor, Employer, EmployerOperator, StaffUser

ROLE_LABELS = {
    "depositor": "缴存人",
    "operator": "单位经办人",
    "clerk": "窗口经办",
    "liaison": "联络人",
    "handler": "管理部经办",
    "official": "审批签发",
    "admin": "管理员",
    "auditor": "审计",
}


class Principal:
    """The logged-in person: a depositor, an employer operator or a staff user."""

    is_authenticated = True
    is_anonymous = False

    def __init__(self, kind: str, obj):
        self.kind = kind  # depositor / operator / staff
        self.obj = obj

    @property
    def is_active(self) -> bool:
        return bool(self.obj.active)

    @property
    def role(self) -> str:
        return self.obj.role if self.kind == "staff" else self.kind

    @property
    def role_label(self) -> str:
        return ROLE_LABELS[self.role]

    @property
    def name(self) -> str:
        return self.obj.name

    @property
    def actor(self) -> str:
        """How the audit log names this person (never an ID number)."""
        if self.kind == "staff":
            return f"staff:{self.obj.username}"
        return f"{self.kind}:{self.obj.id}"

    def get_id(self) -> str:
        return f"{self.kind[0]}:{self.obj.id}"


class Anonymous(AnonymousUserMixin):
    kind = None
    role = None


login_manager = LoginManager()
login_manager.anonymous_user = Anonymous
login_manager.session_protection = None  # the server-side session already guards this

_LOADERS = {
    "d": ("depositor", Depositor),
    "o": ("operator", EmployerOperator),
    "s": ("staff", StaffUser),
}


# Every request loads its user: the statements are built once (issue 10); an operator comes
# with their employer (its status decides below) in the same query.
_BY_ID = {
    "d": Prepared(lambda pk: Depositor.select().where(Depositor.id == pk).limit(1), 1),
    "o": Prepared(
        lambda pk: (
            EmployerOperator.select(EmployerOperator, Employer)
            .join(Employer)
            .where(EmployerOperator.id == pk)
            .limit(1)
        ),
        1,
    ),
    "s": Prepared(lambda pk: StaffUser.select().where(StaffUser.id == pk).limit(1), 1),
}


@login_manager.user_loader
def load_principal(user_id: str):
    prefix, _, pk = user_id.partition(":")
    if prefix not in _LOADERS or not pk.isdigit() or len(pk) > 18:
        return None
    kind, _model = _LOADERS[prefix]
    obj = _BY_ID[prefix].first(int(pk))
    if obj is None or not obj.active:
        return None
    if kind == "operator" and obj.employer.status == "注销":
        return None
    return Principal(kind, obj)


HOME_ENDPOINT = {
    "depositor": "hall.account",
    "operator": "employer.overview",
    "staff": "intranet.home",
}
LOGIN_ENDPOINT = {
    "depositor": "auth.login",
    "operator": "auth.employer_login",
    "staff": "auth.staff_login",
}


def home_url(principal) -> str:
    return url_for(HOME_ENDPOINT[principal.kind])


def guard_kind(kind: str, roles: tuple[str, ...] | None = None):
    """A ``before_request`` for a blueprint: only this kind (and role) of user."""

    def check():
        if not current_user.is_authenticated:
            if request.headers.get("HX-Request"):
                abort(401)
            target = request.full_path if request.query_string else request.path
            return redirect(url_for(LOGIN_ENDPOINT[kind], next=target))
        if current_user.kind != kind:
            abort(403)
        if roles is not None and current_user.role not in roles:
            abort(403)
        return None

    return check


def require_roles(*roles: str):
    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            if current_user.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorator


def safe_next(target: str | None) -> str | None:
    """Only same-site relative paths may be a post-login destination."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    return target
