"""Counter, ledger and platform-file journeys in Chromium (issue 6), on desktop and phone:
a clerk guides one applicant online and accepts another's case, prints the receipt (a real
download); a liaison imports a signed package and finds the case on the inbound board.
Screenshots go to /tmp/counter/e2e/."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from e2e.conftest import ROOT, _flask

pytestmark = pytest.mark.e2e

SHOTS = Path("/tmp/counter/e2e")
VIEWPORTS = {
    "desktop": {"viewport": {"width": 1280, "height": 900}},
    "phone": {"viewport": {"width": 375, "height": 812}, "is_mobile": True, "has_touch": True},
}
NO_OVERFLOW = "document.documentElement.scrollWidth <= document.documentElement.clientWidth + 1"
APPLICANT_IDS = {"desktop": "110105198503121234", "phone": "640104199001012240"}


def _shot(page: Page, size: str, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SHOTS / f"{name}-{size}.png", full_page=True)
    if size == "phone":
        assert page.evaluate(NO_OVERFLOW), f"{name}: horizontal overflow on a phone"


def _staff_page(portal, new_context, username: str, size: str, **extra) -> Page:
    state = portal.staff_state(new_context, username)
    context = new_context(storage_state=state, **VIEWPORTS[size], **extra)
    return context.new_page()


def _pdf_text(path: str) -> str:
    return subprocess.run(
        ["pdftotext", "-layout", path, "-"], capture_output=True, check=True, text=True
    ).stdout


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_clerk_guides_an_online_item_to_the_peers_channel(portal, new_context, size):
    page = _staff_page(portal, new_context, "clerk", size)
    page.goto("/staff/counter/")
    page.get_by_label("办理事项").select_option("query")
    page.get_by_label("申请人缴存地公积金中心").select_option("110000")
    page.get_by_role("button", name="下一步").click()
    expect(page.get_by_role("heading", name="该中心已开通全程网办")).to_be_visible()
    expect(page.get_by_role("link", name="https://gjj.example.invalid/110000")).to_be_visible()
    expect(page.get_by_role("link", name="12329").first).to_be_visible()
    _shot(page, size, "counter-guide")
    page.get_by_role("button", name="已引导申请人线上办理").click()
    expect(page.locator(".flashes")).to_contain_text("已记录")
    expect(page).to_have_url(re.compile(r"/staff/counter/$"))


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_clerk_accepts_a_case_and_downloads_the_receipt(portal, new_context, size):
    page = _staff_page(portal, new_context, "clerk", size, accept_downloads=True)
    page.goto("/staff/")
    page.get_by_role("navigation", name="内网导航").get_by_role("link", name="窗口受理").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("窗口受理")
    _shot(page, size, "counter-start")
    page.get_by_label("办理事项").select_option("purchase_withdrawal")
    page.get_by_label("申请人缴存地公积金中心").select_option("110000")
    page.get_by_role("button", name="下一步").click()
    expect(page.get_by_role("heading", name=re.compile("业务办理申请表"))).to_be_visible()

    page.get_by_label("申请人姓名").fill("张三丰")
    page.get_by_label("身份证号码").fill("110105198503121230")  # wrong check character
    page.get_by_label("联系电话").fill("13912345678")
    page.get_by_label("购房合同或不动产权证书编号").fill("HT2026-0001")
    page.get_by_label("购房日期").fill("2026-10-08")
    page.get_by_label("房屋总价（元）").fill("680000")
    page.get_by_label("房屋坐落").fill("阿拉善左旗巴彦浩特镇王府街 1 号")
    page.get_by_label("收款银行", exact=True).fill("中国工商银行")
    page.get_by_label("收款银行卡号").fill("6222020000000000000")
    for material in (
        "居民身份证原件及复印件",
        "《“跨省通办”业务办理申请表》",
        "购房合同或不动产权证书",
    ):
        page.get_by_role("checkbox", name=material).check()
    page.get_by_role("button", name="受理并生成文书").click()
    expect(page.locator("#resident_id-error")).to_have_text("身份证号码格式不正确")
    _shot(page, size, "counter-form-error")

    page.get_by_label("身份证号码").fill(APPLICANT_IDS[size])
    page.get_by_role("button", name="受理并生成文书").click()
    expect(page.locator(".flashes")).to_contain_text("已受理")
    expect(page.locator(".case-state")).to_have_text("待补正")
    receipt_no = page.locator(".facts div", has_text="回执编号").locator("dd").inner_text()
    assert re.fullmatch(r"HZ\d{16}", receipt_no)
    expect(page.get_by_text(APPLICANT_IDS[size])).to_have_count(0)  # masked on screen
    _shot(page, size, "counter-case")

    with page.expect_download() as info:
        page.get_by_role("link", name="《“跨省通办”业务受理回执》").click()
    download = info.value
    assert download.suggested_filename.endswith(".pdf")
    text = _pdf_text(download.path())
    assert receipt_no in text and "业务受理回执" in text
    with page.expect_download() as info:
        page.get_by_role("link", name="《一次性告知书》").click()
    text = _pdf_text(info.value.path())
    assert "购房发票或首付款证明" in text and "本人银行借记卡" in text

    page.get_by_label("材料名称").select_option("purchase_contract")
    scan = SHOTS / "contract.pdf"
    SHOTS.mkdir(parents=True, exist_ok=True)
    scan.write_bytes(b"%PDF-1.4\n%%EOF\n")
    page.get_by_label("扫描件或照片").set_input_files(str(scan))
    page.get_by_role("button", name="上传").click()
    expect(page.locator(".flashes")).to_contain_text("已上传")
    expect(page.locator("#materials table")).to_contain_text("contract.pdf")


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_ledger_filters_in_place_and_exports(portal, new_context, size):
    page = _staff_page(portal, new_context, "auditor", size, accept_downloads=True)
    page.goto("/staff/ledger/")
    expect(page.get_by_role("heading", level=1)).to_have_text("业务办理台账")
    total = page.locator("#results-h").inner_text()
    page.get_by_label("方向").select_option("inbound")
    expect(page.locator("#results-h")).not_to_have_text(total)
    expect(page).to_have_url(re.compile(r"direction=inbound"))
    expect(page.locator(".ledger-table tbody td:nth-of-type(2)").first).to_have_text("本地")
    _shot(page, size, "ledger")
    with page.expect_download() as info:
        page.get_by_role("link", name="导出 Excel").click()
    assert info.value.suggested_filename.endswith(".xlsx")


def test_imported_package_appears_on_the_inbound_board(portal, portal_server, new_context):
    package = SHOTS / "demo-package.zip"
    SHOTS.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        _flask("platform", "demo-package", "--from", "110000", "--out", str(package)),
        cwd=ROOT,
        env=portal_server.env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    page = _staff_page(portal, new_context, "liaison", "desktop", accept_downloads=True)
    page.goto("/staff/")
    page.get_by_role("navigation", name="内网导航").get_by_role("link", name="平台文件").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("平台文件")
    page.get_by_label("业务包文件").set_input_files(str(package))
    page.get_by_role("button", name="导入").click()
    flash = page.locator(".flashes")
    expect(flash).to_contain_text("已进入平台接收")
    case_no = re.search(r"KS\d{12}", flash.inner_text()).group(0)
    _shot(page, "desktop", "platform")

    page.get_by_label("业务包文件").set_input_files(str(package))
    page.get_by_role("button", name="导入").click()
    expect(page.locator(".flashes")).to_contain_text("此前已导入")

    page.goto("/staff/board/inbound")
    card = page.locator("#col-received .kcard", has_text=case_no)
    expect(card).to_be_visible()
    expect(card).to_contain_text("购房提取")
