"""Helpers for the HTTP exchange tests (tests/test_platform_http*.py, test_outbox*.py,
test_ecode*.py): a peer center played with the deterministic demo key of 110000, and a fake
peer inbox served over real HTTP on 127.0.0.1."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import threading
import zipfile
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from bs4 import BeautifulSoup

from portal.models import Center, ProxyCase, StaffUser
from portal.platform import files, messages, signing
from portal.rules.ids import resident_id_check_char

PEER = "110000"
OURS = "152900"
HX = {"HX-Request": "true"}
PDF_BYTES = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG_BYTES = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
# a fixed key for our center in these tests (base64 of a 32-byte seed)
OUR_SEED = base64.b64encode(hashlib.sha256(b"hpf-test-our-center").digest()).decode()


def soup(response) -> BeautifulSoup:
    return BeautifulSoup(response.get_data(as_text=True), "html.parser")


def staff(username: str) -> StaffUser:
    return StaffUser.get(StaffUser.username == username)


def peer() -> Center:
    return Center.get(Center.code == PEER)


def peer_key():
    return signing.demo_peer_key(PEER)


def our_public_key() -> str:
    return signing.public_key_b64(signing.private_key())


def signed(message: dict, attachments: dict[str, bytes] | None = None, key=None) -> bytes:
    """A package from the peer (or whoever holds ``key``)."""
    return files.pack(message, attachments or {}, key or peer_key())


def build(kind: str, case_ref: dict | None, payload: dict, sender=PEER, recipient=OURS, **kw):
    return messages.build(kind, sender, recipient, case_ref, payload, **kw)


def read_zip(data: bytes) -> tuple[dict, dict]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return json.loads(zf.read("message.json")), json.loads(zf.read("signature.json"))


def make_id(first17: str) -> str:
    return first17 + resident_id_check_char(first17)


def entry(code: str, name: str, filename: str, data: bytes, content_type: str) -> dict:
    return messages.file_entry(
        code, name, filename, content_type, len(data), hashlib.sha256(data).hexdigest()
    )


def post_inbox(client, data: bytes, **headers):
    return client.post(
        "/platform/inbox", data=data, content_type="application/zip", headers=headers
    )


def outbound_transmitted(username: str = "clerk") -> ProxyCase:
    """An outbound case accepted at our counter for the peer and moved to 已传递 by the
    liaison through the board's move (so through the exchange)."""
    from portal.services import cases, materials
    from tests.conftest import TODAY
    from tests.counter_helpers import accept

    case = accept(username)
    materials.upload(staff("clerk"), "staff:clerk", case, "id_card", "身份证.png", PNG_BYTES)
    cases.move_case(staff("clerk"), case.id, "verifying", case.version, today=TODAY, overrides={})
    case = ProxyCase.get_by_id(case.id)
    return cases.move_case(
        staff("liaison"), case.id, "transmitted", case.version, today=TODAY, overrides={}
    )


class FakePeer:
    """A peer's inbox on 127.0.0.1: records each body; answers ``status`` (JSON), or checks
    the signature with ``public_key`` and answers 403 when it does not hold. Start and stop
    it to play a peer that is down and comes back (the port stays the same)."""

    def __init__(self, public_key: str | None = None, status: int = 200, port: int = 0):
        self.public_key = public_key
        self.status = status
        self.received: list[bytes] = []
        self.seen: set[str] = set()
        self.port = port
        self._server: ThreadingHTTPServer | None = None
        if not port:
            self.start()
            self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/platform/inbox"

    def start(self) -> FakePeer:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                fake.received.append(body)
                status, answer = fake.answer(body)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def answer(self, body: bytes) -> tuple[int, dict]:
        if self.status != 200:
            return self.status, {"error": "对方暂时无法处理", "code": "busy"}
        message, signature = read_zip(body)
        if self.public_key and not signing.verify(
            self.public_key, messages.canonical(message), signature["signature"]
        ):
            return 403, {"error": "签名校验失败", "code": "bad_signature"}
        if message["message_id"] in self.seen:
            return 200, {"status": "duplicate", "message_id": message["message_id"]}
        self.seen.add(message["message_id"])
        return 200, {"status": "accepted", "message_id": message["message_id"]}

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def worker_env(app) -> dict:
    """The environment of a `flask platform worker` subprocess on the test database."""
    return {
        **os.environ,
        "PORTAL_DATABASE_URL": app.config["DATABASE_URL"],
        "PORTAL_STORAGE_DIR": app.config["STORAGE_DIR"],
        "PORTAL_SECRET_KEY": "test-secret-key-not-for-production-0123456789",
        "PORTAL_ENV": "development",
        "PORTAL_SIGNING_KEY": OUR_SEED,
    }


TODAY_PLUS = date(2026, 11, 26)


@pytest.fixture
def exchange_app(app, monkeypatch):
    """Our center signs with a fixed test key; an app context for the services.

    Test-client requests reuse this app context (and its ``g``), so the logged-in user
    flask-login caches in ``g`` is dropped after each request: a second client logs in anew."""
    from flask import g

    def forget_user(_exc):
        g.pop("_login_user", None)

    monkeypatch.setitem(app.config, "SIGNING_KEY", OUR_SEED)
    funcs = app.teardown_request_funcs.setdefault(None, [])
    funcs.append(forget_user)
    try:
        with app.app_context():
            yield app
    finally:
        funcs.remove(forget_user)
