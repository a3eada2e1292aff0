"""Languages: Simplified Chinese (the default and the source text) and English.

* ``select_locale``: the visitor's choice (session, then the ``hpf_lang`` cookie), else the
  browser's ``Accept-Language`` (zh or en), else ``zh_CN``.
* ``POST /lang``: the language switch in the page footer (CSRF like every POST).
* ``tr``: translation at the view boundary for text that is not written inside ``_()``:
  enumerations kept in Chinese in the database and the rules (account status, case states,
  item names ...) and the messages that services raise. The catalog holds every Chinese string
  literal of the user-facing Python modules (``extract_python``, used by ``babel.cfg``); an
  f-string or ``%`` string becomes a pattern (``办件处于“{state}”``) that ``tr`` matches against
  the finished text, translating the parts it captured too.
* Catalogs: ``portal/translations/en/LC_MESSAGES/messages.po``, compiled to ``.mo`` by
  ``make install`` / ``scripts/update_translations.sh``.
"""

from __future__ import annotations

import ast
import html
import re
from functools import lru_cache
from urllib.parse import urlsplit

from babel import Locale
from flask import (
    Blueprint,
    abort,
    g,
    has_request_context,
    redirect,
    request,
    session,
)
from flask_babel import get_locale, get_translations
from markupsafe import Markup
from werkzeug.datastructures import LanguageAccept
from werkzeug.http import parse_accept_header

DEFAULT = "zh_CN"
LANGUAGES = {"zh_CN": "中文", "en": "English"}  # each name in its own language
COOKIE = "hpf_lang"
COOKIE_MAX_AGE = 365 * 24 * 3600

HAN = re.compile(r"[\u3400-\u9fff]")
PLACEHOLDER = re.compile(r"\{[^{}]+\}|%\([A-Za-z_]\w*\)[sd]|%[sd]")

bp = Blueprint("i18n", __name__)


def select_locale() -> Locale:
    """The request's language (flask_babel asks once a request). Issue 10: a cookie looked up
    only when the request has one (werkzeug answers a missing key by building an exception),
    the ``Accept-Language`` header's answer kept per header value, and babel's ``Locale``
    objects made once (flask_babel would parse the code anew in every request)."""
    if not has_request_context():
        return _LOCALES[DEFAULT]
    choice = session.get("lang")
    if choice is None and COOKIE in request.cookies:
        choice = request.cookies[COOKIE]
    if choice in LANGUAGES:
        return _LOCALES[choice]
    return _LOCALES[_from_accept_language(request.headers.get("Accept-Language", ""))]


_LOCALES = {code: Locale.parse(code) for code in LANGUAGES}


@lru_cache(maxsize=256)
def _from_accept_language(header: str) -> str:
    """The language of the most preferred tag that is Chinese or English (``zh-CN`` counts as
    Chinese: werkzeug's ``best_match`` would take a bare ``en;q=0.2`` over it); else Chinese."""
    for tag, quality in parse_accept_header(header, LanguageAccept):  # most preferred first
        primary = tag.replace("_", "-").split("-", 1)[0].lower()
        if quality > 0 and primary in ("zh", "en"):
            return "en" if primary == "en" else DEFAULT
    return DEFAULT


def is_english() -> bool:
    if not has_request_context():
        return False
    if "i18n_en" not in g:
        g.i18n_en = get_locale() is not None and get_locale().language == "en"
    return g.i18n_en


def _safe_next(target: str | None) -> str:
    """Only a path on this site (no scheme, no host, not ``//``)."""
    if not target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


@bp.post("/lang")
def switch_language():
    lang = request.form.get("lang", "")
    if lang not in LANGUAGES:
        abort(400)
    session["lang"] = lang
    response = redirect(_safe_next(request.form.get("next")), 303)
    response.set_cookie(
        COOKIE,
        lang,
        max_age=COOKIE_MAX_AGE,
        httponly=True,
        samesite="Lax",
        secure=request.is_secure,
    )
    return response


# --- translation at the view boundary ---------------------------------------------------------


@lru_cache(maxsize=8)
def _patterns(translations) -> tuple[tuple[str, re.Pattern, list[str], str, bool], ...]:
    """(longest literal chunk, regex, placeholders, msgstr, short) for each msgid with
    placeholders, the most specific first. A short one (under 3 literal characters, like
    ``{n} 件``) only matches a text that is not several pieces joined by punctuation."""
    catalog = getattr(translations, "_catalog", None) or {}
    found = []
    for msgid, msgstr in catalog.items():
        if not isinstance(msgid, str) or not msgstr or not PLACEHOLDER.search(msgid):
            continue
        chunks = PLACEHOLDER.split(msgid)
        if not HAN.search("".join(chunks)):
            continue
        holders = PLACEHOLDER.findall(msgid)
        regex = "".join(
            re.escape(chunk) + ("(.+?)" if i < len(holders) else "")
            for i, chunk in enumerate(chunks)
        )
        first = max(chunks, key=len)
        short = len("".join("".join(chunks).split())) < 3
        found.append((first, re.compile(rf"\A{regex}\Z", re.S), holders, msgstr, short))
    found.sort(key=lambda p: -len("".join(PLACEHOLDER.split(p[1].pattern))))
    return tuple(found)


@lru_cache(maxsize=8192)
def _lookup(translations, text: str, depth: int = 0) -> str | None:
    """The translation of ``text``: exact, then by pattern (cached: names and states repeat)."""
    catalog = getattr(translations, "_catalog", None)
    if not catalog:
        return None
    exact = catalog.get(text)
    if exact:
        return exact
    stripped = text.strip()
    if stripped != text and catalog.get(stripped):
        return text.replace(stripped, catalog[stripped])
    joined = SEPARATORS.search(text) is not None
    for first, regex, holders, msgstr, short in _patterns(translations):
        if first not in text or (short and joined):  # "{n} 件" is no match for "1 件；2 件"
            continue
        match = regex.match(text)
        if match is None:
            continue
        result = msgstr
        for holder, value in zip(holders, match.groups(), strict=True):
            value = (_lookup(translations, value, depth + 1) if depth < 2 else None) or value
            if holder in ("%s", "%d"):
                result = result.replace(holder, value, 1)
            else:
                result = result.replace(holder, value)
        return result
    return None


def tr(value):
    """``value`` in the visitor's language when the catalog knows it, else unchanged."""
    if not isinstance(value, str) or isinstance(value, Markup):
        return value
    if not HAN.search(value) or not is_english():
        return value
    return _lookup(get_translations(), value) or value


# Full-width punctuation reads oddly in English text once no Chinese is left around it.
PUNCTUATION = str.maketrans(
    {"（": " (", "）": ") ", "：": ": ", "，": ", ", "；": "; ", "。": ". ", "、": ", ", "！": "! "}
)
TAG_OR_TEXT = re.compile(r"(<!--.*?-->|<[^>]*>)", re.S)
RAW_TEXT = re.compile(r"<(script|style|textarea|pre)\b", re.I)
UI_ATTRIBUTE = re.compile(r'(\s(?:aria-label|title|placeholder|alt|data-label)=")([^"]*)(")')
HAN_RUN = re.compile(r"[\u3400-\u9fff]+")
SEPARATORS = re.compile(r"([；，。：、（）·|]+)")
LEVELS = (re.compile(r"([；·|=]+)"), re.compile(r"([，。：、（）]+)"), re.compile(r"(\s+)"))


def _translate_piece(translations, piece: str, level: int = 0) -> str:
    """A piece of text: whole, else split at the separators of the next level (strong ones
    like "；" first, then "，", then spaces)."""
    found = _lookup(translations, piece)
    if found is not None or level == len(LEVELS):
        return found if found is not None else piece
    return "".join(
        _translate_piece(translations, part, level + 1) if HAN.search(part) else part
        for part in LEVELS[level].split(piece)
    )


def _translate_text(translations, text: str) -> str:
    if not HAN.search(text):
        return text
    plain = html.unescape(text)
    found = _lookup(translations, plain)
    if found is None:  # pieces put together in the template: phrase by phrase, then words
        found = _translate_piece(translations, plain)
        found = HAN_RUN.sub(lambda m: _lookup(translations, m.group(0)) or m.group(0), found)
    if not HAN.search(found):
        lead = plain[: len(plain) - len(plain.lstrip())]
        tail = plain[len(plain.rstrip()) :]
        found = lead + " ".join(found.translate(PUNCTUATION).split()) + tail
    return html.escape(found) if found != plain else text


def translate_html(document: str) -> str:
    """The text (and the UI attributes) of an HTML page in the visitor's language: for the
    Chinese that the templates print from data and services (state names, messages ...).
    Markup, attribute values and the content of script, style, textarea and pre stay as they
    are."""
    translations = get_translations()
    if not getattr(translations, "_catalog", None):
        return document
    parts = TAG_OR_TEXT.split(document)
    raw_until = None
    for i, part in enumerate(parts):
        if not part:
            continue
        if i % 2:  # a tag or a comment
            if raw_until:
                if part.lower().startswith(raw_until):
                    raw_until = None
                continue
            opening = RAW_TEXT.match(part)
            if opening:
                raw_until = "</" + opening.group(1).lower()
            if HAN.search(part) and not part.startswith("<!--"):
                parts[i] = UI_ATTRIBUTE.sub(
                    lambda m: m.group(1) + _translate_text(translations, m.group(2)) + m.group(3),
                    part,
                )
        elif not raw_until:
            parts[i] = _translate_text(translations, part)
    return "".join(parts)


def init_app(app) -> None:
    app.register_blueprint(bp)

    @app.after_request
    def translate_response(response):
        if (
            response.mimetype == "text/html"
            and not response.direct_passthrough
            and not response.is_streamed
            and is_english()
        ):
            response.set_data(translate_html(response.get_data(as_text=True)))
        return response

    app.jinja_env.filters["tr"] = tr
    # the label filters give Chinese enumerations: show them in the visitor's language
    for name in ("role_label", "target_label", "action_label", "item_name", "item_short", "ym"):
        original = app.jinja_env.filters.get(name)
        if original is not None:
            app.jinja_env.filters[name] = _translated(original)

    @app.context_processor
    def language_globals():
        from portal.rules import casestates

        return {
            "languages": LANGUAGES,
            "current_language": "en" if is_english() else DEFAULT,
            "html_lang": "en" if is_english() else "zh-CN",
            "state_label": _translated(casestates.label),
        }


def _translated(function):
    def wrapper(*args, **kwargs):
        return tr(function(*args, **kwargs))

    wrapper.__name__ = getattr(function, "__name__", "translated")
    return wrapper


# --- extraction: every Chinese literal of the user-facing Python modules ---------------------

GETTEXT_CALLS = {"_", "_l", "gettext", "lazy_gettext", "N_"}
# Calls whose Chinese text is not user interface: PDF documents (official Chinese documents),
# SMS bodies, the audit log, the server log, regular expressions and the CLI.
NOT_UI_CALLS = {
    "heading",
    "paragraph",
    "fields",
    "table",
    "checklist",
    "signatures",
    "qr",
    "seal",
    "Doc",
    "Document",
    "copy_page",
    "send",
    "record",
    "debug",
    "info",
    "warning",
    "error",
    "exception",
    "echo",
    "secho",
    "compile",
    "fullmatch",
    "match",
    "search",
    "sub",
}


def _call_name(node: ast.Call) -> str | None:
    if isinstance(node.func, ast.Name):
        return node.func.id
    if isinstance(node.func, ast.Attribute):
        return node.func.attr
    return None


def _fstring_msgid(node: ast.JoinedStr) -> str | None:
    parts = []
    for value in node.values:
        if isinstance(value, ast.Constant):
            parts.append(str(value.value))
        elif isinstance(value, ast.FormattedValue):
            name = ast.unparse(value.value)
            if "{" in name or "}" in name:
                return None
            parts.append("{" + name + "}")
    msgid = "".join(parts)
    literal = PLACEHOLDER.sub("", msgid)
    return msgid if HAN.search(literal) else None


def extract_python(fileobj, keywords, comment_tags, options):
    """A Babel extraction method (see ``babel.cfg``): ``_()``-style calls as usual, plus the
    Chinese string literals that reach the screen through ``tr``."""
    source = fileobj.read().decode(options.get("encoding", "utf-8"))
    tree = ast.parse(source)
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                skip.add(id(body[0].value))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = _call_name(node)
            if name in GETTEXT_CALLS and node.args and isinstance(node.args[0], ast.Constant):
                if isinstance(node.args[0].value, str):
                    found.append((node.lineno, node.args[0].value))
                for child in ast.walk(node):
                    skip.add(id(child))
            elif name in NOT_UI_CALLS:
                for argument in [*node.args, *(k.value for k in node.keywords)]:
                    for child in ast.walk(argument):
                        skip.add(id(child))
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.JoinedStr):
            for child in ast.walk(node):
                if child is not node:
                    skip.add(id(child))
            msgid = _fstring_msgid(node)
            if msgid:
                found.append((node.lineno, msgid))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if HAN.search(node.value):
                found.append((node.lineno, node.value))
    for lineno, msgid in sorted(found):
        yield lineno, None, msgid, []
