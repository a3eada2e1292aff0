"""English: the catalog covers every message, and pages rendered in English show no Chinese
except proper nouns (the center, people, employers, departments, addresses: data)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from bs4 import BeautifulSoup

from portal import i18n
from tests.conftest import login_depositor, login_operator, login_staff

ROOT = Path(__file__).resolve().parent.parent
PO = ROOT / "portal" / "translations" / "en" / "LC_MESSAGES" / "messages.po"
MO = PO.with_suffix(".mo")
HAN = re.compile(r"[\u3400-\u9fff]")
PLACEHOLDER = re.compile(r"\{[^{}]+\}|%\([A-Za-z_]\w*\)[sd]|%[sd]|%%")
NOT_TRANSLATED = {"中文"}  # the language switch names Chinese in Chinese
ALWAYS_ALLOWED = ("公",)  # the brand mark (aria-hidden)


def _catalog():
    with PO.open("rb") as f:
        return read_po(f)


def _extracted() -> set[str]:
    with (ROOT / "babel.cfg").open() as f:
        method_map, options_map = parse_mapping_cfg(f, filename="babel.cfg")
    return {
        message if isinstance(message, str) else message[0]
        for _filename, _lineno, message, _comments, _context in extract_from_dir(
            str(ROOT), method_map, options_map
        )
    }


@pytest.fixture(scope="module", autouse=True)
def _compiled_catalog():
    """The app reads messages.mo: compile it when `make install` has not (or the .po moved on)."""
    if not MO.exists() or MO.stat().st_mtime < PO.stat().st_mtime:
        with MO.open("wb") as f:
            write_mo(f, _catalog())


def test_every_extracted_message_is_in_the_catalog():
    known = {m.id if isinstance(m.id, str) else m.id[0] for m in _catalog() if m.id}
    missing = sorted(_extracted() - known)
    assert not missing, (
        f"{len(missing)} messages are not in {PO.relative_to(ROOT)}: run "
        "scripts/update_translations.sh and translate them:\n" + "\n".join(missing[:40])
    )


def test_every_message_has_an_english_translation():
    untranslated = [
        m.id
        for m in _catalog()
        if m.id and (not m.string or m.fuzzy or (isinstance(m.string, tuple) and not all(m.string)))
    ]
    assert not untranslated, (
        f"{len(untranslated)} messages lack an English msgstr in {PO.relative_to(ROOT)}:\n"
        + "\n".join(map(str, untranslated[:40]))
    )


def test_translations_keep_placeholders_and_leave_no_chinese():
    problems = []
    for m in _catalog():
        if not m.id or not isinstance(m.id, str) or not m.string:
            continue
        if sorted(PLACEHOLDER.findall(m.id)) != sorted(PLACEHOLDER.findall(m.string)):
            problems.append(f"placeholders differ: {m.id!r} -> {m.string!r}")
        if HAN.search(PLACEHOLDER.sub("", m.string)) and m.id not in NOT_TRANSLATED:
            problems.append(f"Chinese left in the translation of {m.id!r}: {m.string!r}")
    assert not problems, "\n".join(problems)


# --- the language switch ------------------------------------------------------------------


def test_chinese_by_default_and_english_from_the_browser(client):
    page = client.get("/")
    assert 'lang="zh-CN"' in page.get_data(as_text=True)
    english = client.get("/", headers={"Accept-Language": "en-US,en;q=0.9"})
    assert 'lang="en"' in english.get_data(as_text=True)
    assert "Skip to main content" in english.get_data(as_text=True)


def test_language_switch_posts_and_remembers_the_choice(client):
    r = client.post("/lang", data={"lang": "en", "next": "/track?x=1"})
    assert r.status_code == 303 and r.headers["Location"] == "/track?x=1"
    assert "hpf_lang=en" in r.headers["Set-Cookie"]
    soup = BeautifulSoup(client.get("/").get_data(as_text=True), "html.parser")
    assert soup.html["lang"] == "en"
    switch = soup.select_one("form.lang-switch")
    assert switch["method"] == "post" and switch.select_one("[name=csrf_token]")
    assert switch.select_one("button[name=lang]")["value"] == "zh_CN"
    client.post("/lang", data={"lang": "zh_CN", "next": "/"})
    assert client.get("/").get_data(as_text=True).count('lang="zh-CN"') >= 1


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "javascript:x"])
def test_language_switch_stays_on_this_site(client, target):
    r = client.post("/lang", data={"lang": "en", "next": target})
    assert r.status_code == 303 and r.headers["Location"] == "/"


def test_language_switch_refuses_unknown_languages_and_get(client):
    assert client.post("/lang", data={"lang": "fr"}).status_code == 400
    assert client.get("/lang").status_code == 405


def test_tr_translates_patterns_and_keeps_unknown_text(app):
    with app.test_request_context(headers={"Accept-Language": "en"}):
        assert i18n.tr("正常") == "Normal"
        assert i18n.tr("王芳") == "王芳"  # a name: data, unchanged
        assert i18n.tr("请选择 2026-11-25 至 2026-12-31 之间的日期") == (
            "Choose a date between 2026-11-25 and 2026-12-31"
        )
    with app.test_request_context():
        assert i18n.tr("正常") == "正常"


def test_translate_html_leaves_markup_and_attribute_values(app):
    html = (
        '<p class="status-冻结" data-state="办理中"><span>冻结</span></p>'
        '<input value="办理中" aria-label="办理中"><textarea>办理中</textarea>'
        "<script>var a = '冻结';</script>"
    )
    with app.test_request_context(headers={"Accept-Language": "en"}):
        out = i18n.translate_html(html)
    assert 'class="status-冻结" data-state="办理中"' in out
    assert "<span>Frozen</span>" in out
    assert 'value="办理中" aria-label="In progress"' in out
    assert "<textarea>办理中</textarea>" in out and "var a = '冻结';" in out


# --- pages in English -------------------------------------------------------------------------


def _proper_nouns(app) -> list[str]:
    """Names and addresses: data that stays as it was written."""
    from portal.models import (
        CaseComment,
        CaseEvent,
        Center,
        Department,
        Depositor,
        Employer,
        EmployerOperator,
        Loan,
        ProxyCase,
        StaffUser,
    )

    values = {app.config["CENTER_NAME"], *ALWAYS_ALLOWED}
    for model, fields in (
        (Center, ("name", "region", "address")),
        (Department, ("name", "address")),
        (Employer, ("name", "address", "contact_name")),
        (EmployerOperator, ("name",)),
        (Depositor, ("name", "address", "bank_name")),
        (StaffUser, ("name",)),
        (ProxyCase, ("applicant_name",)),
        (Loan, ("property_address", "property_cert_no", "lending_bank")),
    ):
        for row in model.select(*(getattr(model, f) for f in fields)).tuples():
            values.update(v for v in row if v and HAN.search(v))
    # what people typed or the demo made up: applications, reasons, comments, notes
    for application, result, reason in ProxyCase.select(
        ProxyCase.application, ProxyCase.result, ProxyCase.rejection_reason
    ).tuples():
        values.update(_strings(application) + _strings(result))
        values.add(reason)
    values.update(body for (body,) in CaseComment.select(CaseComment.body).tuples())
    for (data,) in CaseEvent.select(CaseEvent.data).tuples():
        values.update(_strings(data))
    values = {v for v in values if v and HAN.search(v)}
    for name in [v for v in values if len(v) <= 4]:  # names as masked on certificates
        values.add(name[0] + "*" if len(name) <= 2 else name[0] + "*" * (len(name) - 2) + name[-1])
    return sorted(values, key=len, reverse=True)


def _strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list | tuple):
        return [s for v in value for s in _strings(v)]
    return []


def _visible_chinese(html: str, allowed: list[str]) -> list[str]:
    soup = BeautifulSoup(html, "html.parser")
    for tag in soup(["script", "style", "template"]):
        tag.decompose()
    for tag in soup.select("[lang^=zh]"):  # text marked as Chinese on purpose (the switch)
        tag.decompose()
    texts = [soup.get_text(" ")]
    for attribute in ("aria-label", "title", "placeholder", "alt", "data-label"):
        texts += [tag[attribute] for tag in soup.select(f"[{attribute}]")]
    text = " ".join(texts)
    for value in allowed:
        text = text.replace(value, " ")
    return sorted({m.group(0) for m in re.finditer(r"\S*[\u3400-\u9fff]+\S*", text)})


PAGES = {
    None: ["/", "/login", "/employer/login", "/staff/login", "/track", "/verify", "/guide/"],
    "depositor": [
        "/me/",
        "/me/deposits",
        "/me/loans",
        "/me/certificates",
        "/me/cases",
        "/me/changes",
        "/me/retirement",
        "/me/ecode/",
    ],
    "operator": ["/employer/", "/employer/roster", "/employer/operators", "/employer/changes"],
    "clerk": ["/staff/", "/staff/counter/", "/staff/ledger/", "/staff/ecode/"],
    "liaison": ["/staff/", "/staff/board/outbound", "/staff/board/inbound", "/staff/outbox/"],
    "handler": ["/staff/", "/staff/processing/approvals"],
    "official": ["/staff/", "/staff/officials/", "/staff/dashboard/"],
    "admin": ["/staff/", "/staff/admin/staff", "/staff/admin/settings", "/staff/admin/centers"],
    "auditor": ["/staff/", "/staff/audit/"],
}


PREFIXES = {None: "/guide/", "depositor": "/me/", "operator": "/employer/"}
MAX_PAGES = 30  # per role


@pytest.mark.parametrize("who", list(PAGES), ids=lambda w: w or "anonymous")
def test_pages_in_english_show_no_chinese(app, client, who, depositor, operator):
    if who == "depositor":
        login_depositor(client, depositor)
    elif who == "operator":
        login_operator(client, operator)
    elif who:
        login_staff(client, who)
    client.post("/lang", data={"lang": "en", "next": "/"})
    allowed = _proper_nouns(app)
    problems = {}
    queue, shapes, prefix = list(PAGES[who]), set(), PREFIXES.get(who, "/staff/")
    if who == "handler":  # the processing page of one inbound case per item
        from portal.models import Department, ProxyCase

        cases = {}
        for case_id, item in (
            ProxyCase.select(ProxyCase.id, ProxyCase.item)
            .join(Department)
            .where(ProxyCase.direction == "inbound", Department.code == "AZQ")
            .order_by(ProxyCase.id)
            .tuples()
        ):
            cases.setdefault(item, f"/staff/processing/case/{case_id}?item={item}")
        queue += cases.values()
    while queue and len(shapes) < MAX_PAGES:  # the listed pages, then the links they show
        path = queue.pop(0)
        shape = re.sub(r"/\d+(?=/|$)|[A-Z]{2}\d{6,}", "/N", path)
        shape = shape if "?item=" in shape else shape.split("?")[0]
        if shape in shapes:
            continue
        shapes.add(shape)
        response = client.get(path)
        if response.status_code != 200 or response.mimetype != "text/html":
            assert path not in PAGES[who] or response.status_code == 404, (path, response.status)
            continue
        html = response.get_data(as_text=True)
        assert 'lang="en"' in html
        found = _visible_chinese(html, allowed)
        if found:
            problems[path] = found
        for link in BeautifulSoup(html, "html.parser").select("a[href]"):
            href = link["href"]
            if href.startswith(prefix) and not re.search(r"\.(pdf|xlsx|zip)$", href):
                queue.append(href)
    assert not problems, "Chinese left on English pages:\n" + "\n".join(
        f"{path}: {' | '.join(found[:30])}" for path, found in problems.items()
    )


def test_template_underscore_translates_formats_and_escapes_like_jinja(app):
    """Templates' ``_()`` (portal/factory.py, one call and kept answers, issue 10) gives what
    Jinja's new-style gettext gives: the request's language, Markup, ``%`` formatting with
    the variables escaped, and ``%%`` as one percent sign — on the first call and the next."""
    page = app.jinja_env.from_string(
        '{{ _("退出") }}|{{ _("已将 %(n)s 条消息标为已读", n=n) }}|{{ _("100%%") }}'
    )
    for headers, quit_ in (
        ({"Accept-Language": "zh-CN"}, "退出"),
        ({"Accept-Language": "en"}, "Log out"),
    ):
        for _ in range(2):
            with app.test_request_context("/", headers=headers):
                out = page.render(n="<b>3</b>").split("|")
            assert out[0] == quit_
            assert "&lt;b&gt;3&lt;/b&gt;" in out[1] and "<b>" not in out[1]
            assert out[2] == "100%"


@pytest.mark.parametrize(
    ("headers", "session_lang", "expected"),
    [
        ({}, None, "zh_CN"),  # nothing said: Chinese
        ({"Accept-Language": "en-US,en;q=0.9"}, None, "en"),
        ({"Accept-Language": "en;q=0.2, zh-CN;q=0.9"}, None, "zh_CN"),  # the preferred one
        ({"Accept-Language": "fr, de"}, None, "zh_CN"),  # neither offered: the default
        ({"Accept-Language": "garbage;;q=x"}, None, "zh_CN"),
        ({"Accept-Language": "zh-TW, en;q=0.5"}, None, "zh_CN"),  # Chinese is Chinese
        ({"Accept-Language": "en;q=0, zh;q=0.1"}, None, "zh_CN"),  # q=0: not acceptable
        ({"Accept-Language": "en", "Cookie": "hpf_lang=zh_CN"}, None, "zh_CN"),  # the cookie
        ({"Accept-Language": "zh", "Cookie": "hpf_lang=en"}, None, "en"),
        ({"Accept-Language": "en", "Cookie": "hpf_lang=xx"}, None, "en"),  # not a language
        ({"Cookie": "hpf_lang=zh_CN"}, "en", "en"),  # the session's choice first
    ],
)
def test_the_language_is_the_visitors_choice_then_the_browsers(
    app, headers, session_lang, expected
):
    from flask import session

    from portal.i18n import select_locale

    for _ in range(2):  # the second time from the kept answers
        with app.test_request_context("/", headers=headers):
            if session_lang:
                session["lang"] = session_lang
            assert select_locale().language == expected[:2]
