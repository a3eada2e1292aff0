"""Accessibility: every page a role reaches passes axe-core with no serious or critical
violation, at 1280 px and on a 375 px phone.

For each role the test logs in like a user, crawls the links of its home page (same origin,
bounded, one page per URL shape) plus the pages it knows about, and runs axe-core
(``axe-playwright-python`` ships axe.min.js, nothing is downloaded) on each. The report lists
every violation with the page, the rule, its help text and the offending elements.
``A11Y_REPORT=path`` also writes the summary (pages and violations by rule) as JSON.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e

VIEWPORTS = {
    "desktop": {"viewport": {"width": 1280, "height": 900}},
    "phone": {
        "viewport": {"width": 375, "height": 812},
        "is_mobile": True,
        "has_touch": True,
        "device_scale_factor": 2,
    },
}
BLOCKING = {"serious", "critical"}
MAX_PAGES = int(os.environ.get("A11Y_MAX_PAGES", "30"))  # per role, crawled and known together
# links not to follow: leaving, files, the development outbox, state changes by GET (none)
SKIP = re.compile(r"\.(pdf|xlsx|zip|png|jpe?g|svg)$|^/(logout|dev/|lang|healthz|platform/inbox)")

HOMES = {
    "anonymous": "/",
    "depositor": "/me/",
    "borrower": "/me/loans",
    "operator": "/employer/",
    "clerk": "/staff/",
    "liaison": "/staff/",
    "handler": "/staff/",
    "official": "/staff/",
    "admin": "/staff/",
    "auditor": "/staff/",
}
KNOWN = {  # pages to check even if no link on the home page leads to them
    "anonymous": [
        "/guide/",
        "/guide/retirement_withdrawal",
        "/verify",
        "/track",
        "/employer/track",
        "/login",
        "/employer/login",
        "/employer/activate",
        "/activate",
        "/staff/login",
        "/no-such-page",
    ],
    "depositor": [
        "/me/ecode/",
        "/me/changes",
        "/me/retirement",
        "/me/loans",
        "/me/loans/quota",
        "/me/cases",
        "/me/deposits/statement",
    ],
    "borrower": ["/me/"],
    "operator": ["/employer/roster", "/employer/operators", "/employer/certificates"],
    "clerk": ["/staff/counter/", "/staff/ledger/", "/staff/ecode/", "/staff/board/outbound"],
    "liaison": ["/staff/board/outbound", "/staff/board/inbound", "/staff/outbox/"],
    "handler": [
        "/staff/board/inbound",
        "/staff/processing/approvals",
        "/staff/processing/reconciliation",
    ],
    "official": ["/staff/officials/", "/staff/officials/certificates", "/staff/dashboard/"],
    "admin": [
        "/staff/admin/staff",
        "/staff/admin/settings",
        "/staff/admin/calendar",
        "/staff/admin/centers",
        "/staff/board/limits",
        "/staff/dashboard/",
    ],
    "auditor": ["/staff/audit/", "/staff/ledger/"],
}


PREFIXES = {"anonymous": "/", "depositor": "/me/", "borrower": "/me/", "operator": "/employer/"}


def _shape(path: str) -> str:
    """One page per URL shape: /me/loans/3 and /me/loans/7?page=2 are the same template."""
    path = path.split("?")[0]
    return re.sub(r"/[0-9]+(?=/|$|\.)", "/N", re.sub(r"[A-Z]{2}\d{6,}", "NO", path))


def _borrower(server):
    """A depositor with a password and a housing loan, read from the server's database."""
    from e2e.conftest import Person
    from portal.db import make_database
    from portal.models import Account, Depositor, Loan

    database = make_database(server.database_url, root=str(Path(__file__).parent.parent))
    with database.bind_ctx([Account, Depositor, Loan]):
        database.connect()
        try:
            d = (
                Depositor.select()
                .join(Loan, on=(Loan.depositor == Depositor.id))
                .switch(Depositor)
                .join(Account, on=(Account.depositor == Depositor.id))
                .where(Depositor.password_hash.is_null(False), Account.status == "正常")
                .order_by(Depositor.id)
                .first()
            )
            return Person(d.resident_id, d.name, d.phone)
        finally:
            database.close()


def _inbound_cases(server) -> list[str]:
    """The processing pages of the handler's department's inbound cases, one per item."""
    from portal.db import make_database
    from portal.models import Department, ProxyCase

    database = make_database(server.database_url, root=str(Path(__file__).parent.parent))
    with database.bind_ctx([Department, ProxyCase]):
        database.connect()
        try:
            rows = (
                ProxyCase.select(ProxyCase.id, ProxyCase.item)
                .join(Department)
                .where(ProxyCase.direction == "inbound", Department.code == "AZQ")
                .order_by(ProxyCase.id)
                .tuples()
            )
            first = {}
            for case_id, item in rows:
                first.setdefault(item, case_id)
            return [f"/staff/processing/case/{i}" for i in first.values()]
        finally:
            database.close()


def _log_in(portal, page: Page, who: str, new_context) -> dict | None:
    if who == "anonymous":
        return None
    if who == "borrower":
        portal.login_depositor(page, _borrower(portal.server))
    elif who == "depositor":
        portal.login_depositor(page, portal.demo.depositors[1])  # has a case from a counter
    elif who == "operator":
        portal.login_operator(page, portal.demo.operators[0])
    else:
        state = portal.staff_state(new_context, who)
        page.context.add_cookies(state["cookies"])
    return page.context.storage_state()


def _links(page: Page, origin: str) -> list[str]:
    hrefs = page.eval_on_selector_all("a[href]", "els => els.map(e => e.getAttribute('href'))")
    found = []
    for href in hrefs:
        url = urlsplit(urljoin(page.url, href))
        if f"{url.scheme}://{url.netloc}" != origin:
            continue
        path = url.path + (f"?{url.query}" if url.query else "")
        if not SKIP.search(url.path):
            found.append(path)
    return found


def _describe(path: str, size: str, violation: dict) -> str:
    nodes = violation["nodes"]
    lines = [
        f"{path} [{size}] {violation['id']} ({violation['impact']}): {violation['help']} "
        f"— {len(nodes)} element(s); {violation['helpUrl']}"
    ]
    for node in nodes[:5]:
        target = ", ".join(str(t) for t in node["target"])
        summary = (node.get("failureSummary") or "").replace("\n", " ")
        lines.append(f"    {target}: {node['html'][:160]}\n      {summary[:300]}")
    if len(nodes) > 5:
        lines.append(f"    … and {len(nodes) - 5} more")
    return "\n".join(lines)


CASES = [pytest.param(who, "zh", id=who) for who in HOMES] + [
    pytest.param(who, "en", id=f"{who}-english") for who in ("anonymous", "borrower", "liaison")
]


@pytest.mark.parametrize(("who", "language"), CASES)
def test_pages_pass_axe(new_context, portal, who, language):
    axe = Axe()
    origin = portal.server.url
    desktop = new_context(**VIEWPORTS["desktop"])
    page = desktop.new_page()
    state = _log_in(portal, page, who, new_context)
    if language == "en":  # the footer's language switch (session and cookie)
        page.goto(HOMES[who])
        page.locator("form.lang-switch").get_by_role("button", name="English").click()
        expect(page.locator("html")).to_have_attribute("lang", "en")
        state = desktop.storage_state()
    phone_page = new_context(**VIEWPORTS["phone"], storage_state=state).new_page()

    queue = [HOMES[who], *KNOWN[who]]
    if who == "handler":
        queue += _inbound_cases(portal.server)
    seen_shapes: set[str] = set()
    visited: list[str] = []
    problems: list[str] = []
    by_rule: Counter[str] = Counter()
    while queue and len(visited) < MAX_PAGES:
        path = queue.pop(0)
        if _shape(path) in seen_shapes and not path.startswith("/staff/processing/case/"):
            continue  # (a processing page differs by item: each is checked)
        seen_shapes.add(_shape(path))
        for size, tab in (("desktop", page), ("phone", phone_page)):
            response = tab.goto(path)
            assert response is not None
            if response.status >= 500:
                problems.append(f"{path} [{size}] answered {response.status}")
                continue
            tab.wait_for_load_state("load")
            if size == "desktop":
                if response.status in (401, 403) or urlsplit(tab.url).path != urlsplit(path).path:
                    break  # not this role's page (or a redirect to login): not crawled further
                prefix = PREFIXES.get(who, "/staff/")  # the public pages: the anonymous run
                queue += [
                    p
                    for p in _links(tab, origin)
                    if p.startswith(prefix) and _shape(p) not in seen_shapes
                ]
                visited.append(path)
            results = axe.run(tab)
            for violation in results.response["violations"]:
                if violation["impact"] in BLOCKING:
                    by_rule[violation["id"]] += 1
                    problems.append(_describe(path, size, violation))
    if language == "en":  # the session may be shared with later tests: back to Chinese
        page.goto(HOMES[who])
        page.locator("form.lang-switch").locator('button[value="zh_CN"]').click()
        expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    report = os.environ.get("A11Y_REPORT")
    if report:
        data = json.loads(Path(report).read_text()) if os.path.exists(report) else {}
        data[f"{who}-{language}"] = {"pages": visited, "violations": dict(by_rule)}
        Path(report).write_text(json.dumps(data, ensure_ascii=False, indent=1))
    assert len(visited) >= 2, f"{who}: the crawl reached only {visited}"
    assert not problems, (
        f"{who}: {len(problems)} serious/critical axe violations on {len(visited)} pages "
        f"({', '.join(f'{k}×{v}' for k, v in by_rule.most_common())}):\n" + "\n".join(problems)
    )


def test_axe_finds_what_it_should(new_context, portal):
    """The check is real: a field without a label and low-contrast text are reported."""
    page = new_context(**VIEWPORTS["desktop"]).new_page()
    page.goto("/verify")
    page.evaluate(
        """() => {
        const main = document.querySelector('main');
        main.insertAdjacentHTML('beforeend', '<input type="text" name="probe">');
        const p = document.createElement('p');
        p.textContent = 'probe';
        p.classList.add('muted');
        main.append(p);
        p.style.setProperty('color', '#f4f4f4');
      }"""
    )
    found = {v["id"] for v in Axe().run(page).response["violations"] if v["impact"] in BLOCKING}
    assert {"label", "color-contrast"} <= found, found


def _error_targets(page: Page) -> list[str]:
    """Fields marked invalid whose aria-describedby does not lead to a visible message."""
    return page.evaluate(
        """() => [...document.querySelectorAll('[aria-invalid=true]')].filter(f => {
          const ids = (f.getAttribute('aria-describedby') || '').split(/\\s+/).filter(Boolean);
          return !ids.some(id => {
            const e = document.getElementById(id);
            return e && e.textContent.trim() && e.offsetParent !== null;
          });
        }).map(f => f.outerHTML.slice(0, 120))"""
    )


@pytest.mark.parametrize(
    ("path", "button"),
    [
        ("/login", "下一步：短信验证"),
        ("/employer/login", "下一步：短信验证"),
        ("/staff/login", "下一步：动态口令"),
        ("/track", "查询"),
        ("/employer/track", "查询"),
        ("/activate", None),
    ],
)
def test_form_errors_are_tied_to_their_fields(new_context, portal, path, button):
    """An empty submission: every invalid field names its error (aria-describedby), and the
    page with the errors passes axe too, on a phone as well."""
    for size in ("desktop", "phone"):
        page = new_context(**VIEWPORTS[size]).new_page()
        page.goto(path)
        form = page.locator("main form[method=post]").first
        submit = (
            form.get_by_role("button", name=button, exact=True)
            if button
            else form.locator("button[type=submit]").last
        )
        submit.click()
        invalid = page.locator("[aria-invalid=true]")
        expect(invalid.first).to_be_visible()
        assert _error_targets(page) == []
        for field in invalid.all():
            field_id = field.get_attribute("id")
            assert page.locator(f"label[for='{field_id}']").count() == 1, field_id
        blocking = [
            _describe(path, size, v)
            for v in Axe().run(page).response["violations"]
            if v["impact"] in BLOCKING
        ]
        assert not blocking, "\n".join(blocking)


def test_focus_is_visible_from_the_keyboard(new_context, portal):
    """Tabbing through a page: each focused control shows an outline (or a focus shadow)."""
    context = new_context(**VIEWPORTS["desktop"])
    context.add_cookies(portal.staff_state(new_context, "liaison")["cookies"])
    page = context.new_page()
    for path in ("/", "/login", "/guide/", "/staff/board/outbound"):
        page.goto(path)
        unseen = []
        for _ in range(14):
            page.keyboard.press("Tab")
            style = page.evaluate(
                """() => { const e = document.activeElement; if (!e || e === document.body)
                  return null; const s = getComputedStyle(e);
                  return {tag: e.tagName + (e.id ? '#' + e.id : ''), outline: s.outlineStyle,
                          width: s.outlineWidth, shadow: s.boxShadow}; }"""
            )
            if style and (style["outline"] == "none" or style["width"] == "0px"):
                if style["shadow"] in ("none", ""):
                    unseen.append(style["tag"])
        assert not unseen, f"{path}: focus not visible on {unseen}"
