"""Login lockout: after 5 failed logins an identifier is locked for 15 minutes, even for the
right password; unknown identifiers are treated exactly the same way, so the lock says nothing
about whether an account exists. A per-address limit applies as well. Counters live in the
shared store (``services.ratelimit``: the database, or Redis when configured)."""

from __future__ import annotations

import hashlib

from portal.services import ratelimit

MAX_FAILURES = 5
LOCK_SECONDS = 15 * 60
FAILURE_WINDOW = 15 * 60
ADDRESS_LIMIT = 100  # login attempts per address per window (PORTAL_LOGIN_ADDRESS_LIMIT)
ADDRESS_WINDOW = 15 * 60


class Locked(Exception):
    def __init__(self, minutes: int):
        super().__init__(f"登录失败次数过多，请 {minutes} 分钟后再试")
        self.minutes = minutes


class AddressLimited(Exception):
    def __init__(self):
        super().__init__("登录尝试过于频繁，请稍后再试")


def _ident(kind: str, identifier: str) -> str:
    """A hash, so the counter store never holds an ID number or username."""
    normalized = (identifier or "").strip().upper()
    return hashlib.sha256(f"{kind}|{normalized}".encode()).hexdigest()[:40]


def check(kind: str, identifier: str, ip: str) -> None:
    """Before checking a password: refuse a locked identifier or a too-busy address."""
    if ip and not ratelimit.hit(f"login-ip:{ip}", ADDRESS_LIMIT, ADDRESS_WINDOW):
        raise AddressLimited
    locked, seconds = ratelimit.alive(f"lock:{_ident(kind, identifier)}")
    if locked:
        raise Locked(max(1, -(-seconds // 60)))


def failed(kind: str, identifier: str) -> bool:
    """Count a failure; returns True when this failure locked the identifier."""
    ident = _ident(kind, identifier)
    if ratelimit.incr(f"fail:{ident}", FAILURE_WINDOW) >= MAX_FAILURES:
        ratelimit.incr(f"lock:{ident}", LOCK_SECONDS)
        ratelimit.clear(f"fail:{ident}")
        return True
    return False


def succeeded(kind: str, identifier: str) -> None:
    ratelimit.clear(f"fail:{_ident(kind, identifier)}")
