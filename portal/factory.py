"""The application factory, ``create_app`` (``portal.create_app``: see portal/__init__.py)."""

from __future__ import annotations

import logging
import types
from pathlib import Path

from flask import Flask, jsonify, render_template, request
from flask.globals import _cv_request
from flask.templating import Environment
from flask_babel import Babel
from flask_wtf.csrf import CSRFError, CSRFProtect
from jinja2 import nodes
from jinja2.compiler import CodeGenerator, is_python_keyword
from jinja2.idtracking import VAR_LOAD_RESOLVE
from jinja2.utils import _PassArg

from portal import config as config_module
from portal.db import db, init_db

ROOT = Path(__file__).resolve().parent.parent
csrf = CSRFProtect()
babel = Babel()


class PortalCodeGenerator(CodeGenerator):
    """Jinja's compiler, with calls of the environment's plain functions made directly (issue 10).

    Jinja compiles every call in a template to ``context.call(f, ...)``, which looks ``f``
    over for ``pass_context`` and its kin (three ``hasattr`` and a ``getattr``) and pops the
    loop and block variables from the keywords: about 2 µs a call on this machine, and a page
    calls ``_()`` and ``url_for()`` fifty to a hundred times. Where the name is the template's
    global (not bound in the template by a ``set``, a loop, an import or a macro argument)
    and the environment's global of that name is a function that takes nothing of Jinja's or
    only the evaluation context (``_``), the call is compiled as ``f(...)`` or
    ``f(context.eval_ctx, ...)``. Globals are the app's, set before the first template is
    compiled; a render variable must not shadow one with a different kind of function.
    """

    def visit_Call(self, node, frame, forward_caller=False, **kwargs):
        target = node.node
        if not forward_caller and isinstance(target, nodes.Name) and target.ctx == "load":
            first = self._direct_call(target.name, frame)
            if first is not None and not any(is_python_keyword(k.key) for k in node.kwargs):
                arguments = [("", value) for value in (*node.args, *node.kwargs)]
                if node.dyn_args is not None:
                    arguments.append(("*", node.dyn_args))
                if node.dyn_kwargs is not None:
                    arguments.append(("**", node.dyn_kwargs))
                self.visit(target, frame)
                self.write("(" + first)
                for i, (star, value) in enumerate(arguments):
                    self.write((", " if first or i else "") + star)
                    self.visit(value, frame)
                self.write(")")
                return
        super().visit_Call(node, frame, forward_caller=forward_caller, **kwargs)

    def visit_Output(self, node, frame):
        """Jinja yields each piece of an output (a run of text and ``{{ … }}`` between two
        tags) on its own, and every piece passes up through each generator of the page (the
        block, the includes, the templates it extends) before the render joins them. Here an
        output of several pieces is joined first and yielded once, ``yield ''.join((…))``:
        the same pieces in the same order, each finalized and escaped (or made ``str``) as
        Jinja does it, so the same text. Outputs into a buffer (macros, ``set`` blocks, call
        blocks) are Jinja's own."""
        if frame.buffer is not None:
            return super().visit_Output(node, frame)
        if frame.require_output_check:
            if self.has_known_extends:
                return None
            self.writeline("if parent_template is None:")
            self.indent()
        finalize = self._make_finalize()
        body: list = []  # as Jinja's: lists of constant text, and nodes to evaluate
        for child in node.nodes:
            try:
                if not (finalize.const or isinstance(child, nodes.TemplateData)):
                    raise nodes.Impossible()
                const = self._output_child_to_const(child, frame, finalize)
            except (nodes.Impossible, Exception):
                body.append(child)
                continue
            if body and isinstance(body[-1], list):
                body[-1].append(const)
            else:
                body.append([const])
        joined = len(body) > 1
        if joined:
            self.writeline("yield ''.join((")
            self.indent()
        for item in body:
            if isinstance(item, list):
                text = self._output_const_repr(item)
                self.writeline(text + "," if joined else "yield " + text)
                continue
            if joined:
                self.newline(item)
            else:
                self.writeline("yield ", item)
            self._output_child_pre(item, frame, finalize)
            self.visit(item, frame)
            self._output_child_post(item, frame, finalize)
            if joined:
                self.write(",")
        if joined:
            self.outdent()
            self.writeline("))")
        if frame.require_output_check:
            self.outdent()
        return None

    def _output_child_pre(self, node, frame, finalize):
        if not self._gives_markup(node, frame, finalize):
            super()._output_child_pre(node, frame, finalize)

    def _output_child_post(self, node, frame, finalize):
        if not self._gives_markup(node, frame, finalize):
            super()._output_child_post(node, frame, finalize)

    def _gives_markup(self, node, frame, finalize) -> bool:
        """A direct call of a global marked ``markup_under_autoescape`` (the portal's ``_``:
        its variables escaped by Markup's ``%``) is written as it is under autoescape:
        ``escape()`` would only copy its Markup."""
        return (
            finalize.src is None
            and not frame.eval_ctx.volatile
            and frame.eval_ctx.autoescape
            and isinstance(node, nodes.Call)
            and isinstance(node.node, nodes.Name)
            and getattr(
                self.environment.globals.get(node.node.name), "markup_under_autoescape", False
            )
            and self._direct_call(node.node.name, frame) is not None
        )

    def _direct_call(self, name: str, frame) -> str | None:
        """What a direct call of ``name`` passes first ("" for nothing); None: call it
        through the context."""
        environment = self.environment
        if environment.is_async or environment.sandboxed:
            return None
        ref = frame.symbols.find_ref(name)
        if ref is None or frame.symbols.find_load(ref) != (VAR_LOAD_RESOLVE, name):
            return None  # bound in the template
        function = environment.globals.get(name)
        if not isinstance(function, (types.FunctionType, types.MethodType)):
            return None
        passes = _PassArg.from_obj(function)
        if passes is None:
            return ""
        if passes is _PassArg.eval_context:
            return "context.eval_ctx"
        return None


class PortalEnvironment(Environment):
    """Flask's Jinja environment, with the templates reading its globals directly (issue 10).

    Jinja gives every template a ``ChainMap`` of its own globals over the environment's, and
    every render, include and ``{% from … import %}`` copies it into a new context or compares
    its keys with the importer's: with the portal's 40-odd globals that is 15–20 µs each
    through ``ChainMap``'s Python-level lookups, a dozen times on a full page. The portal's
    templates have no globals of their own (no ``get_template(..., globals=...)``), so they
    share the environment's dict; a template given its own still gets Jinja's ``ChainMap``.
    """

    code_generator_class = PortalCodeGenerator

    def make_globals(self, d):
        if not d:
            return self.globals
        return super().make_globals(d)


class Portal(Flask):
    """Flask, with the URLs a request builds kept per worker (issue 10).

    A page builds a dozen or more URLs (the stylesheet, the scripts, the navigation, the
    footer) and werkzeug builds each anew: 5 to 25 µs apiece, a tenth of a simple page. A URL
    is a function of the endpoint, the values in their order, the mount point and the
    blueprint a relative endpoint is read against, as long as no ``url_defaults`` function
    adds values; those are the key. External URLs (host, scheme), values that cannot be a key
    (lists) and errors take Flask's path every time. At most ``URL_MEMO`` URLs, the oldest
    dropped first: a search's query string cannot grow it.
    """

    URL_MEMO = 4096
    jinja_environment = PortalEnvironment

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        from portal.fragments import FragmentCache

        self._urls: FragmentCache[str] = FragmentCache(self.URL_MEMO)

    def url_for(
        self, endpoint, *, _anchor=None, _method=None, _scheme=None, _external=None, **values
    ):
        req_ctx = _cv_request.get(None)
        defaults = any(self.url_default_functions.values())
        if req_ctx is None or _external or _scheme is not None or defaults:
            return super().url_for(
                endpoint,
                _anchor=_anchor,
                _method=_method,
                _scheme=_scheme,
                _external=_external,
                **values,
            )
        request_ = req_ctx.request
        try:
            key = (
                endpoint,
                request_.blueprint if endpoint[:1] == "." else None,
                request_.script_root,
                _anchor,
                _method,
                tuple(values.items()),
            )
            hash(key)
        except TypeError:  # a list of values: not a key
            return super().url_for(endpoint, _anchor=_anchor, _method=_method, **values)
        return self._urls.get(
            key,
            lambda: super(Portal, self).url_for(
                endpoint, _anchor=_anchor, _method=_method, **values
            ),
        )


def create_app(overrides: dict | None = None) -> Flask:
    app = Portal(
        "portal",  # the package: the app's name and logger as before the factory moved here
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
        instance_path=str(ROOT / "instance"),
    )
    app.config.update(config_module.load(overrides))
    app.config.update(
        SESSION_COOKIE_NAME="hpf_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        WTF_CSRF_TIME_LIMIT=None,  # bound to the server-side session instead
        BABEL_DEFAULT_LOCALE="zh_CN",
        BABEL_DEFAULT_TIMEZONE="Asia/Shanghai",
        BABEL_TRANSLATION_DIRECTORIES=str(ROOT / "portal" / "translations"),
        TEMPLATES_AUTO_RELOAD=app.config["ENV"] == "development",
    )
    logging.basicConfig(level=logging.INFO)
    logging.getLogger("fontTools").setLevel(logging.WARNING)  # fpdf2's font subsetting chatter
    from portal import logfilter

    logfilter.install()

    from portal import crypto

    try:
        crypto.configure(
            crypto.parse_keys(app.config["DATA_KEYS"], app.config["LOOKUP_KEY"])
            if app.config["DATA_KEYS"]
            else crypto.development_keys(Path(app.instance_path))
        )
    except crypto.CryptoError as exc:
        raise config_module.ConfigError(str(exc)) from None
    init_db(app.config["DATABASE_URL"], root=str(ROOT))
    _database_per_request(app)

    from portal import access, charts, filters, navigation, security, sessions, storage
    from portal.services import lockout, ratelimit, sms

    app.session_interface = sessions.ServerSessionInterface()
    if app.config["REDIS_URL"]:
        from datetime import timedelta

        import redis

        client = redis.Redis.from_url(app.config["REDIS_URL"])
        sessions.configure(
            sessions.RedisStore(client, timedelta(hours=app.config["SESSION_MAX_HOURS"]))
        )
        ratelimit.configure(ratelimit.RedisCounters(client))
    else:
        sessions.configure(sessions.DatabaseStore())
        ratelimit.configure(ratelimit.DatabaseCounters())
    access.login_manager.init_app(app)
    csrf.init_app(app)
    from portal import i18n

    babel.init_app(app, locale_selector=i18n.select_locale)  # issue 11: zh_CN / en
    _template_gettext_once_per_request(app)  # issue 10
    security.init_app(app)
    filters.init_app(app)
    charts.init_app(app)  # the dashboard's SVG bar charts: their widths
    navigation.init_app(app)  # the navigation bars, kept per worker
    i18n.init_app(app)  # issue 11: language switch, `tr` for Chinese enumerations
    sms.configure(app.config["SMS_ADAPTER"])
    lockout.ADDRESS_LIMIT = app.config["LOGIN_ADDRESS_LIMIT"]
    storage_dir = Path(app.config["STORAGE_DIR"])
    storage.configure(str(storage_dir if storage_dir.is_absolute() else ROOT / storage_dir))

    from portal.auth.routes import bp as auth_bp
    from portal.intranet.admin import bp as admin_bp
    from portal.intranet.audit import bp as audit_bp
    from portal.intranet.dashboard import bp as dashboard_bp
    from portal.intranet.routes import bp as intranet_bp
    from portal.public.employer import bp as employer_bp
    from portal.public.guides import bp as guides_bp
    from portal.public.hall import bp as hall_bp
    from portal.public.routes import bp as public_bp

    app.register_blueprint(public_bp)
    app.register_blueprint(guides_bp)
    app.register_blueprint(hall_bp)
    app.register_blueprint(employer_bp)
    app.register_blueprint(auth_bp)
    app.register_blueprint(intranet_bp)
    app.register_blueprint(admin_bp)
    app.register_blueprint(audit_bp)
    app.register_blueprint(dashboard_bp)

    from portal.intranet.counter import bp as counter_bp
    from portal.intranet.ledger import bp as ledger_bp
    from portal.intranet.platform_files import bp as platform_files_bp
    from portal.platform import platform_cli

    app.register_blueprint(counter_bp)
    app.register_blueprint(ledger_bp)
    app.register_blueprint(platform_files_bp)
    app.cli.add_command(platform_cli)

    from portal.intranet.board import bp as board_bp

    app.register_blueprint(board_bp)
    if app.config["DEV_SMS_PAGE"]:
        from portal.auth.dev import bp as dev_bp

        app.register_blueprint(dev_bp)

    from portal import cli

    cli.init_app(app)
    _errors(app)

    from portal.services import payouts

    payouts.init_app(app)  # `flask payouts reconcile`, and reconcile pending payouts on start

    from portal.intranet.officials import bp as officials_bp
    from portal.intranet.processing import bp as processing_bp
    from portal.services import reconciliation

    app.register_blueprint(processing_bp)  # issue 7: processing, 待复核, 对账
    app.register_blueprint(officials_bp)  # issue 7: settlement certificates
    reconciliation.init_app(app)  # `flask payouts reconcile-daily --date YYYY-MM-DD`

    # issue 8: the platform exchange over HTTP. The inbox is machine to machine: peers
    # authenticate by their Ed25519 signature, so it alone is exempt from CSRF.
    from portal.intranet.ecode import bp as ecode_counter_bp
    from portal.intranet.outbox import bp as outbox_bp
    from portal.platform.inbox import bp as platform_inbox_bp
    from portal.public.ecode import bp as ecode_bp

    csrf.exempt(platform_inbox_bp)
    app.register_blueprint(platform_inbox_bp)
    app.register_blueprint(outbox_bp)
    app.register_blueprint(ecode_bp)
    app.register_blueprint(ecode_counter_bp)

    # issue 11: notifications (站内消息), service rating (好差评), background jobs
    from portal import jobs_worker
    from portal.intranet.inbox import bp as staff_inbox_bp
    from portal.intranet.jobs import bp as jobs_bp
    from portal.intranet.ratings import bp as staff_ratings_bp
    from portal.public import inbox as public_inbox
    from portal.public import ratings as public_ratings

    public_inbox.init_app(app)  # /me/inbox/, /employer/inbox/ and the header's bell
    app.register_blueprint(staff_inbox_bp)
    app.register_blueprint(public_ratings.hall_bp)
    app.register_blueprint(public_ratings.track_bp)
    app.register_blueprint(staff_ratings_bp)
    app.register_blueprint(jobs_bp)
    jobs_worker.init_app(app)  # `flask jobs worker`, `flask jobs run`, `flask notices deadlines`

    @app.get("/healthz")
    def healthz():
        try:
            db.execute_sql("SELECT 1")
        except Exception:  # any database failure means unhealthy
            return jsonify(status="database unreachable"), 503
        return jsonify(status="ok")

    if app.config["BENCH_ROUTES"]:  # issue 10: the benchmark's yardstick (bench/run.py)

        @app.get("/healthz/bare")
        def healthz_bare():
            """Does nothing: what this stack costs per request before any page work."""
            return "ok"

    return app


def _template_gettext_once_per_request(app: Flask) -> None:
    """Templates call ``_()`` hundreds of times on a page (table labels on every row);
    flask_babel finds the request's locale, domain and catalogue anew on each call. Find them
    once per request instead (issue 10: about a third of a simple page's time)."""
    from flask.globals import _cv_app
    from flask_babel import get_translations

    def translations():
        # the request's ``g``, read from its context variable rather than through the ``g``
        # proxy (three Python-level calls, and this runs for every ``_()`` of a page)
        namespace = _cv_app.get().g
        found = getattr(namespace, "_template_translations", None)
        if found is None:
            found = namespace._template_translations = get_translations()
        return found

    app.jinja_env.install_gettext_callables(
        gettext=lambda s: translations().ugettext(s),
        ngettext=lambda s, p, n: translations().ungettext(s, p, n),
        newstyle=True,
        pgettext=lambda c, s: translations().upgettext(c, s),
        npgettext=lambda c, s, p, n: translations().unpgettext(c, s, p, n),
    )

    # ``_()`` itself: Jinja's alias resolves ``gettext`` in the context and calls through two
    # context layers each time. This does what its new-style gettext does (the translation,
    # Markup under autoescape, always formatted with ``%``) in one call, and keeps each
    # catalogue's answers for strings without variables: a loan page calls it ~300 times.
    import weakref

    from jinja2 import pass_eval_context
    from markupsafe import Markup

    formatted: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    @pass_eval_context
    def template_gettext(eval_ctx, string: str, **variables):
        if not variables:
            # the request's catalogue's kept answers, found once a request and kept on g
            namespace = _cv_app.get().g
            done = getattr(namespace, "_template_texts", None)
            if done is None:
                done = namespace._template_texts = formatted.setdefault(translations(), {})
            key = (eval_ctx.autoescape, string)
            found = done.get(key)
            if found is None:
                rv = translations().ugettext(string)
                # as Jinja's new-style gettext: catalogue texts are the templates' own
                found = (Markup(rv) if eval_ctx.autoescape else rv) % {}  # noqa: S704  # nosec B704
                if len(done) < 20_000:  # template texts; never grows with data passed to _()
                    done[key] = found
            return found
        rv = translations().ugettext(string)
        if eval_ctx.autoescape:  # variables are escaped by Markup's %
            rv = Markup(rv)  # noqa: S704  # nosec B704
        return rv % variables

    template_gettext.markup_under_autoescape = True  # PortalCodeGenerator writes it unescaped
    app.jinja_env.globals["_"] = template_gettext


def _database_per_request(app: Flask) -> None:
    @app.before_request
    def open_connection():
        db.connect(reuse_if_open=True)

    @app.teardown_request
    def close_connection(exc):
        # Tests run each case inside a transaction that they roll back; leave it open.
        if not db.is_closed() and not db.in_transaction():
            db.close()


def _errors(app: Flask) -> None:
    messages = {
        400: "请求无效",
        401: "请先登录",
        403: "您没有权限访问此页面",
        404: "页面不存在或您无权查看",
        405: "不支持的请求方式",
        413: "上传的文件过大",
        429: "请求过于频繁，请稍后再试",
        500: "系统繁忙，请稍后再试",
    }

    def render_error(status: int, message: str | None = None):
        text = message or messages.get(status, "出错了")
        if request.headers.get("HX-Request"):
            return render_template("_error_fragment.html", status=status, message=text), status
        return render_template("error.html", status=status, message=text), status

    for status in messages:
        app.register_error_handler(status, lambda e, s=status: render_error(s))

    @app.errorhandler(CSRFError)
    def csrf_error(e):
        return render_error(400, "页面已过期或请求来源无效，请刷新后重试")


def warm_up(app: Flask) -> None:
    """Load now what requests would otherwise load one worker at a time: every template
    compiled, every catalogue read, and, unless a PDF renderer process writes the documents
    (portal.documents), one throwaway PDF written (the font, the seal, the PDF modules).
    gunicorn's master calls this before it forks (gunicorn.conf.py), so the workers share all
    of it instead of each building its own copy on first use (issue 10: memory)."""
    from flask_babel import force_locale, get_translations

    from portal import documents, i18n

    env = app.jinja_env
    names = env.list_templates(extensions=("html", "txt", "xml"))
    if env.cache is not None and env.cache.capacity < len(names) + 50:
        env.cache = type(env.cache)(len(names) + 200)  # keep them all
    for name in names:
        env.get_template(name)
    with app.test_request_context("/"):
        for locale in i18n.LANGUAGES:
            with force_locale(locale):
                get_translations()
    if documents.renderer_address() is None:  # else the renderer process writes the PDFs
        from portal import pdf

        pdf.warm_up()
