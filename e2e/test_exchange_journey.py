"""Two centers carry a case all the way round, in Chromium (issue 8).

Two portals run as subprocesses on 127.0.0.1, each with its own SQLite database, signing key
and outbox worker: ours (152900, 阿拉善盟) and a peer configured as 110000 北京住房公积金管理中心
(``flask platform configure-self``); each knows the other's public key and inbox
(``flask platform peer``). The journey:

1. 亮码可办: the depositor (of the Beijing center) shows a one-day e-code in Beijing's hall; our
   clerk enters it and gets the information table through the exchange; the depositor sees
   who used it.
2. Our clerk accepts the home-purchase withdrawal at our counter; the liaison transmits it
   while Beijing is down: the card shows 待送达, the outbox page the waiting message; Beijing
   comes back, a manual retry sends it, Beijing acknowledges (对方已接收, its deadline).
3. Beijing's liaison distributes it from 平台接收, a handler processes it (purchase check, a
   second handler approves and it is paid), finishes it, the liaison feeds it back.
4. Our card arrives in 已反馈 with the result and Beijing's documents.

Screenshots (desktop and phone) go to /tmp/exchange/.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pyotp
import pytest
from playwright.sync_api import Page, expect

from e2e.conftest import (
    ARTIFACTS,
    DEMO_SIZE,
    ROOT,
    STAFF_PASSWORD,
    STARTUP_TIMEOUT,
    Portal,
    PortalServer,
    _flask,
    _read_demo,
)

pytestmark = pytest.mark.e2e

SHOTS = Path("/tmp/exchange")
OURS, PEER = "152900", "110000"
PEER_NAME = "北京住房公积金管理中心"
OUR_NAME = "阿拉善盟住房公积金管理中心"
PHONE = {"viewport": {"width": 375, "height": 812}, "is_mobile": True, "has_touch": True}
DESKTOP = {"viewport": {"width": 1280, "height": 900}}
NO_OVERFLOW = "document.documentElement.scrollWidth <= document.documentElement.clientWidth + 1"
EXCHANGE_WAIT = 30_000  # worker rounds (0.3 s), board polls (5 s), retries
# a second handler of 阿拉善左旗管理部 at the peer, who approves (复核) the first one's payout
APPROVER = ("approver", "钱慧", "APPROVERDEMOSECRETAPPROVERDEMOSE")


def _public_key(seed_b64: str) -> str:
    from portal.platform import signing

    return signing.public_key_b64(signing.key_from_seed(base64.b64decode(seed_b64)))


class CenterServer(PortalServer):
    """One center: a portal (restartable on the same port and database) and its worker."""

    def __init__(self, workdir: Path, label: str, **env: str):
        workdir.mkdir(parents=True, exist_ok=True)
        super().__init__(f"sqlite:///{workdir / 'portal.db'}", workdir)
        self.label = label
        self.seed = base64.b64encode(os.urandom(32)).decode()
        self.env.update(PORTAL_SIGNING_KEY=self.seed, **env)
        self.worker: subprocess.Popen | None = None

    @property
    def inbox(self) -> str:
        return f"{self.url}/platform/inbox"

    @property
    def public_key(self) -> str:
        return _public_key(self.seed)

    def prepare(self) -> None:
        self._run("db", "upgrade")
        self._run("seed-demo", "--size", str(DEMO_SIZE))
        self.demo = _read_demo(self.database_url)

    def add_approver(self) -> None:
        """Test setup: a second handler of AZQ with a known TOTP secret."""
        from portal.db import make_database
        from portal.models import Department, StaffUser
        from portal.services.identity import hash_password

        username, name, secret = APPROVER
        database = make_database(self.database_url, root=str(ROOT))
        with database.bind_ctx([Department, StaffUser]):
            database.connect()
            try:
                StaffUser.create(
                    username=username,
                    name=name,
                    role="handler",
                    department=Department.get(Department.code == "AZQ"),
                    password_hash=hash_password(STAFF_PASSWORD),
                    totp_secret=secret,
                    totp_confirmed=True,
                )
            finally:
                database.close()

    def serve(self) -> None:
        """Start (or restart) the web server on the same port and database."""
        with self.log_path.open("a") as log:
            self.process = subprocess.Popen(
                _flask("run", "--host", "127.0.0.1", "--port", str(self.port), "--no-reload"),
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.label} exited:\n{self.log()}")
            if self._healthy():
                return
            time.sleep(0.1)  # polling the server while it starts, not waiting in a test
        raise RuntimeError(f"{self.label} not healthy:\n{self.log()}")

    def start_worker(self) -> None:
        with (self.workdir / "worker.log").open("a") as log:
            self.worker = subprocess.Popen(
                _flask("platform", "worker", "--interval", "0.3"),
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def stop_all(self) -> None:
        if self.worker and self.worker.poll() is None:
            self.worker.terminate()
            self.worker.wait(timeout=10)
        self.stop()
        ARTIFACTS.mkdir(exist_ok=True)
        for name in ("server.log", "worker.log"):
            if (self.workdir / name).exists():
                shutil.copyfile(self.workdir / name, ARTIFACTS / f"exchange-{self.label}-{name}")


@dataclass
class Pair:
    ours: CenterServer
    peer: CenterServer


@pytest.fixture(scope="module")
def centers(_chromium_available):
    root = Path(tempfile.mkdtemp(prefix="portal-e2e-exchange-"))
    ours = CenterServer(root / "ours", "152900")
    peer = CenterServer(
        root / "peer",
        "110000",
        PORTAL_CENTER_CODE=PEER,
        PORTAL_CENTER_NAME=PEER_NAME,
    )
    try:
        ours.prepare()
        peer.prepare()
        peer._run("platform", "configure-self")
        peer.add_approver()
        ours._run(
            "platform", "peer", PEER,
            "--public-key", peer.public_key, "--exchange-url", peer.inbox,
        )  # fmt: skip
        peer._run(
            "platform", "peer", OURS,
            "--public-key", ours.public_key, "--exchange-url", ours.inbox,
        )  # fmt: skip
        ours.serve()
        peer.serve()
        ours.start_worker()
        peer.start_worker()
        yield Pair(ours, peer)
    finally:
        ours.stop_all()
        peer.stop_all()
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class Applicant:
    resident_id: str
    name: str
    phone: str
    bank_card: str


def _applicant(server: CenterServer) -> Applicant:
    """A depositor of the peer's department AZQ (two handlers there: one prepares the payout,
    the other approves) with a password and money on the account."""
    from portal.db import make_database
    from portal.models import Account, Department, Depositor

    database = make_database(server.database_url, root=str(ROOT))
    with database.bind_ctx([Account, Department, Depositor]):
        database.connect()
        try:
            d = (
                Depositor.select()
                .join(Account, on=(Account.depositor == Depositor.id))
                .switch(Depositor)
                .join(Department, on=(Depositor.department == Department.id))
                .where(
                    Depositor.password_hash.is_null(False),
                    Depositor.active,
                    Account.status == "正常",
                    Account.balance > Decimal("20000.00"),
                    Department.code == "AZQ",
                    Depositor.bank_card.is_null(False),
                    # a card changed in the last 7 days blocks withdrawals
                    Depositor.bank_card_changed_at.is_null()
                    | (Depositor.bank_card_changed_at < datetime.now() - timedelta(days=8)),
                )
                .order_by(Depositor.id)
                .first()
            )
        finally:
            database.close()
    assert d is not None, "the demo data lacks an AZQ depositor with a balance"
    return Applicant(d.resident_id, d.name, d.phone, d.bank_card)


@pytest.fixture
def center_context(browser, browser_log):
    """Browser contexts on either center (its own base URL), watched for CSP violations and
    script errors like every context of the suite (``browser_log``)."""
    contexts = []

    def factory(base_url: str, **kwargs):
        context = browser.new_context(
            base_url=base_url, locale="zh-CN", timezone_id="Asia/Shanghai", **kwargs
        )
        browser_log.watch(context)
        contexts.append(context)
        return context

    yield factory
    for context in contexts:
        context.close()


class Desk:
    """Logged-in browser pages on one center, reusing each staff member's session."""

    def __init__(self, server: CenterServer, center_context):
        self.server = server
        self.portal = Portal(server)
        self.context = center_context
        self.states: dict[str, dict] = {}

    def login(self, page: Page, username: str) -> None:
        """Password, then the TOTP code, as a person does (each user logs in once here)."""
        from portal.demo import DEMO_STAFF

        secrets = {u: (n, s) for u, n, _r, _d, s in DEMO_STAFF}
        secrets[APPROVER[0]] = APPROVER[1:]
        name, secret = secrets[username]
        page.goto("/staff/login")
        page.get_by_label("用户名", exact=True).fill(username)
        page.get_by_label("密码", exact=True).fill(STAFF_PASSWORD)
        page.get_by_role("button", name="下一步：动态口令").click()
        page.get_by_label("动态口令", exact=True).fill(pyotp.TOTP(secret).now())
        page.get_by_role("button", name="登录", exact=True).click()
        expect(page).to_have_url(re.compile(r"/staff/$"))
        expect(page.locator(".who-name")).to_have_text(name)

    def page(self, username: str | None = None, size: str = "desktop") -> Page:
        viewport = PHONE if size == "phone" else DESKTOP
        if username and username not in self.states:
            context = self.context(self.server.url, **DESKTOP)
            self.login(context.new_page(), username)
            self.states[username] = context.storage_state()
        state = {"storage_state": self.states[username]} if username else {}
        return self.context(self.server.url, **viewport, **state).new_page()

    def shots(self, name: str, url: str, ready: str, *, username=None, state=None) -> None:
        """Screenshots of ``url`` on desktop and phone, each in a fresh page that is closed at
        once. (A Playwright screenshot leaves the page in a state where a later htmx swap of
        the same page logs a CSP report, so the pages that drive the journey take none.)"""
        for size, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
            context = self.context(
                self.server.url, **viewport, storage_state=state or self.states[username]
            )
            page = context.new_page()
            page.goto(url)
            target = page.locator(ready).first
            expect(target).to_be_visible()
            target.scroll_into_view_if_needed()  # a board column off to the side on a phone
            page.evaluate("document.fonts.ready")
            SHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=SHOTS / f"{name}-{size}.png", full_page=True)
            if size == "phone":
                assert page.evaluate(NO_OVERFLOW), f"{name}: horizontal overflow on a phone"
            context.close()


def _card(page: Page, case_no: str):
    return page.locator("li.kcard", has=page.locator(".kcard-no", has_text=case_no))


def _move(page: Page, case_no: str, target: str) -> None:
    card = _card(page, case_no)
    card.locator("select[name=target]").select_option(target)
    with page.expect_response(lambda r: r.url.endswith("/move")):
        card.get_by_role("button", name="移动").click()


def _confirm(page: Page, case_no: str) -> None:
    with page.expect_response(lambda r: r.url.endswith("/move")):
        _card(page, case_no).get_by_role("button", name="确认移动").click()


def test_two_centers_carry_a_case_all_the_way_round(centers, center_context):
    ours, peer = Desk(centers.ours, center_context), Desk(centers.peer, center_context)
    who = _applicant(centers.peer)

    # --- 1. 亮码可办 -----------------------------------------------------------------------
    hall = peer.page()
    peer.portal.login_depositor(hall, who)
    expect(hall.locator(".brand-name")).to_have_text(PEER_NAME)
    hall.get_by_role("link", name=re.compile("亮码可办")).click()
    expect(hall.get_by_role("heading", level=1)).to_have_text("亮码可办")
    hall.get_by_role("button", name="生成业务码").click()
    expect(hall.locator("#consent-error")).to_have_text("请先勾选授权")
    hall.get_by_label(re.compile("本人授权出示本码")).check()
    hall.get_by_role("button", name="生成业务码").click()
    code = hall.locator("#ecode-code").inner_text().strip()
    assert re.fullmatch(r"1100 \d{4} \d{4} \d{4}", code), code
    expect(hall.locator("#ecode-valid")).to_contain_text("24:00")
    depositor = hall.context.storage_state()
    peer.shots("ecode-hall", "/me/ecode/", "#ecode-code", state=depositor)

    counter = ours.page("clerk")
    counter.goto("/staff/")
    counter.get_by_role("navigation", name="内网导航").get_by_role("link", name="亮码查询").click()
    counter.get_by_label("业务码", exact=True).fill(code)
    counter.get_by_role("button", name="查询").click()
    table = counter.locator("#ecode-result")
    expect(table).to_contain_text(who.name)
    expect(table).to_contain_text(f"来源：{PEER_NAME}")
    expect(table).not_to_contain_text(who.resident_id)  # masked on screen
    assert re.search(r"/staff/ecode/\d+$", counter.url)  # the address names the look-up
    ours.shots("ecode-counter", counter.url, "#ecode-result", username="clerk")
    # used once: a second look-up is refused with the reason from Beijing
    counter.get_by_label("业务码", exact=True).fill(code)
    counter.get_by_role("button", name="查询").click()
    expect(counter.locator("#code-error")).to_contain_text("每个业务码只能查询一次")
    # the depositor's page shows who used it (it polls while the code was valid)
    history = hall.locator("#ecode-history tbody tr").first
    expect(history).to_contain_text("已使用", timeout=EXCHANGE_WAIT)
    expect(history).to_contain_text(OUR_NAME)
    expect(history).to_contain_text("王芳")
    peer.shots("ecode-hall-used", "/me/ecode/", "#ecode-history", state=depositor)

    # --- 2. our counter accepts, the liaison transmits while Beijing is down ---------------
    counter.goto("/staff/counter/")
    counter.get_by_label("办理事项").select_option("purchase_withdrawal")
    counter.get_by_label("申请人缴存地公积金中心").select_option(PEER)
    counter.get_by_role("button", name="下一步").click()
    counter.get_by_label("申请人姓名").fill(who.name)
    counter.get_by_label("身份证号码").fill(who.resident_id)
    counter.get_by_label("联系电话").fill(who.phone)
    counter.get_by_label("购房合同或不动产权证书编号").fill("京房售2026-00123")
    purchased = (date.today() - timedelta(days=20)).isoformat()
    counter.get_by_label("购房日期").fill(purchased)
    counter.get_by_label("房屋总价（元）").fill("1860000")
    counter.get_by_label("房屋坐落").fill("北京市朝阳区示例路 8 号院 3-1201")
    counter.get_by_label("收款银行", exact=True).fill("中国工商银行")
    counter.get_by_label("收款银行卡号").fill(who.bank_card)
    for box in counter.locator("#counter-form ul.checks input[type=checkbox]").all():
        box.check()
    counter.get_by_role("button", name="受理并生成文书").click()
    expect(counter.locator(".flashes")).to_contain_text("已受理")
    expect(counter.locator(".case-state")).to_have_text("窗口受理")
    case_no = re.search(r"/cases/(KS\d+)", counter.url).group(1)
    scan = SHOTS / "id-card.pdf"
    SHOTS.mkdir(parents=True, exist_ok=True)
    scan.write_bytes(b"%PDF-1.4\n% scan of the applicant's ID card\n%%EOF\n")
    counter.get_by_label("材料名称").select_option("id_card")
    counter.get_by_label("扫描件或照片").set_input_files(str(scan))
    counter.get_by_role("button", name="上传").click()
    expect(counter.locator(".flashes")).to_contain_text("已上传")

    board = ours.page("clerk")
    board.goto("/staff/board/outbound")
    _move(board, case_no, "verifying")
    expect(board.locator("#cards-verifying").locator(".kcard-no", has_text=case_no)).to_be_visible()

    centers.peer.stop()  # Beijing's portal is down
    liaison = ours.page("liaison")
    liaison.goto("/staff/board/outbound")
    _move(liaison, case_no, "transmitted")
    card = liaison.locator("#cards-transmitted").locator("li.kcard", has_text=case_no)
    expect(card.locator(".kcard-delivery")).to_contain_text("待送达")
    ours.shots("board-pending", "/staff/board/outbound", ".kcard-delivery", username="liaison")

    outbox = ours.page("liaison")
    outbox.goto("/staff/")
    outbox.get_by_role("navigation", name="内网导航").get_by_role("link", name="平台交换").click()
    waiting = outbox.locator("#outbox-pending tbody tr", has_text=case_no)
    expect(waiting).to_contain_text("拒绝连接", timeout=EXCHANGE_WAIT)  # the worker tried
    expect(waiting).to_contain_text("业务传递")
    ours.shots("outbox-waiting", "/staff/outbox/", "#outbox-pending", username="liaison")

    centers.peer.serve()  # Beijing is back (same port and database); retry by hand
    waiting.get_by_role("button", name="立即重试").click()
    # requeued; or, on a slow machine, the worker's own retry delivered it just before the click
    expect(outbox.locator(".alert")).to_contain_text(re.compile("重新排队|该报文已送达，无需重试"))
    sent = outbox.locator("#outbox-sent tbody tr", has_text=case_no)
    expect(sent).to_contain_text("业务传递", timeout=EXCHANGE_WAIT)  # the page polls
    expect(outbox.locator("#outbox-pending tbody tr", has_text=case_no)).to_have_count(0)
    ours.shots("outbox-sent", "/staff/outbox/", "#outbox-sent", username="liaison")
    # Beijing acknowledges: its 3 working days are on our card
    card = _card(liaison, case_no)
    expect(card.locator(".kcard-delivery")).to_contain_text("对方已接收", timeout=EXCHANGE_WAIT)
    expect(card.locator(".kcard-delivery")).to_contain_text("对方期限")
    ours.shots("board-acked", "/staff/board/outbound", ".delivery-acked", username="liaison")

    # --- 3. Beijing: 平台接收 → 已分发 → 办理中 → processing and approval → 已办结 → 已反馈 ----
    b_liaison = peer.page("liaison")
    b_liaison.goto("/staff/board/inbound")
    expect(b_liaison.locator(".brand-name")).to_have_text(PEER_NAME)
    received = b_liaison.locator("#cards-received").locator("li.kcard", has_text=who.name)
    expect(received).to_be_visible(timeout=EXCHANGE_WAIT)
    b_case_no = received.locator(".kcard-no").inner_text().strip()
    expect(received).to_contain_text(OUR_NAME)
    peer.shots("peer-board-received", "/staff/board/inbound", "#cards-received", username="liaison")
    _move(b_liaison, b_case_no, "distributed")
    _card(b_liaison, b_case_no).get_by_label("分发至管理部").select_option(label="阿拉善左旗管理部")
    _confirm(b_liaison, b_case_no)
    expect(
        b_liaison.locator("#cards-distributed").locator(".kcard-no", has_text=b_case_no)
    ).to_be_visible()

    handler = peer.page("handler")
    handler.goto("/staff/board/inbound")
    _move(handler, b_case_no, "processing")
    expect(
        handler.locator("#cards-processing").locator(".kcard-no", has_text=b_case_no)
    ).to_be_visible()
    handler.locator(".kcard-no", has_text=b_case_no).click()
    handler.locator("#case-detail").get_by_role("link", name="办理", exact=True).click()
    expect(handler.get_by_role("heading", level=1)).to_contain_text(b_case_no)
    purchase = handler.locator("#processing-panel")
    purchase.get_by_label("购房合同或不动产权证书编号").fill("京房售2026-00123")
    purchase.get_by_label("房屋坐落").fill("北京市朝阳区示例路 8 号院 3-1201")
    purchase.get_by_label("购房日期").fill(purchased)
    purchase.get_by_label("房屋总价（元）").fill("1860000")
    purchase.locator("input[name=card_source][value=file]").check()
    purchase.get_by_role("button", name="提交复核").click()
    expect(handler.locator("#processing-panel .proc-payout .proc-status")).to_have_text("待复核")
    peer.shots("peer-processing", handler.url, ".proc-payout", username="handler")

    approver = peer.page(APPROVER[0])
    approver.goto("/staff/processing/approvals")
    row = approver.locator("tr", has_text=b_case_no)
    row.get_by_role("link", name="复核").click()
    approver.get_by_role("button", name="复核通过并支付").click()
    expect(approver.locator("#review")).to_contain_text("已支付", timeout=EXCHANGE_WAIT)

    handler.reload()
    handler.get_by_role("button", name="附加结果并办结").click()
    expect(handler.locator("#processing-panel .case-state")).to_have_text("已办结")

    b_liaison.goto("/staff/board/inbound")
    _move(b_liaison, b_case_no, "fed_back")
    expect(
        b_liaison.locator("#cards-fed_back").locator(".kcard-no", has_text=b_case_no)
    ).to_be_visible()

    # --- 4. back home: 已反馈 with the result and Beijing's documents ----------------------
    liaison.goto("/staff/board/outbound")
    feedback = liaison.locator("#cards-feedback").locator("li.kcard", has_text=case_no)
    expect(feedback).to_be_visible(timeout=EXCHANGE_WAIT)
    feedback.locator(".kcard-no").click()
    detail = liaison.locator("#case-detail article.case-detail")
    expect(detail).to_contain_text("办结")
    documents = detail.locator(".cd-results li")
    expect(documents.first).to_be_visible()
    history = detail.locator(".history")
    expect(history).to_contain_text("对方接收确认")
    expect(history).to_contain_text("已传递")
    case_id = feedback.get_attribute("id").removeprefix("case-")
    ours.shots("case-feedback", f"/staff/board/case/{case_id}", ".cd-results", username="liaison")
    with liaison.expect_download() as info:
        documents.first.locator("a").click()
    assert Path(info.value.path()).read_bytes().startswith(b"%PDF-")

    b_outbox = peer.page("liaison")
    b_outbox.goto("/staff/outbox/")
    expect(b_outbox.locator("#outbox-sent")).to_contain_text("办理结果", timeout=EXCHANGE_WAIT)
    expect(b_outbox.locator("#outbox-sent")).to_contain_text("接收确认")
    peer.shots("peer-outbox", "/staff/outbox/", "#outbox-sent", username="liaison")
