"""The counter's printable documents, in the portal's one PDF layout (``portal.pdf``).

Forms printed for the applicant's signature carry the full resident ID (the deposit-place
center matches people by it); the receipt and the notice, which the applicant carries
around, show it masked. Each document is rendered from the case's recorded data, so a
reprint reads the same as the first print.
"""

from __future__ import annotations

from dataclasses import dataclass

from portal import items
from portal.documents import Document
from portal.models import Center, Department, ProxyCase
from portal.rules.ids import mask_phone, mask_resident_id
from portal.rules.workdays import deadline_is_estimated
from portal.services.counter import HOTLINE, application_rows, document_kinds

APPLICATION_TITLE = "“跨省通办”业务办理申请表"
AUTHORIZATION_TITLE = "查询授权书"
VERIFICATION_TITLE = "购房提取材料核实情况表"
NOTICE_TITLE = "一次性告知书"
RECEIPT_TITLE = "“跨省通办”业务受理回执"
TITLES = {
    "application": APPLICATION_TITLE,
    "authorization": AUTHORIZATION_TITLE,
    "verification": VERIFICATION_TITLE,
    "notice": NOTICE_TITLE,
    "receipt": RECEIPT_TITLE,
}


class NotAvailable(Exception):
    """This document does not exist for this case (e.g. no notice without missing materials)."""


@dataclass
class _Parties:
    center: Center  # the other (deposit-place) center
    department: Department | None
    item: items.Item


def _parties(case: ProxyCase) -> _Parties:
    department = Department.get_or_none(Department.id == case.department_id)
    return _Parties(Center.get_by_id(case.center_id), department, items.get(case.item))


def _d(day) -> str:
    return f"{day:%Y年%m月%d日}" if day else "—"


def _deadline_text(case: ProxyCase) -> str:
    text = _d(case.deadline)
    if deadline_is_estimated(case.clock_start, case.deadline):
        text += "（预计）"
    return text


def application_form(case: ProxyCase, center_name: str) -> bytes:
    """《“跨省通办”业务办理申请表》, filled from the counter form, for signature."""
    p = _parties(case)
    doc = Document(center_name, APPLICATION_TITLE, number=case.case_no, issued_on=case.clock_start)
    doc.heading("一、申请人信息")
    doc.fields(
        [
            ("申请人姓名", case.applicant_name),
            ("身份证号码", case.applicant_id_no),
            ("联系电话", case.applicant_phone),
            ("缴存地公积金中心", p.center.name),
        ]
    )
    doc.heading("二、申请事项")
    doc.fields([("办理事项", p.item.name), *application_rows(case, masked=False)], label_width=58)
    doc.heading("三、受理信息")
    doc.fields(
        [
            ("受理地公积金中心", center_name),
            ("受理部门", p.department.name if p.department else ""),
            ("受理日期", _d(case.clock_start)),
            ("受理编号", case.case_no),
        ]
    )
    doc.paragraph(
        "本人承诺：所填信息及提交的材料真实、准确、完整，如有虚假，愿承担相应法律责任。"
        f"本人同意由{center_name}代为收取申请材料，并通过全国住房公积金监管服务平台"
        f"传递至{p.center.name}办理。",
        size=10,
    )
    doc.signatures(["申请人（签字）", "受理人（签字）"])
    doc.paragraph("日期：______年____月____日", size=10)
    return doc.output()


def _authorization_body(doc: Document, case: ProxyCase, p: _Parties, center_name: str) -> None:
    doc.fields(
        [
            ("授权人", case.applicant_name),
            ("身份证号码", case.applicant_id_no),
            ("被授权机构", f"{center_name}、{p.center.name}"),
            ("办理事项", p.item.name),
        ]
    )
    doc.paragraph(
        f"本人{case.applicant_name}（身份证号码：{case.applicant_id_no}）授权{center_name}"
        f"及{p.center.name}，通过全国住房公积金监管服务平台查询、核验本人的住房公积金缴存、"
        f"贷款、提取等信息，仅用于办理“{p.item.name}”业务。"
        "授权期限自签署之日起至该业务办结之日止。被授权机构应对查询所得信息保密。"
    )
    doc.signatures(["授权人（签字）", "日期"])


def query_authorization(case: ProxyCase, center_name: str) -> bytes:
    """《查询授权书》, one copy per page: 一式两份 (the accepting and the deposit-place center)."""
    p = _parties(case)
    doc = Document(
        center_name, AUTHORIZATION_TITLE, number=case.case_no, issued_on=case.clock_start
    )
    doc.paragraph("第一联：受理地公积金中心留存（一式两份）", size=9)
    _authorization_body(doc, case, p, center_name)
    doc.copy_page(AUTHORIZATION_TITLE, case.case_no, "第二联：缴存地公积金中心留存")
    _authorization_body(doc, case, p, center_name)
    return doc.output()


def purchase_verification(case: ProxyCase, center_name: str) -> bytes:
    """《购房提取材料核实情况表》 for home-purchase withdrawal."""
    p = _parties(case)
    if "购房提取材料核实情况表" not in p.item.extra_forms:
        raise NotAvailable("只有购房提取需要材料核实情况表")
    data = case.application or {}
    doc = Document(center_name, VERIFICATION_TITLE, number=case.case_no, issued_on=case.clock_start)
    doc.fields(
        [
            ("申请人", case.applicant_name),
            ("身份证号码", case.applicant_id_no),
            ("缴存地公积金中心", p.center.name),
            ("购房合同或不动产权证书编号", data.get("contract_no", "")),
            ("购房日期", data.get("purchase_date", "")),
            ("房屋总价（元）", data.get("price", "")),
            ("房屋坐落", data.get("property_address", "")),
        ],
        label_width=58,
    )
    checklist = case.checklist or {}
    rows = [
        [
            str(i),
            m.name,
            "是" if checklist.get(m.code) else "否",
            "原件已核验，复印件与原件一致" if checklist.get(m.code) else "未提供，已一次性告知",
        ]
        for i, m in enumerate(p.item.materials, start=1)
    ]
    doc.table(["序号", "材料名称", "是否提供", "核实情况"], rows, [12, 78, 20, 60], align="CLCL")
    doc.paragraph("核实意见：____________________________________________________________")
    doc.signatures(["核实人（签字）", "复核人（签字）"])
    doc.paragraph("日期：______年____月____日", size=10)
    return doc.output()


def one_time_notice(case: ProxyCase, center_name: str) -> bytes:
    """《一次性告知书》: every missing material, told once, all together."""
    if not case.missing_materials:
        raise NotAvailable("该办件没有需要补正的材料")
    p = _parties(case)
    issued = case.paused_since or case.clock_start
    doc = Document(center_name, NOTICE_TITLE, number=case.case_no, issued_on=issued)
    doc.paragraph(
        f"{case.applicant_name}（身份证号码：{mask_resident_id(case.applicant_id_no)}）：",
    )
    doc.paragraph(
        f"您于{_d(case.clock_start)}申请办理的“{p.item.name}”业务（受理编号：{case.case_no}，"
        f"缴存地：{p.center.name}），经窗口审核，尚需补正下列材料。"
        "现一次性告知如下，请您备齐后到受理窗口一并提交。补正期间不计入办理时限。"
    )
    doc.table(
        ["序号", "需补正的材料"],
        [[str(i), name] for i, name in enumerate(case.missing_materials, start=1)],
        [16, 154],
        align="CL",
    )
    contact = [("受理部门", p.department.name if p.department else center_name)]
    if p.department:
        contact += [("地址", p.department.address), ("联系电话", p.department.phone)]
    contact.append(("服务热线", HOTLINE))
    doc.fields(contact)
    doc.seal(on=issued)
    return doc.output()


def receipt(case: ProxyCase, center_name: str, track_url: str) -> bytes:
    """《“跨省通办”业务受理回执》 with the receipt number the applicant tracks the case by."""
    p = _parties(case)
    doc = Document(center_name, RECEIPT_TITLE, number=case.receipt_no, issued_on=case.clock_start)
    rows = [
        ("回执编号", case.receipt_no),
        ("受理编号", case.case_no),
        ("申请人", case.applicant_name),
        ("身份证号码", mask_resident_id(case.applicant_id_no)),
        ("联系电话", mask_phone(case.applicant_phone)),
        ("办理事项", p.item.name),
        ("缴存地公积金中心", p.center.name),
        ("受理日期", _d(case.clock_start)),
        ("受理部门", p.department.name if p.department else ""),
    ]
    if case.missing_materials:
        rows.append(("办理状态", "待补正：请按《一次性告知书》补齐材料，补正期间不计时"))
    else:
        rows.append(
            (
                "办理时限",
                f"自受理之日起{items.OUTBOUND_VERIFY_WORKDAYS}个工作日内核实并传递至缴存地中心"
                f"（{_deadline_text(case)}前）；缴存地中心自确认接收起"
                f"{items.INBOUND_DONE_WORKDAYS}个工作日内办结",
            )
        )
    doc.fields(rows)
    doc.qr(
        track_url,
        f"凭回执编号和身份证号码查询办理进度：\n{track_url}\n或拨打服务热线 {HOTLINE}",
    )
    doc.seal(on=case.clock_start)
    return doc.output()


def render(kind: str, case: ProxyCase, center_name: str, track_url: str) -> tuple[str, bytes]:
    """(download filename, bytes) of one of the case's documents; NotAvailable otherwise."""
    if kind not in document_kinds(case):
        raise NotAvailable("该办件没有此文书")
    if kind == "application":
        data = application_form(case, center_name)
    elif kind == "authorization":
        data = query_authorization(case, center_name)
    elif kind == "verification":
        data = purchase_verification(case, center_name)
    elif kind == "notice":
        data = one_time_notice(case, center_name)
    else:
        data = receipt(case, center_name, track_url)
    return f"{TITLES[kind].replace('“', '').replace('”', '')}-{case.case_no}.pdf", data
