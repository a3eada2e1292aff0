"""The peer HTTP transport of the platform exchange (DESIGN.md section 6).

Two running portals exchange the very packages the file adapter writes: the signed zip
(``message.json`` + ``signature.json`` + ``materials/``) is the request body of a ``POST`` to the
peer's inbox (``Center.exchange_url``, e.g. ``https://gjj.example/platform/inbox``). The peer
answers JSON (``{"status": "accepted" | "duplicate", ...}`` or ``{"error": ..., "code": ...}``
with a 4xx), or, to an ``ecode.query``, its signed ``ecode.reply`` package.

Only the standard library: ``http.client`` with a timeout, no redirects followed, no proxies.
Which answers are worth a retry is decided here (:func:`retryable`); the outbox does the rest.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

CONTENT_TYPE = "application/zip"
USER_AGENT = "hpf-portal-exchange/1"
TIMEOUT = 15.0
MAX_RESPONSE = 8 * 1024 * 1024


class TransportError(Exception):
    """The peer could not be reached or did not answer (worth a retry)."""


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: str

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def json(self) -> dict:
        try:
            data = json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            return {}
        return data if isinstance(data, dict) else {}

    @property
    def error(self) -> str:
        """The peer's explanation of a refusal, or the status line."""
        data = self.json()
        text = data.get("error") or data.get("status") or ""
        return str(text)[:240] or f"HTTP {self.status}"


def retryable(status: int) -> bool:
    """Answers that may succeed later: the peer is busy, restarting or failing inside.
    Any other 4xx is a refusal that a retry would only repeat."""
    return status in (408, 425, 429) or status >= 500


def check_url(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path) of an exchange URL, or ValueError."""
    parts = urlsplit((url or "").strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("交换地址须为 http:// 或 https:// 开头的完整地址")
    if parts.username or parts.password:
        raise ValueError("交换地址不能包含用户名或密码")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise ValueError("交换地址的端口不正确") from None
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return parts.scheme, parts.hostname, port, path


def post(url: str, data: bytes, *, message_id: str = "", timeout: float = TIMEOUT) -> Response:
    """POST a signed package; TransportError when the peer cannot be reached."""
    try:
        scheme, host, port, path = check_url(url)
    except ValueError as exc:
        raise TransportError(str(exc)) from None
    if scheme == "https":
        connection = http.client.HTTPSConnection(
            host, port, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        connection = http.client.HTTPConnection(host, port, timeout=timeout)
    headers = {
        "Content-Type": CONTENT_TYPE,
        "Accept": "application/json, application/zip",
        "User-Agent": USER_AGENT,
    }
    if message_id:
        headers["X-Platform-Message-Id"] = message_id
    try:
        connection.request("POST", path, body=data, headers=headers)
        answer = connection.getresponse()
        body = answer.read(MAX_RESPONSE + 1)
        if len(body) > MAX_RESPONSE:
            raise TransportError("对方应答过大")
        content_type = (answer.getheader("Content-Type") or "").split(";")[0].strip()
        return Response(answer.status, body, content_type)
    except (TimeoutError, OSError, http.client.HTTPException) as exc:
        raise TransportError(_describe(exc)) from None
    finally:
        connection.close()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "对方拒绝连接（服务未启动或地址有误）"
    if isinstance(exc, socket.timeout | TimeoutError):
        return "连接对方超时"
    if isinstance(exc, socket.gaierror):
        return "无法解析对方地址"
    if isinstance(exc, ssl.SSLError):
        return f"TLS 握手失败：{exc.__class__.__name__}"
    if isinstance(exc, http.client.HTTPException):
        return f"对方应答不完整（{exc.__class__.__name__}）"
    return f"网络错误（{exc.__class__.__name__}）"
