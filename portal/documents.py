"""Documents (PDFs): recorded where they are asked for, written by the PDF renderer.

A service builds a :class:`Document` block by block, exactly as it would build a
:class:`portal.pdf.Doc` (same arguments, same blocks), and ``output()`` gives the PDF's bytes:

    doc = Document(center_name, "住房公积金缴存使用证明", number="ZM2026...", issued_on=today)
    doc.fields([("姓名", "王芳"), ("身份证号码", "...")])
    doc.qr(url, "扫码核验")
    doc.seal(on=today)
    pdf_bytes = doc.output()

Under gunicorn (``gunicorn.conf.py``) the documents are written by a renderer process of their
own (``python -m portal.documents ADDRESS``): the web workers then never load fpdf2, fontTools,
the parsed CJK font or the images (about 40 MB of every worker's memory, issue 10), and a
document's working memory is the renderer's, not a worker's. The recording goes to the
renderer over a Unix socket in a private directory, authenticated with a key made at start.
Without a renderer (``flask run``, the tests, the command line, or when the renderer cannot
be reached) the document is written in the calling process, with the same result.

This module stays light: nothing here imports the PDF libraries.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import sys
import threading
import time
from datetime import date
from multiprocessing import AuthenticationError

log = logging.getLogger(__name__)

ADDRESS_ENV = "PORTAL_PDF_RENDERER"  # the renderer's socket; set by gunicorn.conf.py
KEY_ENV = "PORTAL_PDF_RENDERER_KEY"  # hex; set by gunicorn.conf.py, never logged
ANSWER_SECONDS = 20.0  # then the document is written here (gunicorn's timeout is 30 s)

# The blocks of portal.pdf.Doc a document may hold.
BLOCKS = frozenset("heading paragraph fields table checklist signatures qr seal copy_page".split())


class FontMissing(RuntimeError):
    """No CJK font is installed, so no document can be written."""


class RenderFailed(RuntimeError):
    """The renderer could not write the document (its own error, not a lost connection)."""


def _plain(value):
    """A block's argument in types the renderer reads back: text for anything else (lazy
    translations, Decimal — the layout writes ``str()`` of them in any case)."""
    if value is None or isinstance(value, str | bool | int | float | date):
        return value
    if isinstance(value, list | tuple):
        return type(value)(_plain(item) for item in value)
    return str(value)


def _recorded(args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    return _plain(args), {key: _plain(value) for key, value in kwargs.items()}


class Document:
    """A portal document, recorded: ``Document(...)`` takes :class:`portal.pdf.Doc`'s
    arguments (center name, title, ``number=``, ``issued_on=``, ``footer_note=``) and records
    its blocks (``fields``, ``qr``, ``seal`` ...) in order; the layout, which checks them, is
    written once, in ``portal.pdf``."""

    def __init__(self, *args, **kwargs):
        self._args, self._kwargs = _recorded(args, kwargs)
        self._blocks: list[tuple[str, tuple, dict]] = []

    def __getattr__(self, name: str):
        if name not in BLOCKS:
            raise AttributeError(name)

        def block(*args, **kwargs) -> Document:
            self._blocks.append((name, *_recorded(args, kwargs)))
            return self

        return block

    def script(self) -> tuple:
        return self._args, dict(self._kwargs), list(self._blocks)

    def output(self) -> bytes:
        return render(self.script())


def renderer_address() -> str | None:
    return os.environ.get(ADDRESS_ENV) or None


def render(script: tuple) -> bytes:
    """The PDF of a recorded document: from the renderer when there is one, else written here."""
    address = renderer_address()
    if address:
        try:
            return _ask_renderer(address, script)
        except (OSError, EOFError, AuthenticationError) as exc:  # timeouts are OSErrors
            log.warning(
                "PDF renderer unavailable (%s): writing the document in this process",
                type(exc).__name__,
            )
    from portal import pdf

    return pdf.replay(script)


def _ask_renderer(address: str, script: tuple) -> bytes:
    """``multiprocessing.connection.Client`` with a bound on every wait: its handshake and
    the answer are reads that would otherwise block for as long as a busy or stuck renderer
    keeps the connection waiting."""
    import socket
    import struct
    from multiprocessing.connection import Connection, answer_challenge, deliver_challenge

    key = bytes.fromhex(os.environ.get(KEY_ENV, ""))
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        wait = struct.pack("ll", int(ANSWER_SECONDS), int(ANSWER_SECONDS % 1 * 1_000_000))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, wait)
        sock.connect(address)
        conn = Connection(sock.detach())
    finally:
        sock.close()
    with conn:  # a read that waits longer raises BlockingIOError (an OSError)
        answer_challenge(conn, key)
        deliver_challenge(conn, key)
        conn.send(script)
        status, payload = conn.recv()
    if status == "ok":
        return payload
    if status == "font_missing":
        raise FontMissing(payload)
    raise RenderFailed(payload)


# --- the renderer process -----------------------------------------------------------------


_CHILDREN: list[int] = []  # the renderer processes this one forked


def serve(address: str, processes: int = 1) -> None:
    """Listen on ``address`` (a Unix socket path) and write the documents sent there, in
    ``processes`` processes forked after the font is loaded (they share it). Each exits when
    the process it belongs to is gone: the first when gunicorn's master (which started it) is,
    the others when the first is."""
    from multiprocessing.connection import Listener

    from portal import pdf

    key = bytes.fromhex(os.environ[KEY_ENV])
    watched = os.getppid()
    listener = Listener(address, family="AF_UNIX", backlog=64, authkey=key)
    os.chmod(address, 0o600)
    pdf.warm_up()
    gc.collect()
    gc.freeze()
    first = os.getpid()
    for _ in range(max(processes, 1) - 1):
        pid = os.fork()
        if pid == 0:
            _CHILDREN.clear()
            watched = first
            break
        _CHILDREN.append(pid)
    threading.Thread(target=_exit_when_orphaned, args=(watched,), daemon=True).start()
    while True:
        try:
            conn = listener.accept()
        except (AuthenticationError, OSError, EOFError) as exc:
            log.warning("PDF renderer refused a connection (%s)", type(exc).__name__)
            continue
        with conn:
            _answer(conn, pdf)


def _answer(conn, pdf) -> None:
    try:
        script = conn.recv()
    except (EOFError, OSError):
        return
    try:
        answer = ("ok", pdf.replay(script))
    except FontMissing as exc:
        answer = ("font_missing", str(exc))
    except Exception as exc:  # a document that cannot be written: say why, keep serving
        log.exception("PDF renderer could not write a document")
        answer = ("error", f"{type(exc).__name__}: {exc}")
    try:
        conn.send(answer)
    except OSError:
        pass  # the asker is gone (timed out); nothing to do


def _exit_when_orphaned(watched: int) -> None:
    while os.getppid() == watched:
        time.sleep(0.5)
    _stop()


def _stop(*_signal) -> None:
    """Stop now, with the processes this one forked: no clean-up at exit is needed (the
    socket's directory is gunicorn's to remove), and none can then wait on a lock that a
    signal interrupted."""
    for pid in _CHILDREN:
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            pass
    os._exit(0)


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description="The portal's PDF renderer (gunicorn.conf.py)")
    parser.add_argument("address", help="Unix socket path to listen on")
    parser.add_argument("--processes", type=int, default=1)
    args = parser.parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr, level=logging.WARNING, format="[pdf-renderer] %(levelname)s %(message)s"
    )
    signal.signal(signal.SIGTERM, _stop)
    serve(args.address, args.processes)


if __name__ == "__main__":
    main()
