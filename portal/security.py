"""Response headers every page carries: a strict, nonce-based CSP and friends.

Each response gets a fresh nonce; every ``<script>`` tag carries it (``csp_nonce()`` in
templates) and scripts come only from our own origin. No ``'strict-dynamic'`` (it would let a
script create other scripts, inline ones included), no ``unsafe-inline``, no ``unsafe-eval``
(htmx runs with ``allowEval: false`` and ``allowScriptTags: false``).
"""

from __future__ import annotations

import functools
import secrets

from flask import current_app, g, session
from flask_wtf import csrf as wtf_csrf

from portal.fragments import FragmentCache


def csp_nonce() -> str:
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    return g.csp_nonce


def policy(nonce: str) -> str:
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src 'self' 'nonce-{nonce}'",
            "style-src 'self'",
            "img-src 'self' data:",
            "font-src 'self'",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


# --- CSRF tokens, signed once per session and worker (issue 10) ---------------------------
#
# Flask-WTF signs the session's CSRF secret anew in every request that shows a form or the
# layout's htmx header (an itsdangerous serializer built and an HMAC computed: about 60 µs,
# a twentieth of a depositor's page). With no time limit on tokens (WTF_CSRF_TIME_LIMIT is
# None: a token lives as long as its server-side session) one signed token per session
# serves every page: each worker keeps the last SIGNED_TOKENS of them, under the secret, the
# field name and the session's raw token (a new session, a new raw token, a new signature).
# With a time limit set, every request signs afresh, as Flask-WTF does.
SIGNED_TOKENS = 4096


def install_kept_csrf_tokens() -> None:
    """Put the keeping ``generate_csrf`` where Flask-WTF's forms, template global and context
    processor call it (its module); once per process."""
    original = wtf_csrf.generate_csrf
    if getattr(original, "keeps_tokens", False):
        return
    signed: FragmentCache[str] = FragmentCache(SIGNED_TOKENS)

    @functools.wraps(original)
    def generate_csrf(secret_key=None, token_key=None):
        config = current_app.config
        field = token_key or config.get("WTF_CSRF_FIELD_NAME") or "csrf_token"
        found = g.get(field)
        if found is not None:  # this request's (a page asks two or three times)
            return found
        if config.get("WTF_CSRF_TIME_LIMIT", 3600):  # Flask-WTF's default when unset
            return original(secret_key, token_key)
        secret = secret_key or config.get("WTF_CSRF_SECRET_KEY") or current_app.secret_key
        raw = session.get(field)
        if isinstance(raw, str):
            make = functools.partial(original, secret_key, token_key)
        else:  # a new session: Flask-WTF makes its raw token (and signs it) here
            token = original(secret_key, token_key)
            raw, make = session.get(field), lambda: token
            if not isinstance(raw, str):  # never kept under anything but a session's token
                return token
        token = signed.get((secret, field, raw), make)
        setattr(g, field, token)
        return token

    generate_csrf.keeps_tokens = True
    wtf_csrf.generate_csrf = generate_csrf


def init_app(app):
    app.jinja_env.globals["csp_nonce"] = csp_nonce
    install_kept_csrf_tokens()
    app.jinja_env.globals["csrf_token"] = wtf_csrf.generate_csrf

    @app.after_request
    def set_security_headers(response):
        headers = response.headers
        headers.setdefault("Content-Security-Policy", policy(csp_nonce()))
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "same-origin")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        if response.mimetype == "text/html":
            headers.setdefault("Cache-Control", "no-store")
        return response
