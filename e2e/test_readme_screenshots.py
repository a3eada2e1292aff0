"""The README's screenshots (docs/screenshots/*.png), made by the browser against the demo.

Without ``UPDATE_SCREENSHOTS=1`` the test only checks that every picture exists, is a small
PNG and is shown in README.md. With it, the pictures are taken again: the public home, the
depositor's account (desktop and phone), the employer overview, the intranet workbench, the
case board and the first page of a certificate PDF (``pdftoppm``), each reduced to a palette
PNG so the repository stays small.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "docs" / "screenshots"
README = ROOT / "README.md"
UPDATE = os.environ.get("UPDATE_SCREENSHOTS") == "1"
MAX_BYTES = 400_000
DESKTOP = {"viewport": {"width": 1280, "height": 800}}
PHONE = {
    "viewport": {"width": 375, "height": 740},
    "is_mobile": True,
    "has_touch": True,
    "device_scale_factor": 1,
}
PICTURES = {  # file -> what it shows
    "public-home.png": "公众首页（未登录）",
    "depositor-account.png": "缴存人“我的账户”",
    "depositor-account-phone.png": "缴存人“我的账户”（375 px 手机）",
    "employer-overview.png": "单位经办人“单位概况”",
    "intranet-home.png": "内网工作台（窗口经办）",
    "board.png": "外地业务看板（联络人）",
    "certificate.png": "缴存使用证明 PDF 第 1 页",
}


def _save(png: bytes, name: str) -> None:
    """A palette PNG (256 colours): a third of the size, no visible loss for UI pictures."""
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    image = image.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    SHOTS.mkdir(parents=True, exist_ok=True)
    image.save(SHOTS / name, optimize=True)


def _shoot(page: Page, path: str, name: str, heading: str | None = None) -> None:
    page.goto(path)
    if heading:
        expect(page.get_by_role("heading", level=1)).to_contain_text(heading)
    page.evaluate("document.fonts.ready")
    _save(page.screenshot(full_page=False), name)


@pytest.mark.skipif(not UPDATE, reason="set UPDATE_SCREENSHOTS=1 to take the README pictures")
def test_update_screenshots(new_context, portal):
    # the public side, anonymous
    anonymous = new_context(**DESKTOP).new_page()
    _shoot(anonymous, "/", "public-home.png", "跨省通办")

    # a depositor: account, on a phone too, then a certificate's PDF
    context = new_context(**DESKTOP)
    page = context.new_page()
    depositor = portal.demo.depositors[1]
    portal.login_depositor(page, depositor)
    _shoot(page, "/me/", "depositor-account.png", "您好")
    phone = new_context(**PHONE, storage_state=context.storage_state()).new_page()
    _shoot(phone, "/me/", "depositor-account-phone.png", "您好")

    page.goto("/me/certificates")
    page.get_by_label("证明接收单位（贷款受理中心）").fill("北京住房公积金管理中心")
    page.get_by_role("button", name="出具证明").click()
    download = page.locator("a[href$='.pdf']").first
    expect(download).to_be_visible()
    pdf = page.request.get(download.get_attribute("href"))
    assert pdf.ok and pdf.body()[:4] == b"%PDF"
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "certificate.pdf"
        source.write_bytes(pdf.body())
        subprocess.run(
            [shutil.which("pdftoppm") or "pdftoppm", "-png", "-r", "80", "-f", "1", "-l", "1"]
            + ["-singlefile", str(source), str(Path(tmp) / "page")],
            check=True,
            timeout=60,
        )
        _save((Path(tmp) / "page.png").read_bytes(), "certificate.png")

    # an employer operator
    employer = new_context(**DESKTOP).new_page()
    portal.login_operator(employer, portal.demo.operators[1])
    _shoot(employer, "/employer/", "employer-overview.png")

    # staff: the clerk's workbench and the liaison's board
    for username, path, name, heading in (
        ("clerk", "/staff/", "intranet-home.png", "工作台"),
        ("liaison", "/staff/board/outbound", "board.png", None),
    ):
        staff = new_context(**DESKTOP)
        staff.add_cookies(portal.staff_state(new_context, username)["cookies"])
        _shoot(staff.new_page(), path, name, heading)

    for name in PICTURES:
        data = (SHOTS / name).read_bytes()
        assert len(data) < MAX_BYTES, f"{name} is {len(data)} bytes"


def test_screenshots_exist_and_are_in_the_readme():
    readme = README.read_text()
    for name in PICTURES:
        picture = SHOTS / name
        assert picture.exists(), f"{picture} missing: run UPDATE_SCREENSHOTS=1 pytest {__file__}"
        data = picture.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) < MAX_BYTES, name
        assert f"docs/screenshots/{name}" in readme, f"README.md does not show {name}"
