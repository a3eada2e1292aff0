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
from playwright.sync_api import Page

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
MAX_PAGES = int(os.environ.get("A11Y_MAX_PAGES", "18"))  # per role, crawled and known together
# links not to follow: leaving, files, the development outbox, state changes by GET (none)
SKIP = re.compile(r"\.(pdf|xlsx|zip|png|jpe?g|svg)$|^/(logout|dev/|lang|healthz|platform/inbox)")

HOMES = {
    "anonymous": "/",
    "depositor": "/me/",
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
    "depositor": ["/me/ecode/", "/me/changes", "/me/retirement", "/me/loans", "/me/cases"],
    "operator": ["/employer/roster", "/employer/operators", "/employer/certificates"],
    "clerk": ["/staff/counter/", "/staff/ledger/", "/staff/ecode/", "/staff/board/outbound"],
    "liaison": ["/staff/board/outbound", "/staff/board/inbound", "/staff/outbox/"],
    "handler": ["/staff/board/inbound", "/staff/processing/approvals"],
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


def _shape(path: str) -> str:
    """One page per URL shape: /me/loans/3 and /me/loans/7 are the same template."""
    return re.sub(r"/[0-9]+(?=/|$|\.)", "/N", re.sub(r"[A-Z]{2}\d{6,}", "NO", path))


def _log_in(portal, page: Page, who: str, new_context) -> dict | None:
    if who == "anonymous":
        return None
    if who == "depositor":
        portal.login_depositor(page, portal.demo.depositors[3])
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


@pytest.mark.parametrize("who", list(HOMES))
def test_pages_pass_axe(new_context, portal, who):
    axe = Axe()
    origin = portal.server.url
    desktop = new_context(**VIEWPORTS["desktop"])
    page = desktop.new_page()
    state = _log_in(portal, page, who, new_context)
    phone_page = new_context(**VIEWPORTS["phone"], storage_state=state).new_page()

    queue = [HOMES[who], *KNOWN[who]]
    seen_shapes: set[str] = set()
    visited: list[str] = []
    problems: list[str] = []
    by_rule: Counter[str] = Counter()
    while queue and len(visited) < MAX_PAGES:
        path = queue.pop(0)
        if _shape(path) in seen_shapes:
            continue
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
                queue += [p for p in _links(tab, origin) if _shape(p) not in seen_shapes]
                visited.append(path)
            results = axe.run(tab)
            for violation in results.response["violations"]:
                if violation["impact"] in BLOCKING:
                    by_rule[violation["id"]] += 1
                    problems.append(_describe(path, size, violation))
    report = os.environ.get("A11Y_REPORT")
    if report:
        data = json.loads(Path(report).read_text()) if os.path.exists(report) else {}
        data[who] = {"pages": visited, "violations": dict(by_rule)}
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
