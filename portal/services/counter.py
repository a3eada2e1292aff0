"""The counter (窗口受理): guide the applicant to their own center's online channel, or accept
an outbound proxy case (DESIGN.md section 4, outbound step 0 and 1; the guide's 二(二)).

The materials checklist comes from ``portal.items``; the application fields each item asks
for are defined here once and read by the counter form and the printed application form.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import date
from typing import NamedTuple

from peewee import JOIN, IntegrityError, fn

from portal import items
from portal.db import Prepared, Shapes, db, is_postgres, write_tx
from portal.models import CaseEvent, Center, Department, ProxyCase, StaffUser
from portal.rules import casestates
from portal.rules.casestates import OUTBOUND, PAUSED
from portal.rules.ids import (
    is_valid_resident_id,
    mask_bank_card,
    mask_phone,
    mask_resident_id,
    normalize_resident_id,
)
from portal.rules.workdays import add_workdays
from portal.services import audit
from portal.services.cases import Assignee, visibility, visible_by_kind, visible_clause

ACCEPT_ROLES = ("clerk", "handler")
VIEW_ROLES = ("clerk", "handler", "liaison", "auditor")
HOTLINE = "12329"


class Refused(Exception):
    """The counter cannot do this; the message says why, in Chinese."""


# --- what each item asks on the application form ------------------------------------------


@dataclass(frozen=True)
class AppField:
    key: str
    label: str
    kind: str = "text"  # text / textarea / date / money / uscc / card / choice
    required: bool = True
    choices: tuple[str, ...] = ()
    hint: str = ""
    max_length: int = 100


_EMPLOYER = (
    AppField("employer_name", "单位名称", max_length=120),
    AppField("credit_code", "统一社会信用代码", "uscc", hint="18 位，含校验位"),
)
_BANK = (
    AppField("bank_name", "收款银行", max_length=40),
    AppField("bank_card", "收款银行卡号", "card", hint="申请人本人的借记卡"),
)
_LOAN = AppField("loan_contract_no", "借款合同编号", max_length=40)

APPLICATION_FIELDS: dict[str, tuple[AppField, ...]] = {
    "query": (
        AppField("scope", "查询内容", "choice", choices=("缴存信息", "贷款信息", "缴存和贷款信息")),
        AppField("purpose", "查询用途", required=False),
    ),
    "usage_certificate": (
        AppField("addressee", "出具对象", hint="拟申请贷款的公积金中心或银行", max_length=100),
        AppField("purpose", "用途", required=False),
    ),
    "retirement_withdrawal": (AppField("retired_on", "退休日期", "date"), *_BANK),
    "employer_registration": (
        *_EMPLOYER,
        AppField("employer_address", "单位地址", max_length=200),
        AppField("legal_rep", "法定代表人", max_length=40),
    ),
    "employer_change": (
        *_EMPLOYER,
        AppField("change_items", "变更事项及变更后内容", "textarea", max_length=500),
    ),
    "individual_change": (
        AppField("change_items", "变更事项及变更后内容", "textarea", max_length=500),
    ),
    "purchase_withdrawal": (
        AppField("contract_no", "购房合同或不动产权证书编号", max_length=60),
        AppField("purchase_date", "购房日期", "date"),
        AppField("price", "房屋总价（元）", "money"),
        AppField("property_address", "房屋坐落", max_length=200),
        *_BANK,
    ),
    "settlement_certificate": (_LOAN, AppField("lending_bank", "贷款银行", required=False)),
    "early_repayment": (_LOAN,),
}


def application_fields(item_code: str) -> tuple[AppField, ...]:
    return APPLICATION_FIELDS.get(item_code, ())


def application_rows(case: ProxyCase, masked: bool = True) -> list[tuple[str, str]]:
    """(label, value) of the case's application data, in the item's field order; bank cards
    masked unless ``masked`` is False (the application form printed for signature)."""
    data = case.application or {}

    def value(spec: AppField) -> str:
        text = str(data.get(spec.key, "") or "")
        return mask_bank_card(text) if masked and spec.kind == "card" and text else text

    rows = [(f.label, value(f)) for f in application_fields(case.item)]
    known = {f.key for f in application_fields(case.item)} | {"item", "note"}
    rows += [(str(k), str(v)) for k, v in data.items() if k not in known and v not in ("", None)]
    if data.get("note"):
        rows.append(("备注", str(data["note"])))
    return rows


# --- guide or accept ----------------------------------------------------------------------


@dataclass
class Guidance:
    """The applicant's own center offers the item online: send them there."""

    center_name: str
    item_name: str
    hall_url: str
    hotline: str
    phone: str


class PeerCenter(NamedTuple):
    code: str
    name: str


# The other centers, for the acceptance form and the ledger's filter (issue 10: built once).
_PEER_CENTERS = Prepared(
    lambda: (
        Center.select(Center.code, Center.name)
        .where(~Center.is_self & Center.active)
        .order_by(Center.code)
        .tuples()
    ),
    0,
)


def peer_centers() -> list[PeerCenter]:
    """The active centers other than this one, by code."""
    return [PeerCenter._make(row) for row in _PEER_CENTERS.all()]


def peer(code: str) -> Center:
    center = Center.get_or_none(
        (Center.code == (code or "").strip()) & ~Center.is_self & Center.active
    )
    if center is None:
        raise Refused("请选择申请人的缴存地公积金中心")
    return center


def item(code: str) -> items.Item:
    try:
        return items.get(code)
    except KeyError:
        raise Refused("请选择办理事项") from None


def guidance(item_code: str, center: Center) -> Guidance | None:
    """Where ``center`` offers the item fully online (guide 二(二)1), how to reach it."""
    the_item = item(item_code)
    if not center.offers_online(the_item.code):
        return None
    return Guidance(
        center_name=center.name,
        item_name=the_item.name,
        hall_url=center.hall_url,
        hotline=HOTLINE,
        phone=center.phone or HOTLINE,
    )


def record_guidance(user: StaffUser, actor: str, item_code: str, center_code: str) -> Guidance:
    """The clerk sent the applicant to their center's online channel (for the statistics)."""
    center = peer(center_code)
    guide = guidance(item_code, center)
    if guide is None:
        raise Refused("该中心未开通此事项的全程网办，请受理")
    with write_tx():
        audit.record(
            actor,
            "counter.guided",
            "center",
            center.code,
            item=item_code,
            department=user.department_id,
        )
    return guide


@dataclass
class Application:
    item: str
    center: str
    applicant_name: str
    applicant_id_no: str
    applicant_phone: str
    fields: dict[str, str] = field(default_factory=dict)
    presented: set[str] = field(default_factory=set)  # material codes checked at the window
    override_reason: str = ""


def new_numbers(today: date) -> tuple[str, str]:
    """Next case number of the day (KS + date + sequence) and an unguessable receipt number
    (HZ + date + 8 random digits): the receipt number is what the applicant tracks with."""
    prefix = f"KS{today:%Y%m%d}"
    last = (
        ProxyCase.select(fn.MAX(ProxyCase.case_no))
        .where(ProxyCase.case_no.startswith(prefix))
        .scalar()
    )
    seq = int(last[len(prefix) :]) + 1 if last and last[len(prefix) :].isdigit() else 1
    receipt = f"HZ{today:%Y%m%d}{secrets.randbelow(10**8):08d}"
    return f"{prefix}{seq:04d}", receipt


_NUMBER_LOCK = 152900_0006  # PostgreSQL advisory lock: one case numbering at a time


def create_numbered(today: date, **fields) -> ProxyCase:
    """Create a case with fresh numbers. Call inside a transaction: on PostgreSQL an advisory
    transaction lock makes concurrent numberings take turns (SQLite's ``write_tx`` already
    holds the write lock); a clash that still happens is retried in a savepoint."""
    if is_postgres():
        db.execute_sql("SELECT pg_advisory_xact_lock(%s)", (_NUMBER_LOCK,))
    for attempt in range(5):
        case_no, receipt_no = new_numbers(today)
        try:
            with db.atomic():
                return ProxyCase.create(case_no=case_no, receipt_no=receipt_no, **fields)
        except IntegrityError:
            if attempt == 4:
                raise
    raise AssertionError("unreachable")


def accept(
    user: StaffUser, actor: str, application: Application, today: date, overrides=None
) -> ProxyCase:
    """Open an outbound case at this window: 窗口受理, or 待补正 when materials are missing
    (the one-time notice lists them all; the clock waits)."""
    if user.role not in ACCEPT_ROLES:
        raise Refused("只有窗口经办和管理部经办可以受理")
    if user.department_id is None:
        raise Refused("您未归属管理部，不能在窗口受理")
    the_item = item(application.item)
    center = peer(application.center)
    reason = (application.override_reason or "").strip()
    if center.offers_online(the_item.code) and not reason:
        raise Refused(f"{center.name}已开通该事项的全程网办，请引导申请人线上办理")
    id_no = normalize_resident_id(application.applicant_id_no)
    if not is_valid_resident_id(id_no, today):
        raise Refused("身份证号码格式不正确")
    name = (application.applicant_name or "").strip()
    if not name:
        raise Refused("请填写申请人姓名")
    specs = application_fields(the_item.code)
    data = {}
    for spec in specs:
        value = str(application.fields.get(spec.key, "") or "").strip()
        if spec.required and not value:
            raise Refused(f"请填写{spec.label}")
        data[spec.key] = value
    checklist = {m.code: m.code in application.presented for m in the_item.materials}
    missing = [m.name for m in the_item.materials if not checklist[m.code]]
    state = PAUSED if missing else "accepted"
    department = Department.get_by_id(user.department_id)
    with write_tx():
        case = create_numbered(
            today,
            item=the_item.code,
            direction=OUTBOUND,
            state=state,
            center=center,
            applicant_name=name,
            applicant_id_no=id_no,
            applicant_phone=(application.applicant_phone or "").strip(),
            application=data,
            checklist=checklist,
            department=department,
            accepted_by=user,
            clock_start=today,
            deadline=add_workdays(today, items.OUTBOUND_VERIFY_WORKDAYS, overrides),
            paused_since=today if missing else None,
            missing_materials=missing,
        )
        event = {"checklist": checklist}
        if missing:
            event.update(missing=missing, notice="一次性告知")
        if center.offers_online(the_item.code):
            event["guide_override"] = reason
        CaseEvent.create(
            case=case,
            actor=user,
            actor_label=user.name,
            action="create",
            to_state=state,
            data=event,
        )
        audit.record(
            actor,
            "case.accept",
            "proxy_case",
            case.id,
            case_no=case.case_no,
            item=the_item.code,
            center=center.code,
            state=state,
            missing=len(missing),
            guide_override=bool(center.offers_online(the_item.code)),
        )
    return case


# --- reading cases at the counter ---------------------------------------------------------


def visible_case(user: StaffUser, case_no: str) -> ProxyCase | None:
    """The case if this staff member may see it (the board's one visibility rule: the liaison
    and the auditor every case, handlers their department's, clerks their department's
    outbound cases); anyone else's case is None (404)."""
    return ProxyCase.get_or_none(
        (ProxyCase.case_no == (case_no or "").strip()) & visible_clause(user)
    )


@dataclass
class Document:
    kind: str
    title: str
    note: str = ""


def documents(case: ProxyCase) -> list[Document]:
    """The printable PDFs of an outbound case (forms for signature, notice, receipt)."""
    if case.direction != OUTBOUND:
        return []
    docs = [
        Document("application", "《“跨省通办”业务办理申请表》", "申请人签字"),
        Document("authorization", "《查询授权书》", "一式两份，申请人签字"),
    ]
    if "购房提取材料核实情况表" in items.get(case.item).extra_forms:
        docs.append(Document("verification", "《购房提取材料核实情况表》", "窗口核实后签字"))
    if case.missing_materials:
        docs.append(Document("notice", "《一次性告知书》", "列明全部需补正材料"))
    docs.append(Document("receipt", "《“跨省通办”业务受理回执》", "交申请人，凭回执编号查询进度"))
    return docs


def document_kinds(case: ProxyCase) -> set[str]:
    return {d.kind for d in documents(case)}


@dataclass
class RecentCase:
    case_no: str
    item: str
    applicant_name: str
    center_name: str
    state: str
    direction: str
    clock_start: date


def recent_cases(user: StaffUser, limit: int = 10) -> list[RecentCase]:
    """The latest outbound cases accepted at this user's department's window, by acceptance
    day (the clock's start), newest first. Read in the order of the acceptance-day index
    where the planner sees it pays (issue 10: sorting by ``created_at`` sorted every case the
    window ever accepted, 15 ms on the large dataset; a new index on the department for it
    was then taken for the boards' queries and made them slower)."""
    if not user.department_id:
        return []
    rows = (
        ProxyCase.select(ProxyCase, Center)
        .join(Center)
        .where((ProxyCase.direction == OUTBOUND) & (ProxyCase.department == user.department_id))
        .order_by(ProxyCase.clock_start.desc(), ProxyCase.id.desc())
        .limit(limit)
    )
    return [
        RecentCase(
            c.case_no, c.item, c.applicant_name, c.center.name, c.state, c.direction, c.clock_start
        )
        for c in rows
    ]


# --- the ledger (业务办理台账) --------------------------------------------------------------

LEDGER_ROLES = ("liaison", "clerk", "handler", "auditor")
LEDGER_PAGE_SIZE = 25  # issue 10: a month of a busy center is a page at a time
LEDGER_EXPORT_LIMIT = 20000


@dataclass
class LedgerQuery:
    date_from: date | None = None
    date_to: date | None = None
    item: str = ""
    direction: str = ""
    state: str = ""
    center: str = ""

    def as_args(self) -> dict[str, str]:
        """The filters as query-string arguments (empty ones left out)."""
        args = {
            "date_from": self.date_from.isoformat() if self.date_from else "",
            "date_to": self.date_to.isoformat() if self.date_to else "",
            "item": self.item,
            "direction": self.direction,
            "state": self.state,
            "center": self.center,
        }
        return {k: v for k, v in args.items() if v}


@dataclass(frozen=True)
class LedgerRow:
    """One row of the ledger, a value (its HTML is kept under it: ``ledger.ledger_row_html``)."""

    case_no: str
    receipt_no: str
    direction: str
    item: str
    applicant_name: str
    applicant_id_masked: str
    applicant_phone_masked: str
    center_name: str
    department_name: str
    state: str
    state_label: str
    clock_start: date
    deadline: date
    accepted_by: str
    assignee: str
    tracking_no: str
    created_at: object


@dataclass
class LedgerPage:
    rows: list[LedgerRow]
    total: int
    page: int
    pages: int
    query: LedgerQuery


# What a ledger row shows, read as plain rows (issue 10: not the application or the checklist,
# which are large JSON documents decoded for every row otherwise; tuples, not model instances).
class _LedgerRecord(NamedTuple):
    case_no: str
    receipt_no: str
    direction: str
    item: str
    applicant_name: str
    applicant_id_no: str
    applicant_phone: str
    state: str
    clock_start: date
    deadline: date
    tracking_no: str | None
    created_at: object
    center_name: str
    department_name: str | None
    accepted_by: str | None
    assignee: str | None


_Acceptor = StaffUser.alias()  # the case's assignee is cases.Assignee
_LEDGER_COLUMNS = (
    *(getattr(ProxyCase, name) for name in _LedgerRecord._fields[:12]),
    Center.name,
    Department.name,
    _Acceptor.name,
    Assignee.name,
)


_LEDGER_FILTERS = ("date_from", "date_to", "item", "direction", "state", "center")


def _ledger_where(kind: str, dept, q: LedgerQuery):
    """The ledger's WHERE clause: a visibility kind and department (see
    ``cases.visible_by_kind``) and the filters of ``q`` that are set; the values may be
    prepared Slots."""
    cond = visible_by_kind(kind, dept)
    if q.date_from:
        cond &= ProxyCase.clock_start >= q.date_from
    if q.date_to:
        cond &= ProxyCase.clock_start <= q.date_to
    if q.item:
        cond &= ProxyCase.item == q.item
    if q.direction:
        cond &= ProxyCase.direction == q.direction
    if q.state:
        cond &= ProxyCase.state == q.state
    if q.center:
        cond &= Center.code == q.center
    return cond


def _ledger_select(kind: str, dept, q: LedgerQuery):
    return (
        ProxyCase.select(*_LEDGER_COLUMNS)
        .join(Center, on=(ProxyCase.center == Center.id))
        .switch(ProxyCase)
        .join(Department, JOIN.LEFT_OUTER, on=(ProxyCase.department == Department.id))
        .switch(ProxyCase)
        .join(_Acceptor, JOIN.LEFT_OUTER, on=(ProxyCase.accepted_by == _Acceptor.id))
        .switch(ProxyCase)
        .join(Assignee, JOIN.LEFT_OUTER, on=(ProxyCase.assignee == Assignee.id))
        .where(_ledger_where(kind, dept, q))
        .tuples()
    )


def _ledger_count_query(kind: str, dept, q: LedgerQuery):
    """How many cases the filters give: the cases alone (every case has its center; the
    department does not narrow), joined with the centers only to filter by one."""
    query = ProxyCase.select(fn.COUNT(ProxyCase.id))
    if q.center:
        query = query.join(Center, on=(ProxyCase.center == Center.id))
    return query.where(_ledger_where(kind, dept, q))


# The ledger's page and count, built once per shape: a visibility kind and which filters are
# set (issue 10: building the SQL cost as much as running it). The values are the department,
# the six filters (those not set are not used) and, for the page, the limit and offset.
def _slotted(shape, slots) -> tuple[str, object, LedgerQuery]:
    kind, present = shape
    dept, *values = slots
    q = LedgerQuery(
        **{name: v for name, v in zip(_LEDGER_FILTERS, values, strict=True) if name in present}
    )
    return kind, dept, q


_LEDGER_COUNT = Shapes(lambda shape, *slots: _ledger_count_query(*_slotted(shape, slots)), 7)
_LEDGER_PAGE = Shapes(
    lambda shape, *slots: (
        _ledger_select(*_slotted(shape, slots[:7]))
        .order_by(ProxyCase.clock_start.desc(), ProxyCase.id.desc())
        .limit(slots[7])
        .offset(slots[8])
    ),
    9,
)


def _ledger_shape(user: StaffUser, q: LedgerQuery) -> tuple[tuple, list]:
    kind, dept = visibility(user)
    present = tuple(name for name in _LEDGER_FILTERS if getattr(q, name))
    return (kind, present), [dept, *(getattr(q, name) or None for name in _LEDGER_FILTERS)]


def _ledger_rows(rows) -> list[LedgerRow]:
    out = []
    for row in rows:
        c = _LedgerRecord._make(row)
        out.append(
            LedgerRow(
                case_no=c.case_no,
                receipt_no=c.receipt_no,
                direction=c.direction,
                item=c.item,
                applicant_name=c.applicant_name,
                applicant_id_masked=mask_resident_id(c.applicant_id_no),
                applicant_phone_masked=mask_phone(c.applicant_phone),
                center_name=c.center_name,
                department_name=c.department_name or "",
                state=c.state,
                state_label=casestates.label(c.direction, c.state),
                clock_start=c.clock_start,
                deadline=c.deadline,
                accepted_by=c.accepted_by or "",
                assignee=c.assignee or "",
                tracking_no=c.tracking_no,
                created_at=c.created_at,
            )
        )
    return out


def ledger_page(user: StaffUser, q: LedgerQuery, page: int = 1) -> LedgerPage:
    """One page of the ledger (newest first) for this user's view of the cases."""
    shape, values = _ledger_shape(user, q)
    total = _LEDGER_COUNT[shape].scalar(*values) or 0
    pages = max(1, -(-total // LEDGER_PAGE_SIZE))
    page = min(max(1, page), pages)
    offset = (page - 1) * LEDGER_PAGE_SIZE
    rows = _ledger_rows(_LEDGER_PAGE[shape].all(*values, LEDGER_PAGE_SIZE, offset))
    return LedgerPage(rows, total, page, pages, q)


LEDGER_COLUMNS = (
    ("序号", 6),
    ("办件编号", 18),
    ("回执编号", 20),
    ("方向", 10),
    ("办理事项", 30),
    ("申请人", 10),
    ("身份证号码", 21),
    ("联系电话", 14),
    ("对方中心", 26),
    ("管理部", 18),
    ("状态", 10),
    ("受理/接收日期", 14),
    ("办理期限", 12),
    ("受理人", 10),
    ("经办人", 10),
    ("邮寄单号", 16),
)


def ledger_xlsx(
    user: StaffUser,
    actor: str,
    q: LedgerQuery,
    today: date,
    *,
    limit: int | None = LEDGER_EXPORT_LIMIT,
    progress=None,
) -> bytes:
    """The filtered ledger as an Excel workbook; identifiers masked as on screen.

    ``limit=None`` and ``progress(percent)`` serve the background export (services.jobs)."""
    from io import BytesIO

    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    query = _ledger_select(*visibility(user), q).order_by(ProxyCase.clock_start, ProxyCase.id)
    rows = _ledger_rows(query.limit(limit) if limit else query)
    if progress:
        progress(20)
    wb = Workbook()
    ws = wb.active
    ws.title = "业务办理台账"
    ws.append([title for title, _w in LEDGER_COLUMNS])
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for index, (_title, width) in enumerate(LEDGER_COLUMNS, start=1):
        ws.column_dimensions[get_column_letter(index)].width = width
    ws.freeze_panes = "A2"
    for n, r in enumerate(rows, start=1):
        ws.append(
            [
                n,
                r.case_no,
                r.receipt_no,
                "外地业务" if r.direction == OUTBOUND else "本地业务",
                items.get(r.item).name,
                r.applicant_name,
                r.applicant_id_masked,
                r.applicant_phone_masked,
                r.center_name,
                r.department_name,
                r.state_label,
                r.clock_start,
                r.deadline,
                r.accepted_by,
                r.assignee,
                r.tracking_no,
            ]
        )
        ws.cell(row=n + 1, column=12).number_format = "yyyy-mm-dd"
        ws.cell(row=n + 1, column=13).number_format = "yyyy-mm-dd"
        if progress and n % 500 == 0:
            progress(20 + 70 * n // len(rows))
    wb.properties.title = "业务办理台账"
    wb.properties.creator = "hpf-portal"
    buffer = BytesIO()
    wb.save(buffer)
    with write_tx():
        audit.record(
            actor,
            "ledger.export",
            "ledger",
            "",
            rows=len(rows),
            filters=q.as_args(),
            on=today.isoformat(),
        )
    return buffer.getvalue()
