"""The 跨省通办 items: one configuration read by the counter checklist, the deadlines and the
public service guides (DESIGN.md section 2, the guide's section 一 and 二)."""

from __future__ import annotations

from dataclasses import dataclass, field

OUTBOUND_VERIFY_WORKDAYS = 7  # accepting center: verify and transmit (guide 二(二)4)
INBOUND_DONE_WORKDAYS = 3  # deposit-place center: done and fed back (guide 二(一)5)


@dataclass(frozen=True)
class Material:
    code: str
    name: str
    note: str = ""


@dataclass(frozen=True)
class Item:
    code: str
    name: str
    short: str
    audience: str  # depositor / employer
    online: bool  # 全程网办 for our own depositors
    online_endpoint: str | None = None  # where the online hall serves it
    materials: tuple[Material, ...] = field(default_factory=tuple)
    extra_forms: tuple[str, ...] = ()


_ID = Material("id_card", "居民身份证原件及复印件")
_FORM = Material("application_form", "《“跨省通办”业务办理申请表》")
_AUTH = Material("query_authorization", "《查询授权书》（一式两份）")

ITEMS: tuple[Item, ...] = (
    Item(
        "query",
        "个人住房公积金缴存贷款等信息查询",
        "信息查询",
        "depositor",
        True,
        "hall.account",
        (_ID, _FORM, _AUTH),
    ),
    Item(
        "usage_certificate",
        "出具贷款职工住房公积金缴存使用证明",
        "缴存使用证明",
        "depositor",
        True,
        "hall.certificates",
        (_ID, _FORM, _AUTH),
    ),
    Item(
        "retirement_withdrawal",
        "正常退休提取住房公积金",
        "退休提取",
        "depositor",
        True,
        "hall.retirement",
        (
            _ID,
            _FORM,
            Material("retirement_proof", "退休证明或社保退休待遇核定材料"),
            Material("bank_card", "本人银行借记卡"),
        ),
    ),
    Item(
        "employer_registration",
        "住房公积金单位登记开户",
        "单位登记开户",
        "employer",
        False,
        None,
        (
            _FORM,
            Material("business_license", "营业执照或批准成立文件"),
            Material("legal_rep_id", "法定代表人身份证复印件"),
            Material("operator_id", "经办人身份证原件及授权委托书"),
        ),
    ),
    Item(
        "employer_change",
        "住房公积金单位缴存信息变更",
        "单位缴存信息变更",
        "employer",
        True,
        "employer.changes",
        (
            _FORM,
            Material("change_proof", "变更事项证明材料（加盖单位公章）"),
            Material("operator_id", "经办人身份证原件及授权委托书"),
        ),
    ),
    Item(
        "individual_change",
        "住房公积金个人缴存信息变更",
        "个人缴存信息变更",
        "depositor",
        True,
        "hall.changes",
        (_ID, _FORM, Material("change_proof", "变更事项证明材料")),
    ),
    Item(
        "purchase_withdrawal",
        "购房提取住房公积金",
        "购房提取",
        "depositor",
        False,
        None,
        (
            _ID,
            _FORM,
            Material("purchase_contract", "购房合同或不动产权证书"),
            Material("payment_invoice", "购房发票或首付款证明"),
            Material("marriage_proof", "婚姻状况证明（配偶共同提取时）"),
            Material("bank_card", "本人银行借记卡"),
        ),
        ("购房提取材料核实情况表",),
    ),
    Item(
        "settlement_certificate",
        "开具住房公积金个人住房贷款全部还清证明",
        "贷款结清证明",
        "depositor",
        False,
        None,
        (_ID, _FORM, Material("loan_contract", "借款合同编号或借款合同")),
    ),
    Item(
        "early_repayment",
        "提前还清住房公积金贷款",
        "提前还清贷款",
        "depositor",
        True,
        "hall.loans",
        (_ID, _FORM, Material("loan_contract", "借款合同编号或借款合同")),
    ),
)

BY_CODE = {item.code: item for item in ITEMS}


def get(code: str) -> Item:
    try:
        return BY_CODE[code]
    except KeyError:
        raise KeyError(f"unknown item {code!r}") from None


def proxy_items() -> list[Item]:
    """Items that reach the boards as cases for our own depositors (not online here)."""
    return [item for item in ITEMS if not item.online]
