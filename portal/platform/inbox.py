"""The platform inbox: where peer centers POST their signed packages (machine to machine).

``POST /platform/inbox`` with the package (``application/zip``) as the body. No session, no
login, no CSRF token (the blueprint is exempted from CSRF explicitly, and it alone): the only
credential is the Ed25519 signature of a known peer over the message, which
``exchange.receive`` checks together with the schema, the recipient and every file's hash.

Answers (JSON):

* 200 ``{"status": "accepted", "message_id", "type", "case_no"}``; a message id already
  processed: 200 ``{"status": "duplicate", ...}`` and nothing changes;
* an ``ecode.query``: 200 with the signed ``ecode.reply`` package (``application/zip``);
* a refusal: 4xx ``{"error": <Chinese text>, "code": <reason>}`` — 400 unreadable, 403 unknown
  peer or bad signature, 404 unknown case, 409 the case is in another state, 413 too large,
  422 schema violation, tampered file or wrong recipient — and an audit row
  ``platform.refused``. Refusals from one address are rate limited (429).

``GET /platform/inbox`` says who we are (center code, public key, schema versions), so an
administrator can check a peer's endpoint.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from portal.platform import exchange, files, messages, signing
from portal.services import audit, ratelimit

log = logging.getLogger(__name__)

bp = Blueprint("platform_inbox", __name__, url_prefix="/platform/inbox")

REFUSALS_PER_HOUR = 120  # refused packages one address may send an hour


def _address() -> str:
    return (request.remote_addr or "")[:45]


def _refused(status: int, code: str, text: str, **context):
    """Answer a refusal and record it (no personal data: only ids, codes and the reason)."""
    ratelimit.hit(f"inbox:refused:{_address()}", REFUSALS_PER_HOUR, 3600)
    audit.record(
        f"platform:{context.get('sender') or 'unknown'}"[:40],
        "platform.refused",
        "center",
        (context.get("sender") or "")[:12],
        ip=_address(),
        status=status,
        reason=code,
        error=text[:200],
        message_id=context.get("message_id", ""),
    )
    log.warning("platform inbox refused a package (%s %s): %s", status, code, text)
    return jsonify(error=text, code=code), status


@bp.get("", strict_slashes=False)
def about():
    center = files.self_center()
    return jsonify(
        center=center.code,
        name=center.name,
        algorithm=signing.ALGORITHM,
        public_key=signing.public_key_b64(signing.private_key()),
        schema_versions=sorted(messages.SCHEMA_PATHS),
    )


@bp.post("", strict_slashes=False)
def receive():
    if ratelimit.blocked(f"inbox:refused:{_address()}", REFUSALS_PER_HOUR, 3600):
        return jsonify(error="拒收过多，请稍后再试", code="rate_limited"), 429
    request.max_content_length = files.MAX_PACKAGE_BYTES
    try:
        data = request.get_data(cache=False)
    except RequestEntityTooLarge:
        return _refused(413, "too_large", "业务包过大")
    try:
        got = exchange.receive(data, "http")
    except exchange.Rejected as exc:
        return _refused(exc.status, exc.code, str(exc), **exc.context)
    except files.ImportRefused as exc:  # any other refusal of the package's content
        return _refused(422, "invalid", str(exc))
    if got.reply is not None:
        response = Response(got.reply, status=200, mimetype="application/zip")
        response.headers["Cache-Control"] = "no-store"
        return response
    return jsonify(
        status="duplicate" if got.duplicate else "accepted",
        message_id=got.message_id,
        type=got.kind,
        case_no=got.case.case_no if got.case is not None else "",
    )
