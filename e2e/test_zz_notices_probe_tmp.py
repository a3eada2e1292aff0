import re
from playwright.sync_api import expect
from e2e.test_notices_journeys import _finished_case_for_a_depositor, VIEWPORTS

def test_probe(portal, new_context):
    person, case_id, receipt_no = _finished_case_for_a_depositor(portal.server)
    context = new_context(**VIEWPORTS["desktop"])
    page = context.new_page()
    portal.login_depositor(page, person)
    page.goto(f"/me/ratings/case/{case_id}")
    page.evaluate("""() => { window.__v = []; document.addEventListener('securitypolicyviolation', e => window.__v.push([e.sourceFile, e.lineNumber, e.columnNumber, e.sample, e.target && e.target.outerHTML ? e.target.outerHTML.slice(0,200) : String(e.target)])); }""")
    page.get_by_label("不满意", exact=True).check()
    page.get_by_role("button", name="提交评价").click()
    expect(page.locator("#comment-error")).to_be_visible()
    print(page.evaluate("window.__v"))
    print(page.evaluate("Array.from(document.querySelectorAll('[style]')).map(e => e.outerHTML.slice(0,150))"))
