"""portal.warm_up (issue 10): what gunicorn's master loads before it forks its workers, so they
share it: every template compiled, the catalogues read, one PDF written."""

from __future__ import annotations

from portal import pdf, warm_up


def test_warm_up_compiles_every_template_and_prepares_the_pdf_font(app, client, monkeypatch):
    monkeypatch.setattr(pdf, "_FONT_TEMPLATES", {})
    env = app.jinja_env
    monkeypatch.setattr(env, "cache", type(env.cache)(10))  # smaller than the templates
    warm_up(app)
    names = env.list_templates(extensions=("html", "txt", "xml"))
    assert len(names) > 100
    cached = {key[1] for key in env.cache.keys()}  # (loader ref, name)
    assert set(names) <= cached  # the cache grew to hold them all
    assert pdf._FONT_TEMPLATES, "the font template is built"
    # pages still render after it, in both languages
    assert "住房公积金" in client.get("/").get_data(as_text=True)
    assert client.get("/?lang=en").status_code == 200


def _run_beside_gunicorn_conf(code: str, env: dict[str, str]) -> str:
    """Run ``code`` in a fresh interpreter in the project's folder (gunicorn.conf.py prepares
    the process that reads it, so never in this one), with this environment but the portal's
    and gunicorn's variables, then ``env``; what it printed."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PORTAL_", "GUNICORN_"))}
    done = subprocess.run(  # noqa: S603 - our own interpreter and a fixed script
        [sys.executable, "-c", code],
        cwd=root,
        env={**base, "PYTHONPATH": str(root), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _under_gunicorn_conf(database_url: str) -> str:
    """Read gunicorn.conf.py as gunicorn's master does (before the application), then load
    the application and run a query; prints whether peewee found the PostgreSQL driver."""
    code = (
        "import runpy; runpy.run_path('gunicorn.conf.py')\n"
        "import peewee, portal\n"
        "app = portal.create_app()\n"
        "from portal.db import db\n"
        "with app.app_context():\n"
        "    assert db.execute_sql('SELECT 1').fetchone()[0] == 1\n"
        "print('driver', peewee.psycopg is not None)\n"
    )
    return _run_beside_gunicorn_conf(code, {"PORTAL_DATABASE_URL": database_url})


def test_the_server_leaves_the_postgresql_driver_out_on_sqlite(tmp_path):
    """gunicorn.conf.py keeps psycopg out of an SQLite server (its libraries cost every worker
    about 12 MB) and in a PostgreSQL one."""
    import os

    assert "driver False" in _under_gunicorn_conf(f"sqlite:///{tmp_path / 'x.db'}")
    url = os.environ.get("TEST_DATABASE_URL", "")
    if url.startswith("postgres"):
        assert "driver True" in _under_gunicorn_conf(url)


def _gunicorn_worker(**env_overrides) -> str:
    """The worker class gunicorn runs with gunicorn.conf.py (read in a process of its own: the
    file prepares the process that reads it)."""
    code = (
        "import runpy\n"
        "from gunicorn.config import Config\n"
        "conf = runpy.run_path('gunicorn.conf.py')\n"
        "cfg = Config()\n"
        "for name in ('worker_class', 'threads', 'workers'):\n"
        "    cfg.set(name, conf[name])\n"
        "print(cfg.worker_class.__name__, cfg.threads)\n"
    )
    return _run_beside_gunicorn_conf(code, env_overrides).strip()


def test_the_server_runs_sync_workers_unless_told_otherwise():
    """Sync workers by default (issue 10): gthread kept kept-alive connections on the worker
    that accepted them, and one worker could end up serving every user in turn on one core
    while the others idled. GUNICORN_* still choose another setting."""
    assert _gunicorn_worker() == "SyncWorker 1"
    assert _gunicorn_worker(GUNICORN_WORKER_CLASS="gthread", GUNICORN_THREADS="2") == (
        "ThreadWorker 2"
    )
    # gunicorn itself runs gthread whenever there is more than one thread
    assert _gunicorn_worker(GUNICORN_THREADS="4") == "ThreadWorker 4"
