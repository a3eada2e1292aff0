"""Counters shared by every portal instance: rate limits and login lockouts.

Two backends with one interface: the database (table ``rate_limit_hit``, the single-machine
default) and Redis (``PORTAL_REDIS_URL``, for several instances). Never per-process memory.

* ``hit(key, limit, window_seconds) -> bool`` counts one event in the current fixed window and
  says whether the caller is still within ``limit``; ``blocked`` looks without counting.
* ``incr(key, ttl) -> int`` is a counter that lives ``ttl`` seconds from its first increment;
  ``alive(key) -> int`` reads it (0 once expired); ``clear(key)`` removes it. Lockouts use these.

Keys may be any text (a client address, ``sms:d:12`` ...); long keys are hashed.
"""

from __future__ import annotations

import hashlib
import time

from portal.db import Prepared, write_tx
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


# The reads every login, lookup and SMS makes, built once (issue 10).
_HITS = Prepared(
    lambda k, start: RateLimitHit.select(RateLimitHit.hits).where(
        (RateLimitHit.key == k) & (RateLimitHit.window_start == start)
    ),
    2,
)
_COUNTER = Prepared(lambda k: RateLimitHit.select().where(RateLimitHit.key == k).limit(1), 1)


class DatabaseCounters:
    """Counters in ``rate_limit_hit``: (key, window_start) rows; for ``incr`` counters the
    window_start column holds the expiry time and the key is prefixed ``ttl:``."""

    def count(self, key: str, window_seconds: int, now: float | None = None) -> int:
        return int(_HITS.scalar(_key(key), _window(window_seconds, now)) or 0)

    def hit(self, key: str, window_seconds: int, now: float | None = None) -> int:
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
        return int(hits)

    def incr(self, key: str, ttl: int, now: float | None = None) -> int:
        now = int(time.time() if now is None else now)
        k = _key("ttl:" + key)
        with write_tx():
            row = RateLimitHit.select().where(RateLimitHit.key == k).first()
            if row is not None and row.window_start > now:
                RateLimitHit.update(hits=RateLimitHit.hits + 1).where(
                    RateLimitHit.id == row.id
                ).execute()
                return row.hits + 1
            RateLimitHit.delete().where(RateLimitHit.key == k).execute()
            RateLimitHit.insert(key=k, window_start=now + ttl, hits=1).execute()
            return 1

    def alive(self, key: str, now: float | None = None) -> tuple[int, int]:
        """(count, seconds left) of an ``incr`` counter; (0, 0) when absent or expired."""
        now = int(time.time() if now is None else now)
        row = _COUNTER.first(_key("ttl:" + key))
        if row is None or row.window_start <= now:
            return 0, 0
        return row.hits, row.window_start - now

    def clear(self, key: str) -> None:
        with write_tx():
            RateLimitHit.delete().where(RateLimitHit.key == _key("ttl:" + key)).execute()

    def purge(self, older_than_seconds: int = 86400, now: float | None = None) -> int:
        now = time.time() if now is None else now
        with write_tx():
            return (
                RateLimitHit.delete()
                .where(RateLimitHit.window_start < int(now) - older_than_seconds)
                .execute()
            )


class RedisCounters:
    """The same counters in Redis (INCR with expiry), shared by several instances."""

    def __init__(self, client, prefix: str = "hpf:"):
        self.r = client
        self.prefix = prefix

    def _k(self, *parts) -> str:
        return self.prefix + ":".join(str(p) for p in parts)

    def count(self, key, window_seconds, now=None) -> int:
        value = self.r.get(self._k("rl", _key(key), _window(window_seconds, now)))
        return int(value or 0)

    def hit(self, key, window_seconds, now=None) -> int:
        start = _window(window_seconds, now)
        k = self._k("rl", _key(key), start)
        pipe = self.r.pipeline()
        pipe.incr(k)
        pipe.expire(k, window_seconds + 5)
        hits, _ = pipe.execute()
        return int(hits)

    def incr(self, key, ttl, now=None) -> int:
        k = self._k("ttl", _key(key))
        self.r.set(k, 0, ex=ttl, nx=True)  # the expiry counts from the first increment
        return int(self.r.incr(k))

    def alive(self, key, now=None) -> tuple[int, int]:
        k = self._k("ttl", _key(key))
        pipe = self.r.pipeline()
        pipe.get(k)
        pipe.ttl(k)
        value, ttl = pipe.execute()
        if value is None or ttl is None or ttl < 0:
            return 0, 0
        return int(value), int(ttl)

    def clear(self, key) -> None:
        self.r.delete(self._k("ttl", _key(key)))

    def purge(self, older_than_seconds=86400, now=None) -> int:
        return 0  # Redis expires keys by itself


_backend: DatabaseCounters | RedisCounters = DatabaseCounters()


def configure(backend) -> None:
    global _backend
    _backend = backend


def backend():
    return _backend


def count(key: str, window_seconds: int, now: float | None = None) -> int:
    """Hits counted for ``key`` in the current window."""
    return _backend.count(key, window_seconds, now)


def blocked(key: str, limit: int, window_seconds: int, now: float | None = None) -> bool:
    """True when ``limit`` hits were already counted in the current window (counts nothing)."""
    return count(key, window_seconds, now) >= limit


def hit(key: str, limit: int, window_seconds: int, now: float | None = None) -> bool:
    """Count one hit; True while the hits in this window are at most ``limit``."""
    return _backend.hit(key, window_seconds, now) <= limit


def incr(key: str, ttl: int, now: float | None = None) -> int:
    return _backend.incr(key, ttl, now)


def alive(key: str, now: float | None = None) -> tuple[int, int]:
    return _backend.alive(key, now)


def clear(key: str) -> None:
    _backend.clear(key)


def purge(older_than_seconds: int = 86400, now: float | None = None) -> int:
    """Delete windows that started more than ``older_than_seconds`` ago; returns the count."""
    return _backend.purge(older_than_seconds, now)
