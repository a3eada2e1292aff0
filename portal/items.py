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


# --- what the public service guides (办事指南) add to the configuration above ---------------

ONLINE_CHANNELS = {
    "query": ("网上业务大厅", "手机APP", "微信公众号", "官方网站", "12329热线"),
    "usage_certificate": ("网上业务大厅", "手机APP", "官方网站"),
    "retirement_withdrawal": ("网上业务大厅", "手机APP", "官方网站"),
    "early_repayment": ("网上业务大厅", "手机APP", "官方网站"),
    "employer_change": ("单位网上业务大厅", "官方网站"),
    "individual_change": ("网上业务大厅", "手机APP", "官方网站"),
}

ELIGIBILITY = {
    "query": "在本中心缴存住房公积金或办理住房公积金贷款的职工。",
    "usage_certificate": "在本中心缴存住房公积金、需向异地申请住房公积金贷款的职工。",
    "retirement_withdrawal": "达到法定退休年龄或已办理退休手续的本中心缴存职工；"
    "有未结清的住房公积金贷款、账户冻结或销户的除外。",
    "employer_registration": "在本中心所辖区域内设立、需为职工缴存住房公积金的单位。",
    "employer_change": "在本中心缴存住房公积金的单位，缴存比例、联系人等信息发生变化的。",
    "individual_change": "本中心缴存职工，手机号码、提取银行卡、通讯地址等信息发生变化的。",
    "purchase_withdrawal": "购买自住住房的本中心缴存职工及其配偶，在规定期限内申请。",
    "settlement_certificate": "在本中心贷款且已全部还清住房公积金个人住房贷款的借款人。",
    "early_repayment": "在本中心有住房公积金贷款、无逾期欠款的借款人。",
}


@dataclass(frozen=True)
class Step:
    title: str
    actor: str
    limit: str = ""


def steps(item: Item) -> list[Step]:
    """The steps of an item and who does each, as the guide describes them."""
    if item.online:
        return [
            Step("登录网上业务大厅（或手机APP、官方网站）", "申请人"),
            Step("身份认证：证件号码、密码和短信验证码", "申请人"),
            Step("在线填写并确认，需要时再次输入验证码", "申请人"),
            Step("系统即时办结，结果在线查看或下载", "本中心", "即时办结"),
        ]
    return [
        Step("到就近公积金中心“跨省通办”服务专柜提出申请，填写申请表并提交证明材料", "申请人"),
        Step(
            "核实材料，通过全国住房公积金监管服务平台传递至缴存地中心",
            "受理地中心",
            f"{OUTBOUND_VERIFY_WORKDAYS} 个工作日内",
        ),
        Step("联络人接收申请并分发至职工缴存管理部", "缴存地中心联络人"),
        Step(
            "管理部按规定办理", "缴存地中心管理部", f"{INBOUND_DONE_WORKDAYS} 个工作日内办结并反馈"
        ),
        Step("联络人通过平台将办结材料反馈受理地中心；需要时邮寄纸质材料", "缴存地中心联络人"),
        Step("受理地中心通知申请人并将材料装订归档", "受理地中心"),
    ]


def time_limit(item: Item) -> str:
    if item.online:
        return "即时办结"
    return (
        f"受理地中心 {OUTBOUND_VERIFY_WORKDAYS} 个工作日内核实并传递；"
        f"缴存地中心 {INBOUND_DONE_WORKDAYS} 个工作日内办结并反馈"
    )
