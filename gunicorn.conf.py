"""Production settings for `make serve` (gunicorn). Override with GUNICORN_* or flags.

The application is loaded once in the master and the workers are forked from it
(``preload_app``): the code, the compiled templates, the translations and the parsed CJK font
and modules of the PDFs are loaded once (``portal.warm_up``) and their memory pages are shared
by every worker (``gc.freeze`` keeps the collector from writing to them), a recycled worker
starts at once, and no worker pays for them on its first page or certificate. The master's
pooled database connections are closed before it forks, so no worker shares a connection
with another.
"""

import ctypes
import ctypes.util
import gc
import multiprocessing
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count() * 2 + 1))
# Sync workers, one request at a time each, behind nginx (deploy/nginx.conf.example), which
# buffers slow clients. Measured (issue 10, docs/performance.md): gthread workers keep each
# kept-alive connection on the worker that accepted it, and connections opened one after
# another while the workers were idle all went to the same one, which then served them in
# turn on one core: a benchmark level at the 1-user rate while the other workers idled. A sync
# worker closes its connection after each response, so the next request goes to a worker that
# is free. (gunicorn runs gthread whenever threads > 1, whatever worker_class says.)
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "sync")
preload_app = os.environ.get("GUNICORN_PRELOAD", "1") != "0"
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 20
keepalive = 5  # gthread only (GUNICORN_WORKER_CLASS=gthread GUNICORN_THREADS=2)
max_requests = 2000  # recycle workers now and then (memory)
max_requests_jitter = 200
accesslog = "-"  # logs go to stdout/stderr for the service manager
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOGLEVEL", "info")
# Access log without query strings (they may carry codes): method, path, status, size, time.
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms'
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "127.0.0.1")
control_socket_disable = True
# PDF renderer processes (portal/documents.py); 0 writes the documents in the workers.
pdf_renderers = int(os.environ.get("GUNICORN_PDF_RENDERERS", min(2, multiprocessing.cpu_count())))


def _without_postgresql_driver():
    """On SQLite, keep the PostgreSQL driver out of the server (issue 10: memory). peewee
    imports psycopg whenever it is installed, and its bundled libpq, OpenSSL and Kerberos
    libraries add about 12 MB to every worker's resident memory; marking the modules absent
    before the application is imported makes peewee's optional import find nothing. A
    PostgreSQL URL keeps the driver. This file is read before the application is loaded."""
    url = os.environ.get("PORTAL_DATABASE_URL", "")
    if url and not url.startswith("sqlite:"):
        return
    for name in ("psycopg", "psycopg2", "psycopg2cffi"):
        sys.modules.setdefault(name, None)


_without_postgresql_driver()


def when_ready(server):
    """The application is loaded (in the master, with preload_app): start the PDF renderer,
    warm what every worker shares, then freeze it out of the garbage collector's reach before
    the workers fork."""
    _start_pdf_renderer(server)
    if not preload_app:
        return
    from portal import warm_up

    warm_up(server.app.wsgi())
    gc.collect()
    _return_free_memory()
    gc.freeze()


def _return_free_memory():
    """Give the C heap's free pages back to the system before forking (glibc's malloc_trim):
    parsing the font and writing the first document freed tens of MB that every worker would
    otherwise inherit as resident memory."""
    try:
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass


_renderer: dict = {}


def _start_pdf_renderer(server):
    """The PDF renderer (``python -m portal.documents``): a process of its own that writes
    every document, so the workers never load the PDF libraries and the CJK font (issue 10:
    ~40 MB per worker). Its socket lives in a private directory and it only answers those who
    know the key made here; the workers inherit both through their environment. If it does
    not start, the workers write the documents themselves."""
    if pdf_renderers <= 0:
        return
    folder = tempfile.mkdtemp(prefix="hpf-pdf-")  # mode 0700
    address = os.path.join(folder, "renderer.sock")
    key = secrets.token_hex(32)
    env = {k: v for k, v in os.environ.items() if k != "PORTAL_PDF_RENDERER"}
    env["PORTAL_PDF_RENDERER_KEY"] = key
    process = subprocess.Popen(  # noqa: S603 - this interpreter, our own module
        [sys.executable, "-m", "portal.documents", address, "--processes", str(pdf_renderers)],
        env=env,
        cwd=os.path.dirname(os.path.abspath(__file__)),
    )
    deadline = time.monotonic() + 30
    while not os.path.exists(address):
        if process.poll() is not None or time.monotonic() > deadline:
            server.log.warning("PDF renderer did not start: the workers write the documents")
            process.kill()
            process.wait()
            shutil.rmtree(folder, ignore_errors=True)
            return
        time.sleep(0.05)
    os.environ["PORTAL_PDF_RENDERER"] = address
    os.environ["PORTAL_PDF_RENDERER_KEY"] = key
    _renderer.update(process=process, folder=folder)
    server.log.info("PDF renderer %s started (%d processes)", process.pid, pdf_renderers)


def on_exit(server):
    """gunicorn stops: stop the PDF renderer with it."""
    process = _renderer.get("process")
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
    if _renderer.get("folder"):
        shutil.rmtree(_renderer["folder"], ignore_errors=True)


def pre_fork(server, worker):
    """A forked worker must not inherit the master's open database connections."""
    from portal.db import release_pool

    release_pool()
