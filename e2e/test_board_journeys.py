"""Kanban board journeys in Chromium (issue 6): a liaison drags a case through the columns, an
invalid drop snaps back with the reason, the same moves with the keyboard menu, and a second
browser sees a move without reloading while its own open form survives. Screenshots of the
boards on desktop and phone go to /tmp/board/e2e/."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect

pytestmark = pytest.mark.e2e

SHOTS = Path("/tmp/board/e2e")
VIEWPORTS = {
    "desktop": {"viewport": {"width": 1280, "height": 900}},
    "phone": {
        "viewport": {"width": 375, "height": 812},
        "is_mobile": True,
        "has_touch": True,
        "device_scale_factor": 2,
    },
}
NO_OVERFLOW = "document.documentElement.scrollWidth <= document.documentElement.clientWidth + 1"
POLL_WAIT = 15_000  # the board polls every 5 s


def _board(portal, new_context, username: str, board: str, size: str = "desktop") -> Page:
    state = portal.staff_state(new_context, username)
    page = new_context(storage_state=state, **VIEWPORTS[size]).new_page()
    page.goto(f"/staff/board/{board}")
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "外地业务看板" if board == "outbound" else "本地业务看板"
    )
    return page


def _column(page: Page, state: str) -> Locator:
    return page.locator(f"#cards-{state}")


def _first_card(page: Page, state: str) -> tuple[Locator, str]:
    card = _column(page, state).locator("li.kcard").first
    expect(card).to_be_visible()
    card_id = card.get_attribute("id")
    return page.locator(f"#{card_id}"), card_id


def _count(page: Page, state: str) -> int:
    text = page.locator(f"#head-{state} .kcol-count").inner_text()
    return int(re.sub(r"\D", "", text.split("/")[0]))


def _drag(page: Page, card: Locator, state: str):
    """Drag the card (by its applicant line) to the free space at the foot of a column, as a
    person does (press, move in steps, release), and wait for the move's answer."""
    source = card.locator(".kcard-who").bounding_box()
    target = _column(page, state).bounding_box()
    with page.expect_response(lambda r: r.url.endswith("/move")) as info:
        page.mouse.move(source["x"] + source["width"] / 2, source["y"] + source["height"] / 2)
        page.mouse.down()
        page.mouse.move(
            target["x"] + target["width"] / 2, target["y"] + target["height"] - 12, steps=12
        )
        page.mouse.up()
    return info.value


def _shot(page: Page, name: str, size: str = "desktop") -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.evaluate("document.fonts.ready")
    page.screenshot(path=SHOTS / f"{name}-{size}.png", full_page=True)


def test_liaison_drags_a_case_through_the_columns(portal, new_context):
    page = _board(portal, new_context, "liaison", "outbound")
    card, card_id = _first_card(page, "verifying")
    number = card.locator(".kcard-no").inner_text()
    before = _count(page, "transmitted")

    response = _drag(page, card, "transmitted")
    assert response.status == 200
    expect(_column(page, "transmitted").locator(f"#{card_id}")).to_be_visible()
    expect(_column(page, "verifying").locator(f"#{card_id}")).to_have_count(0)
    expect(page.locator("#board-live")).to_contain_text(f"已将 {number} 从“材料核实”移至“已传递”")
    expect(page.locator("#head-transmitted .kcol-count")).to_contain_text(str(before + 1))

    # 已反馈 needs the other center's result: the card asks for it inline first
    response = _drag(page, page.locator(f"#{card_id}"), "feedback")
    assert response.status == 200
    card = _column(page, "transmitted").locator(f"#{card_id}")
    form = card.locator("form.kcard-form")
    expect(form).to_be_visible()
    expect(form).to_contain_text("移至“已反馈”")
    expect(page.locator("#board-live")).to_contain_text("请填写办理结果")
    _shot(page, "board-inline-form")
    form.get_by_label("办理结果").select_option("办结")
    form.get_by_label("结果说明").fill("缴存地中心已办结，材料已寄回")
    with page.expect_response(lambda r: r.url.endswith("/move")):
        form.get_by_role("button", name="确认移动").click()
    expect(_column(page, "feedback").locator(f"#{card_id}")).to_be_visible()
    expect(page.locator(f"#{card_id} form.kcard-form")).to_have_count(0)
    expect(page.locator("#board-live")).to_contain_text("移至“已反馈”")

    # the card's detail opens inline and shows who moved it where, with what data
    page.locator(f"#{card_id} .kcard-no").click()
    detail = page.locator("#case-detail article.case-detail")
    expect(detail).to_be_visible()
    history = detail.locator(".history li")
    expect(history.last).to_contain_text("李强")
    expect(history.last).to_contain_text("将办件从“已传递”移至“已反馈”")
    expect(history.last).to_contain_text("缴存地中心已办结")
    expect(detail.locator(".cd-facts")).to_contain_text("**********")  # the ID is masked
    _shot(page, "board-detail")


def test_an_invalid_drop_snaps_back_with_the_reason(portal, new_context):
    page = _board(portal, new_context, "clerk", "outbound")
    card, card_id = _first_card(page, "accepted")
    count = _count(page, "accepted")
    response = _drag(page, card, "transmitted")
    assert response.status == 409
    live = page.locator("#board-live")
    expect(live).to_contain_text("不能从“窗口受理”直接移至“已传递”")
    expect(live).to_have_attribute("aria-live", "polite")
    expect(_column(page, "accepted").locator(f"#{card_id}")).to_be_visible()
    expect(_column(page, "transmitted").locator(f"#{card_id}")).to_have_count(0)
    assert _count(page, "accepted") == count
    _shot(page, "board-refused")
    page.reload()
    expect(_column(page, "accepted").locator(f"#{card_id}")).to_be_visible()


def test_the_same_moves_from_the_keyboard(portal, new_context):
    page = _board(portal, new_context, "liaison", "inbound")
    card, card_id = _first_card(page, "received")
    number = card.locator(".kcard-no").inner_text()
    menu = card.get_by_label(f"将 {number} 移至")
    menu.focus()
    expect(menu).to_be_focused()
    page.keyboard.press("ArrowDown")  # 已分发: the first choice after "移至…"
    expect(menu).to_have_value("distributed")
    page.keyboard.press("Tab")
    expect(card.get_by_role("button", name="移动")).to_be_focused()
    with page.expect_response(lambda r: r.url.endswith("/move")):
        page.keyboard.press("Enter")

    # 已分发 needs a department: the inline form takes the focus
    expect(page.locator("#board-live")).to_contain_text("请填写分发至管理部")
    department = page.locator(f"#{card_id}").get_by_label("分发至管理部")
    expect(department).to_be_focused()
    department.select_option(label="阿拉善右旗管理部")
    page.keyboard.press("Tab")
    expect(page.locator(f"#{card_id}").get_by_role("button", name="确认移动")).to_be_focused()
    with page.expect_response(lambda r: r.url.endswith("/move")):
        page.keyboard.press("Enter")
    moved = _column(page, "distributed").locator(f"#{card_id}")
    expect(moved).to_be_visible()
    expect(moved.locator(".kcard-no")).to_be_focused()  # the keyboard user keeps their place
    expect(moved).to_contain_text("阿拉善右旗管理部")
    expect(page.locator("#board-live")).to_contain_text(f"已将 {number} 从“平台接收”移至“已分发”")

    # a refused choice from the menu is announced the same way; nothing moves
    page.goto("/staff/board/outbound")
    card, card_id = _first_card(page, "transmitted")
    menu = card.locator("select[name=target]")
    options = menu.locator("option").all_inner_texts()
    assert options == ["移至…", "已反馈", "待补正"]  # only what the liaison may do here


def test_a_second_browser_sees_the_move_and_keeps_its_open_form(portal, new_context):
    mover = _board(portal, new_context, "liaison", "outbound")
    watcher = _board(portal, new_context, "liaison", "outbound")
    # the watcher starts a move that needs data and begins typing
    waiting, waiting_id = _first_card(watcher, "transmitted")
    menu = waiting.locator("select[name=target]")
    menu.select_option("feedback")
    with watcher.expect_response(lambda r: r.url.endswith("/move")):
        waiting.get_by_role("button", name="移动").click()
    note = watcher.locator(f"#{waiting_id} form.kcard-form").get_by_label("结果说明")
    note.fill("正在填写，尚未提交")

    # the mover moves another card into the same column
    card, card_id = _first_card(mover, "verifying")
    card.locator("select[name=target]").select_option("transmitted")
    with mover.expect_response(lambda r: r.url.endswith("/move")):
        card.get_by_role("button", name="移动").click()
    expect(_column(mover, "transmitted").locator(f"#{card_id}")).to_be_visible()

    # without reloading, the watcher's board shows it; the open form and its text survive
    expect(_column(watcher, "transmitted").locator(f"#{card_id}")).to_be_visible(timeout=POLL_WAIT)
    expect(_column(watcher, "verifying").locator(f"#{card_id}")).to_have_count(0)
    expect(watcher.locator(f"#{waiting_id} form.kcard-form")).to_be_visible()
    expect(note).to_have_value("正在填写，尚未提交")
    _shot(watcher, "board-polled")


@pytest.mark.parametrize("size", ["desktop", "phone"])
@pytest.mark.parametrize("board", ["outbound", "inbound"])
def test_boards_on_desktop_and_phone(portal, new_context, board, size):
    page = _board(portal, new_context, "liaison", board, size)
    expect(page.locator(".kcol")).to_have_count(7)
    _shot(page, f"board-{board}", size)
    if size == "phone":
        assert page.evaluate(NO_OVERFLOW), "the page scrolls sideways on a phone"
        # the columns scroll inside the board; the 移至 menu works there too
        card, card_id = _first_card(page, "accepted" if board == "outbound" else "done")
        page.locator(f"#{card_id} .kcard-no").click()
        expect(page.locator("#case-detail article")).to_be_visible()
        _shot(page, f"board-{board}-detail", size)
