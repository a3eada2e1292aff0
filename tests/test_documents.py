"""Documents recorded by the services and written by the PDF renderer (portal/documents.py,
issue 10: the web workers never load the PDF libraries), or in the calling process when there
is no renderer or it cannot be reached."""

from __future__ import annotations

import logging
import os
import re
import secrets
import subprocess
import sys
import time
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from portal import documents, pdf
from portal.documents import Document, RenderFailed
from tests.conftest import pdf_text

ROOT = Path(__file__).resolve().parent.parent


def _every_block(doc):
    doc.heading("一、申请人信息")
    doc.paragraph("兹证明王芳在我中心缴存住房公积金。", size=10)
    doc.fields([("姓名", "王芳"), ("余额（元）", Decimal("12345.60")), ("备注", None)])
    doc.table(["年月", "金额"], [["2026-01", Decimal("800.00")]], [40, 40], align="LR")
    doc.checklist([("身份证", True), ("购房合同", False)])
    doc.signatures(["申请人（签字）", "日期"])
    doc.qr("https://example.invalid/verify/ABCD", "核验码：ABCD")
    doc.seal(on=date(2026, 12, 3))
    doc.copy_page("查询授权书", "SL2026", "第二联")
    doc.paragraph("第二联正文")
    return doc


def _text(data: bytes) -> str:
    return re.sub(r"\s+", "", pdf_text(data))


def _pages(data: bytes) -> int:
    return len(re.findall(rb"/Type\s*/Page\b", data))


def test_a_recorded_document_reads_as_the_layout_writes_it():
    head = ("阿拉善盟住房公积金管理中心", "住房公积金缴存使用证明")
    kwargs = {"number": "ZM2026001", "issued_on": date(2026, 12, 3)}
    recorded = _every_block(Document(*head, **kwargs)).output()
    direct = _every_block(pdf.Doc(*head, **kwargs)).output()
    assert recorded.startswith(b"%PDF")
    assert _text(recorded) == _text(direct)
    assert _pages(recorded) == _pages(direct) == 2
    text = _text(recorded)
    for expected in ("编号：ZM2026001", "12345.60", "■身份证", "□购房合同", "第二联", "SL2026"):
        assert expected in text


def test_only_the_layouts_blocks_are_recorded_and_values_become_text(app):
    from flask_babel import lazy_gettext

    doc = Document("中心", "标题")
    with pytest.raises(AttributeError):
        doc.output_to_file  # noqa: B018 - not a block
    with pytest.raises(AttributeError):
        doc.pdf  # noqa: B018 - the layout's FPDF is the renderer's, not here
    with app.test_request_context("/"):
        doc.fields([("金额", Decimal("1.50")), ("说明", lazy_gettext("正常"))])
    _args, _kwargs, blocks = doc.script()
    assert blocks == [("fields", ([("金额", "1.50"), ("说明", "正常")],), {})]


@pytest.fixture
def renderer(tmp_path, monkeypatch):
    """The renderer as gunicorn.conf.py starts it: its own interpreter, two processes."""
    address = str(tmp_path / "renderer.sock")
    key = secrets.token_hex(32)
    env = {k: v for k, v in os.environ.items() if k != documents.ADDRESS_ENV}
    env[documents.KEY_ENV] = key
    process = subprocess.Popen(  # noqa: S603 - this interpreter, our own module
        [sys.executable, "-m", "portal.documents", address, "--processes", "2"],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not os.path.exists(address):
        assert process.poll() is None and time.monotonic() < deadline, process.stderr.read()
        time.sleep(0.05)
    monkeypatch.setenv(documents.ADDRESS_ENV, address)
    monkeypatch.setenv(documents.KEY_ENV, key)
    yield process
    process.terminate()
    process.wait(timeout=10)
    process.stderr.close()


def test_the_renderer_writes_the_document(renderer, monkeypatch):
    def not_here(script):
        raise AssertionError("written in the calling process")

    monkeypatch.setattr(pdf, "replay", not_here)
    doc = _every_block(Document("阿拉善盟住房公积金管理中心", "证明", number="N1"))
    text = _text(doc.output())
    assert "编号：N1" in text and "王芳" in text and "第二联正文" in text
    # and again, from both of its processes in turn
    outputs = [Document("中心", f"第{i}份").output() for i in range(4)]
    assert all(f"第{i}份" in _text(data) for i, data in enumerate(outputs))


def _run_script(code: str) -> str:
    """Run ``code`` in a fresh interpreter in the project's folder; what it printed."""
    done = subprocess.run(  # noqa: S603 - this interpreter, a fixed script
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_a_process_using_the_renderer_never_loads_the_pdf_libraries(renderer):
    code = (
        "import sys\n"
        "from portal.documents import Document\n"
        "data = Document('中心', '对账单').fields([('姓名', '王芳')]).output()\n"
        "assert data.startswith(b'%PDF')\n"
        "print(sorted(m for m in ('fpdf', 'fontTools', 'PIL', 'segno', 'portal.pdf')"
        " if m in sys.modules))\n"
    )
    assert _run_script(code).strip() == "[]"


def test_the_renderer_never_loads_the_application():
    """The renderer (``python -m portal.documents``) imports the package, its own module and
    ``portal.pdf``: the package's ``__init__`` loads the application factory only when asked
    for it, so the renderer holds the font without Flask, peewee and the app (issue 10)."""
    code = (
        "import runpy, sys\n"
        "sys.argv = ['portal.documents', '--help']\n"
        "try:\n"
        "    runpy.run_module('portal.documents', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "from datetime import date\n"
        "from portal import pdf\n"
        "from portal.documents import Document\n"
        "pdf.warm_up()\n"
        "doc = Document('中心', '证明', number='N1')\n"
        "doc.fields([('姓名', '王芳')]).table(['年月'], [['2026-01']], [40])\n"
        "doc.qr('https://example.invalid/verify/A', 'A').seal(on=date(2026, 12, 3))\n"
        "data = pdf.replay(doc.script())\n"
        "assert data.startswith(b'%PDF')\n"
        "app = ('flask', 'peewee', 'jinja2', 'wtforms', 'psycopg', 'portal.factory')\n"
        "print(sorted(m for m in app if m in sys.modules))\n"
    )
    assert _run_script(code).strip().splitlines()[-1] == "[]"


def test_the_package_gives_the_factory_on_first_use():
    import portal
    from portal import factory

    assert portal.create_app is factory.create_app
    assert portal.warm_up is factory.warm_up
    with pytest.raises(AttributeError, match="no attribute 'create_ap'"):
        portal.create_ap  # noqa: B018 - a misspelt name is an error, not None


def test_an_unreachable_renderer_means_the_document_is_written_here(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv(documents.ADDRESS_ENV, str(tmp_path / "gone.sock"))
    monkeypatch.setenv(documents.KEY_ENV, secrets.token_hex(32))
    with caplog.at_level(logging.WARNING, logger="portal.documents"):
        data = Document("中心", "回执").paragraph("正文").output()
    assert "正文" in _text(data)
    assert "PDF renderer unavailable (FileNotFoundError)" in caplog.text


def test_a_renderer_that_does_not_answer_is_given_up_on(tmp_path, monkeypatch, caplog):
    """A renderer that takes the connection and then says nothing (busy or stuck): the wait
    is bounded, then the document is written here."""
    import socket
    import threading

    address = str(tmp_path / "silent.sock")
    silent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    silent.bind(address)
    silent.listen()
    taken = []
    threading.Thread(target=lambda: taken.append(silent.accept()), daemon=True).start()
    monkeypatch.setenv(documents.ADDRESS_ENV, address)
    monkeypatch.setenv(documents.KEY_ENV, secrets.token_hex(32))
    monkeypatch.setattr(documents, "ANSWER_SECONDS", 0.3)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="portal.documents"):
        data = Document("中心", "回执").output()
    assert "回执" in _text(data) and time.monotonic() - started < 10
    assert "PDF renderer unavailable (BlockingIOError)" in caplog.text
    for conn, _ in taken:
        conn.close()
    silent.close()


def test_a_wrong_key_is_refused_and_the_renderer_keeps_serving(renderer, monkeypatch, caplog):
    key = os.environ[documents.KEY_ENV]
    monkeypatch.setenv(documents.KEY_ENV, secrets.token_hex(32))
    with caplog.at_level(logging.WARNING, logger="portal.documents"):
        data = Document("中心", "回执").output()  # written here instead
    assert "回执" in _text(data) and "AuthenticationError" in caplog.text
    monkeypatch.setenv(documents.KEY_ENV, key)
    monkeypatch.setattr(pdf, "replay", None)  # from now on only the renderer can write it
    assert "回执" in _text(Document("中心", "回执").output())


def test_a_document_the_renderer_cannot_write_is_an_error_not_a_retry(renderer, monkeypatch):
    monkeypatch.setattr(pdf, "replay", None)  # the renderer's answer, not a local retry
    with pytest.raises(RenderFailed, match="not a document block"):
        documents.render((("中心", "标题"), {}, [("output_to_file", ("/etc/x",), {})]))
    with pytest.raises(RenderFailed, match="ValueError"):
        Document("中心", "标题").fields("not rows").output()
    assert "标题" in _text(Document("中心", "标题").output())  # still serving


def test_the_renderer_stops_when_the_process_that_started_it_is_gone(tmp_path):
    """If gunicorn's master dies without stopping it, the renderer does not linger."""
    address = str(tmp_path / "renderer.sock")
    output = tmp_path / "renderer.log"
    starter = (
        "import os, subprocess, sys, time\n"
        f"env = dict(os.environ, {documents.KEY_ENV}='{secrets.token_hex(32)}')\n"
        "log = open(sys.argv[2], 'w')\n"
        "p = subprocess.Popen([sys.executable, '-m', 'portal.documents', sys.argv[1],"
        " '--processes', '2'], env=env, stdout=log, stderr=log)\n"
        "while not os.path.exists(sys.argv[1]): time.sleep(0.05)\n"
        "print(p.pid, flush=True)\n"
    )
    done = subprocess.run(  # noqa: S603 - this interpreter, a fixed script
        [sys.executable, "-c", starter, address, str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    pid = int(done.stdout.split()[0])

    def running() -> list[int]:  # the renderer's processes (a zombie has exited already)
        found = []
        for proc in Path("/proc").iterdir():
            try:
                if address.encode() in (proc / "cmdline").read_bytes():
                    if (proc / "stat").read_text().split()[2] != "Z":
                        found.append(int(proc.name))
            except (OSError, ValueError):
                continue
        return found

    assert pid in running() or not running()  # it had started (and may be gone already)
    deadline = time.monotonic() + 10
    while running() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not running(), output.read_text()
