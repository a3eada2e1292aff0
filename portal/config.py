"""Configuration from the environment.

Every setting has an environment variable of the same name prefixed with ``PORTAL_``
(``PORTAL_DATABASE_URL``, ``PORTAL_SECRET_KEY`` ...). Development defaults are safe for a
laptop; production mode (``PORTAL_ENV=production``) refuses to start without real secrets.
"""

from __future__ import annotations

import os
import secrets


class ConfigError(RuntimeError):
    """A setting is missing or malformed."""


DEFAULTS: dict[str, object] = {
    "ENV": "development",
    "DATABASE_URL": "sqlite:///instance/portal.db",
    "REDIS_URL": "",
    "SECRET_KEY": "",  # nosec B105 - no default: production refuses to start without one
    "CENTER_CODE": "152900",
    "CENTER_NAME": "阿拉善盟住房公积金管理中心",
    "SMS_ADAPTER": "outbox",
    "DEV_SMS_PAGE": True,
    "STORAGE_DIR": "instance/storage",
    "SESSION_IDLE_MINUTES_STAFF": 15,
    "SESSION_IDLE_MINUTES_PUBLIC": 10,
    "SESSION_MAX_HOURS": 8,
    "SESSION_COOKIE_SECURE": False,
    "MAX_CONTENT_LENGTH": 5 * 1024 * 1024 + 64 * 1024,  # one 5 MB upload plus its form
    "LOGIN_ADDRESS_LIMIT": 100,  # login attempts per client address per 15 minutes
    # pending payouts at least this old are completed or reversed when the app starts (a single
    # instance may use 0: nothing of its own can still be in flight after a restart)
    "RECONCILE_GRACE_SECONDS": 120,
    "DATA_KEYS": "",  # kid:base64key,... (AES-256-GCM for IDs and cards at rest)
    "LOOKUP_KEY": "",  # base64 32 bytes (HMAC blind index)
    "SIGNING_KEY": "",  # base64 Ed25519 seed: our signature on platform messages
    # repeated fragments (board cards, ledger rows) kept per worker (portal/fragments.py)
    "HTML_CACHE": True,
    "BENCH_ROUTES": False,  # /healthz/bare for the benchmark (bench/run.py); does nothing
}


def _coerce(default: object, raw: str) -> object:
    if isinstance(default, bool):
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off", ""):
            return False
        raise ConfigError(f"expected a boolean, got {raw!r}")
    if isinstance(default, int):
        try:
            return int(raw)
        except ValueError as exc:
            raise ConfigError(f"expected an integer, got {raw!r}") from exc
    return raw


def load(overrides: dict | None = None, environ: dict | None = None) -> dict:
    """Defaults, then ``PORTAL_*`` variables, then explicit overrides; validated."""
    environ = os.environ if environ is None else environ
    cfg: dict[str, object] = {}
    for key, default in DEFAULTS.items():
        raw = environ.get(f"PORTAL_{key}")
        if raw is None:
            cfg[key] = default
            continue
        try:
            cfg[key] = _coerce(default, raw)
        except ConfigError as exc:
            raise ConfigError(f"PORTAL_{key}: {exc}") from None
    cfg.update(overrides or {})
    production = cfg["ENV"] == "production"
    if not cfg["SECRET_KEY"]:
        if production:
            raise ConfigError("PORTAL_SECRET_KEY must be set in production")
        cfg["SECRET_KEY"] = secrets.token_hex(32)
    if production:
        if len(str(cfg["SECRET_KEY"])) < 32:
            raise ConfigError("PORTAL_SECRET_KEY must be at least 32 characters")
        cfg["DEV_SMS_PAGE"] = False
        if not cfg["DATA_KEYS"] or not cfg["LOOKUP_KEY"]:
            raise ConfigError("PORTAL_DATA_KEYS and PORTAL_LOOKUP_KEY must be set in production")
        if not cfg["SIGNING_KEY"]:
            raise ConfigError("PORTAL_SIGNING_KEY must be set in production")
    redis_url = str(cfg["REDIS_URL"])
    if redis_url and not redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError("PORTAL_REDIS_URL must start with redis://, rediss:// or unix://")
    url = str(cfg["DATABASE_URL"])
    if not url.startswith(("sqlite://", "postgres://", "postgresql://", "psycopg3://")):
        raise ConfigError(f"PORTAL_DATABASE_URL: unsupported scheme in {url.split(':', 1)[0]!r}")
    return cfg
