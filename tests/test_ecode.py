"""亮码可办: the one-day business e-code — its rules (24:00 Shanghai, single use, who used it),
the issuing center's answer through the inbox, the depositor's page and the other center's
counter page (issue 8)."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest

from portal.db import db
from portal.filters import local_today
from portal.models import (
    AuditLog,
    Center,
    ECode,
    ECodeLookup,
    PlatformMessage,
    SmsMessage,
    utcnow,
)
from portal.platform import files, messages, signing
from portal.platform import http as transport_http
from portal.services import ecode
from tests.conftest import TODAY, login_depositor, login_staff
from tests.platform_http_helpers import (
    HX,
    OURS,
    PEER,
    build,
    exchange_app,  # noqa: F401 (fixture)
    our_public_key,
    peer_key,
    post_inbox,
    read_zip,
    signed,
    soup,
    staff,
)

pytestmark = pytest.mark.usefixtures("exchange_app")


def _query(code: str, **kw) -> dict:
    return build(
        "ecode.query", None, messages.ecode_query_payload(code, "李娜", "北京服务大厅"), **kw
    )


def _reply(response) -> dict:
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/zip"
    message, signature = read_zip(response.data)
    assert signing.verify(our_public_key(), messages.canonical(message), signature["signature"])
    messages.validate(message)
    assert message["type"] == "ecode.reply" and message["recipient"] == PEER
    return message["payload"]


# --- the rules ---------------------------------------------------------------------------------


def test_a_code_expires_at_midnight_shanghai_time(depositor):
    assert ecode.expires_at_for(TODAY) == datetime(2026, 11, 25, 16, 0)  # 24:00 UTC+8
    row = ecode.issue(depositor, "depositor:1", TODAY, now=datetime(2026, 11, 25, 1, 0))
    assert row.expires_at == datetime(2026, 11, 25, 16, 0)
    assert ecode.status(row, datetime(2026, 11, 25, 15, 59, 59)) == "active"  # 23:59:59
    assert ecode.status(row, datetime(2026, 11, 25, 16, 0)) == "expired"  # 00:00 next day


def test_a_code_is_our_center_and_ten_digits(depositor):
    row = ecode.issue(depositor, f"depositor:{depositor.id}", local_today())
    assert len(row.code) == 16 and row.code.startswith(OURS) and row.code.isdigit()
    assert ecode.format_code(row.code).count(" ") == 3
    assert ecode.normalize(" 1529-0012 3456 7890 ") == "1529001234567890"
    issued = AuditLog.get(AuditLog.action == "ecode.issue")
    assert row.code not in str(issued.detail) and issued.detail["code"] == ecode.mask(row.code)


def test_asking_again_shows_the_same_valid_code(depositor):
    first = ecode.issue(depositor, "d", local_today())
    assert ecode.issue(depositor, "d", local_today()).id == first.id
    ecode.revoke(depositor, "d", first.id)
    second = ecode.issue(depositor, "d", local_today())
    assert second.id != first.id and second.code != first.code
    with pytest.raises(ecode.Refused, match="已作废"):
        ecode.revoke(depositor, "d", first.id)


def test_a_depositor_cannot_issue_more_than_the_daily_limit(depositor, monkeypatch):
    monkeypatch.setattr(ecode, "DAILY_LIMIT", 2)
    for _ in range(2):
        ecode.revoke(depositor, "d", ecode.issue(depositor, "d", local_today()).id)
    with pytest.raises(ecode.Refused, match="每天最多"):
        ecode.issue(depositor, "d", local_today())


def test_someone_elses_code_cannot_be_revoked(depositor, other_depositor):
    row = ecode.issue(depositor, "d", local_today())
    with pytest.raises(ecode.NotFound):
        ecode.revoke(other_depositor, "d", row.id)


# --- the issuing center answers through the inbox ---------------------------------------------


def test_a_peer_reads_the_information_table_once(client, depositor):
    row = ecode.issue(depositor, "d", local_today())
    query = _query(row.code)
    payload = _reply(post_inbox(client, signed(query)))
    assert payload["outcome"] == "ok" and payload["query_message_id"] == query["message_id"]
    table = payload["table"]
    assert table["name"] == depositor.name and table["id_no"] == depositor.resident_id
    account = depositor.accounts.get()
    assert table["account"]["account_no"] == account.account_no
    assert table["account"]["balance"] == f"{account.balance:.2f}"
    assert table["deposits"] and len(table["deposits"]) <= ecode.DEPOSIT_LINES
    used = ECode.get_by_id(row.id)
    assert used.used_by_center == PEER and used.used_by == "李娜（北京服务大厅）"
    assert used.used_by_center_name == "北京住房公积金管理中心" and used.used_at is not None
    sms = SmsMessage.select().where(SmsMessage.phone == depositor.phone).order_by(SmsMessage.id)
    assert "北京住房公积金管理中心查询使用" in sms.order_by(SmsMessage.id.desc()).first().body
    audit_used = AuditLog.get(AuditLog.action == "ecode.used")
    assert audit_used.detail["message_id"] == query["message_id"]
    assert row.code not in str(audit_used.detail)
    assert PlatformMessage.get(PlatformMessage.message_id == query["message_id"]).direction == "in"

    # single use: another query (another message) is refused, saying when it was used
    again = _reply(post_inbox(client, signed(_query(row.code))))
    assert again["outcome"] == "refused" and "已于" in again["reason"] and "table" not in again
    # the same query delivered again gets the very same answer (idempotent)
    repeat = post_inbox(client, signed(query))
    assert repeat.status_code == 200 and read_zip(repeat.data)[0]["payload"] == payload


@pytest.mark.parametrize(
    "change, reason",
    [
        (lambda row: ECode.update(expires_at=utcnow() - timedelta(seconds=1)), "已过期"),
        (lambda row: ECode.update(revoked_at=utcnow()), "作废"),
        (lambda row: ECode.update(code="1529009999999999"), "不存在"),
    ],
)
def test_expired_revoked_or_unknown_codes_are_refused(client, depositor, change, reason):
    row = ecode.issue(depositor, "d", local_today())
    code = row.code
    change(row).where(ECode.id == row.id).execute()
    payload = _reply(post_inbox(client, signed(_query(code))))
    assert payload["outcome"] == "refused" and reason in payload["reason"]
    assert ECode.get_by_id(row.id).used_at is None
    refused = AuditLog.get(AuditLog.action == "ecode.refused")
    assert refused.detail["reason"] == payload["reason"] and code not in str(refused.detail)


def test_a_refused_query_delivered_again_is_refused_again(client):
    query = _query("1529009999999999")
    assert _reply(post_inbox(client, signed(query)))["outcome"] == "refused"
    again = _reply(post_inbox(client, signed(query)))
    assert again["outcome"] == "refused" and "已处理过" in again["reason"]
    assert again["query_message_id"] == query["message_id"]


def test_a_peer_guessing_codes_is_slowed_down(client, monkeypatch):
    monkeypatch.setattr(ecode, "PEER_FAILURES", 2)
    reasons = [
        _reply(post_inbox(client, signed(_query(f"15290000000000{n:02d}"))))["reason"]
        for n in range(3)
    ]
    assert "不存在" in reasons[0] and "过于频繁" in reasons[2]


def test_an_ecode_query_needs_a_known_peers_signature(client, depositor):
    row = ecode.issue(depositor, "d", local_today())
    forged = files.pack(_query(row.code), {}, signing.demo_peer_key("640100"))
    r = post_inbox(client, forged)
    assert r.status_code == 403 and r.get_json()["code"] == "bad_signature"
    assert ECode.get_by_id(row.id).used_at is None


@pytest.mark.committed
def test_two_centers_querying_at_once_get_one_table(app, depositor):
    """Single use under concurrency: the conditional update lets one query win."""
    db.connect(reuse_if_open=True)
    row = ecode.issue(depositor, "d", local_today())
    queries = [(_query(row.code), signed(_query(row.code))) for _ in range(4)]
    peer = Center.get(Center.code == PEER)
    db.close()
    results, errors = [], []
    barrier = threading.Barrier(len(queries))

    def one(message, data):
        db.connect(reuse_if_open=True)
        try:
            with app.app_context():
                barrier.wait()
                reply = ecode.answer_query(peer, message, data, "platform:110000", TODAY)
                results.append(read_zip(reply)[0]["payload"]["outcome"])
        except Exception as exc:  # collected and asserted on below
            errors.append(exc)
        finally:
            db.close()

    threads = [threading.Thread(target=one, args=q) for q in queries]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    db.connect(reuse_if_open=True)
    try:
        assert errors == [] and sorted(results) == ["ok", "refused", "refused", "refused"]
    finally:
        with db.atomic():
            ids = [m["message_id"] for m, _ in queries]
            PlatformMessage.delete().where(
                PlatformMessage.message_id.in_(ids)
                | (PlatformMessage.kind == "ecode.reply") & (PlatformMessage.recipient == PEER)
            ).execute()
            SmsMessage.delete().where(SmsMessage.body.contains("亮码可办")).execute()
            ECode.delete().where(ECode.id == row.id).execute()
        db.close()


# --- the depositor's page ------------------------------------------------------------------


def test_the_depositor_gets_a_code_with_consent(client, depositor):
    login_depositor(client, depositor)
    assert soup(client.get("/me/")).select_one("main a[href='/me/ecode/']") is not None
    page = soup(client.get("/me/ecode/"))
    assert page.select_one("#consent") is not None and page.select_one("#ecode-code") is None
    r = client.post("/me/ecode/", data={})
    assert r.status_code == 422
    assert "请先勾选授权" in soup(r).select_one("#consent-error").get_text()
    assert not ECode.select().where(ECode.depositor == depositor).exists()
    r = client.post("/me/ecode/", data={"consent": "y"})
    assert r.status_code == 303
    page = soup(client.get(r.headers["Location"]))
    row = ECode.get(ECode.depositor == depositor)
    assert page.select_one("#ecode-code").get_text(strip=True) == ecode.format_code(row.code)
    assert page.select_one("img.ecode-qr")["src"].startswith("data:image/svg+xml;base64,")
    assert "24:00" in page.select_one("#ecode-valid").get_text()
    live = page.select_one("#ecode-live")
    assert live["hx-trigger"] == "every 10s" and "X-Portal-Poll" in live["hx-headers"]


def test_the_code_page_answers_htmx_with_its_fragment(client, depositor):
    login_depositor(client, depositor)
    r = client.post("/me/ecode/", data={"consent": "y"}, headers=HX)
    assert r.status_code == 200 and "<html" not in r.get_data(as_text=True)
    assert soup(r).select_one("#ecode-code")
    r = client.get("/me/ecode/", headers=HX)
    assert "<html" not in r.get_data(as_text=True) and "HX-Request" in r.headers["Vary"]
    r = client.post("/me/ecode/", data={}, headers=HX)
    assert r.status_code == 200  # a code is valid: shown again, nothing asked


def test_the_depositor_sees_who_used_the_code_and_when(client, depositor):
    row = ecode.issue(depositor, "d", local_today())
    post_inbox(client, signed(_query(row.code)))
    login_depositor(client, depositor)
    page = soup(client.get("/me/ecode/"))
    assert page.select_one("#ecode-code") is None  # used up: the form again
    history = page.select_one("#ecode-history tbody tr").get_text(" ", strip=True)
    assert "已使用" in history and "北京住房公积金管理中心" in history and "李娜" in history
    assert row.code not in page.get_text()  # the used code is shown masked


def test_the_depositor_voids_a_code(client, depositor, other_depositor):
    mine = ecode.issue(depositor, "d", local_today())
    theirs = ecode.issue(other_depositor, "d", local_today())
    login_depositor(client, depositor)
    r = client.post(f"/me/ecode/{mine.id}/revoke")
    assert r.status_code == 303 and ECode.get_by_id(mine.id).revoked_at is not None
    assert client.post(f"/me/ecode/{theirs.id}/revoke").status_code == 404
    r = client.post(f"/me/ecode/{mine.id}/revoke", headers=HX)
    assert r.status_code == 409 and "已作废" in r.get_data(as_text=True)


def test_the_depositor_page_access(client):
    r = client.get("/me/ecode/")
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    login_staff(client, "clerk")
    assert client.get("/me/ecode/").status_code == 403


# --- the other center's counter (our clerk queries a peer's code) ---------------------------


@pytest.fixture
def peer_answers(monkeypatch):
    """The peer's inbox, played here: it checks our signed query and answers as the peer."""
    Center.update(exchange_url="http://127.0.0.1:9/platform/inbox").where(
        Center.code == PEER
    ).execute()
    state = {"outcome": "ok", "key": peer_key(), "calls": 0, "mismatch": False}
    table = {
        "name": "王小明",
        "id_no": "110105198503121234"[:17] + "X",
        "as_of": TODAY.isoformat(),
        "account": {
            "account_no": "110000123456",
            "status": "正常",
            "employer": "北京示例科技有限公司",
            "opened_on": "2015-07-01",
            "deposit_base": "12000.00",
            "employer_ratio": 12,
            "employee_ratio": 12,
            "monthly_amount": "2880.00",
            "paid_up_to": "2026-10",
            "balance": "186543.21",
        },
        "loans": [],
        "deposits": [
            {"posted_on": "2026-10-15", "kind": "汇缴", "period": "2026-10", "amount": "2880.00"}
        ],
    }

    def transport(url, data, message_id=""):
        state["calls"] += 1
        query, signature = read_zip(data)
        assert signing.verify(our_public_key(), messages.canonical(query), signature["signature"])
        assert query["type"] == "ecode.query" and query["recipient"] == PEER
        state["query"] = query
        if state["outcome"] == "down":
            raise transport_http.TransportError("对方拒绝连接（服务未启动或地址有误）")
        ref = "00000000-0000-4000-8000-00000000000f" if state["mismatch"] else query["message_id"]
        if state["outcome"] == "ok":
            payload = messages.ecode_reply_payload(ref, table=table, used_at=utcnow())
        else:
            payload = messages.ecode_reply_payload(
                ref, reason="业务码已过期（当日 24:00 失效），请缴存人重新生成"
            )
        reply = messages.build("ecode.reply", PEER, OURS, None, payload)
        return transport_http.Response(200, files.pack(reply, {}, state["key"]), "application/zip")

    monkeypatch.setattr(transport_http, "post", transport)
    return state


def test_the_clerk_fetches_the_information_table(client, peer_answers):
    login_staff(client, "clerk")
    page = soup(client.get("/staff/ecode/"))
    assert page.select_one("nav a[href='/staff/ecode/']")["aria-current"] == "page"
    r = client.post("/staff/ecode/", data={"code": "1100 0012 3456 7890"})
    assert r.status_code == 303
    assert peer_answers["query"]["payload"]["code"] == "1100001234567890"
    assert peer_answers["query"]["payload"]["clerk"]["name"] == staff("clerk").name
    page = soup(client.get(r.headers["Location"]))
    result = page.select_one("#ecode-result").get_text(" ", strip=True)
    assert "王小明" in result and "186543.21" in result and "北京示例科技有限公司" in result
    assert "110105198503121X" not in result and "1101**********" in result  # masked on screen
    lookup = ECodeLookup.get(ECodeLookup.staff == staff("clerk"))
    assert lookup.outcome == "ok" and lookup.code_hint == "110000******7890"
    assert (
        AuditLog.get(AuditLog.action == "ecode.lookup").detail["message_id"]
        == (peer_answers["query"]["message_id"])
    )
    sent = PlatformMessage.get(PlatformMessage.message_id == lookup.message_id)
    assert sent.direction == "out" and sent.kind == "ecode.query"
    assert (
        PlatformMessage.get(PlatformMessage.message_id == lookup.reply_message_id).direction == "in"
    )
    # htmx: the panel with the table at once
    r = client.post("/staff/ecode/", data={"code": "1100001234567891"}, headers=HX)
    assert r.status_code == 200 and "<html" not in r.get_data(as_text=True)
    second = ECodeLookup.select().order_by(ECodeLookup.id.desc()).first()
    assert r.headers["HX-Push-Url"] == f"/staff/ecode/{second.id}"
    assert soup(r).select_one("#ecode-result")
    assert len(soup(r).select("#ecode-recent tbody tr")) == 2


@pytest.mark.parametrize(
    "code, setup, message",
    [
        ("", None, "请输入申请人出示的业务码"),
        ("12345", None, "16 位数字"),
        ("1529001234567890", None, "本中心签发的业务码"),
        ("3200001234567890", None, "不在本中心的协作中心名单中"),
        ("1100001234567890", "refused", "业务码已过期"),
        ("1100001234567890", "down", "无法连接"),
        ("1100001234567890", "forged", "无法验证"),
        ("1100001234567890", "mismatch", "与本次查询不符"),
        ("1100001234567890", "file_peer", "尚未开通在线交换"),
    ],
)
def test_lookup_refusals_are_told_next_to_the_field(client, peer_answers, code, setup, message):
    if setup in ("refused", "down"):
        peer_answers["outcome"] = setup
    elif setup == "forged":
        peer_answers["key"] = signing.demo_peer_key("640100")
    elif setup == "mismatch":
        peer_answers["mismatch"] = True
    elif setup == "file_peer":
        Center.update(exchange_url="").where(Center.code == PEER).execute()
    login_staff(client, "clerk")
    r = client.post("/staff/ecode/", data={"code": code})
    assert r.status_code == 422
    assert message in soup(r).select_one("#code-error").get_text()
    assert soup(r).select_one("#ecode-result") is None


def test_only_the_clerk_who_looked_up_sees_it_again(app, client, peer_answers):
    login_staff(client, "clerk")
    client.post("/staff/ecode/", data={"code": "1100001234567890"})
    lookup = ECodeLookup.get(ECodeLookup.staff == staff("clerk"))
    assert client.get(f"/staff/ecode/{lookup.id}").status_code == 200
    client = app.test_client()
    login_staff(client, "handler")
    assert client.get(f"/staff/ecode/{lookup.id}").status_code == 404
    assert client.get("/staff/ecode/").status_code == 200


@pytest.mark.parametrize(
    "username, status",
    [("clerk", 200), ("handler", 200), ("liaison", 403), ("admin", 403), ("auditor", 403)],
)
def test_the_counter_page_access(client, username, status):
    login_staff(client, username)
    assert client.get("/staff/ecode/").status_code == status


def test_the_counter_page_is_not_for_depositors(client, depositor):
    assert client.get("/staff/ecode/").status_code == 302
    login_depositor(client, depositor)
    assert client.get("/staff/ecode/").status_code == 403
