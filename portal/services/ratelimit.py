"""A small fixed-window rate limiter stored in the database (table ``rate_limit_hit``).

``hit(key, limit, window_seconds) -> bool`` counts one event for ``key`` in the current window
and says whether the caller is still within ``limit``. ``blocked`` looks without counting. The
interface is what a Redis backend (INCR + EXPIRE) would offer, so it can replace this one.
Keys may be any text (a client address, ``sms:d:12`` ...); long keys are hashed.
"""

from __future__ import annotations

import hashlib
import time

from portal.db import write_tx
from portal.models import RateLimitHit

_MAX_KEY = 120


def _key(key: str) -> str:
    if len(key) <= _MAX_KEY:
        return key
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def _window(window_seconds: int, now: float | None) -> int:
    if window_seconds <= 0:
        raise ValueError("window_seconds must be positive")
    now = time.time() if now is None else now
    return int(now // window_seconds) * window_seconds


def count(key: str, window_seconds: int, now: float | None = None) -> int:
    """Hits counted for ``key`` in the current window."""
    start = _window(window_seconds, now)
    hits = (
        RateLimitHit.select(RateLimitHit.hits)
        .where((RateLimitHit.key == _key(key)) & (RateLimitHit.window_start == start))
        .scalar()
    )
    return int(hits or 0)


def blocked(key: str, limit: int, window_seconds: int, now: float | None = None) -> bool:
    """True when ``limit`` hits were already counted in the current window (counts nothing)."""
    return count(key, window_seconds, now) >= limit


def hit(key: str, limit: int, window_seconds: int, now: float | None = None) -> bool:
    """Count one hit; True while the hits in this window are at most ``limit``."""
    start = _window(window_seconds, now)
    k = _key(key)
    with write_tx():
        RateLimitHit.insert(key=k, window_start=start, hits=1).on_conflict(
            conflict_target=[RateLimitHit.key, RateLimitHit.window_start],
            update={RateLimitHit.hits: RateLimitHit.hits + 1},
        ).execute()
        # earlier windows of this key are over: drop them so the table stays small
        RateLimitHit.delete().where(
            (RateLimitHit.key == k) & (RateLimitHit.window_start < start)
        ).execute()
        hits = (
            RateLimitHit.select(RateLimitHit.hits)
            .where((RateLimitHit.key == k) & (RateLimitHit.window_start == start))
            .scalar()
        )
    return int(hits) <= limit


def purge(older_than_seconds: int = 86400, now: float | None = None) -> int:
    """Delete windows that started more than ``older_than_seconds`` ago; returns the count."""
    now = time.time() if now is None else now
    with write_tx():
        return (
            RateLimitHit.delete()
            .where(RateLimitHit.window_start < int(now) - older_than_seconds)
            .execute()
        )
