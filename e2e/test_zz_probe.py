import pytest
pytestmark = pytest.mark.e2e
def test_probe(new_context, portal):
    ctx = new_context(viewport={"width": 375, "height": 812}, is_mobile=True, has_touch=True, device_scale_factor=2)
    page = ctx.new_page()
    portal.login_staff(page, "clerk")
    print(page.evaluate("""() => ({sw: document.documentElement.scrollWidth, iw: window.innerWidth,
      cw: document.documentElement.clientWidth, vv: visualViewport.width, scale: visualViewport.scale, bsw: document.body.scrollWidth})"""))
    ctx2 = new_context(viewport={"width": 375, "height": 812})
    p2 = ctx2.new_page(); p2.context.add_cookies(ctx.cookies()); p2.goto("/staff/")
    print(p2.evaluate("""() => ({sw: document.documentElement.scrollWidth, iw: window.innerWidth,
      cw: document.documentElement.clientWidth, vv: visualViewport.width, scale: visualViewport.scale})"""))
