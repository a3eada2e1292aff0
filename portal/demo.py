"""Deterministic, fictional demo data for the Alxa League center (``flask seed-demo``).

Same seed and same day give the same data. Everything is invented: names, ID numbers (valid
check characters, fictional people), credit codes, phone numbers and bank cards.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from portal.db import db
from portal.models import (
    Account,
    CaseEvent,
    Center,
    CertificateRequest,
    Department,
    Depositor,
    DepositRecord,
    Employer,
    EmployerOperator,
    Loan,
    LoanRepayment,
    ProxyCase,
    Setting,
    StaffUser,
    utcnow,
)
from portal.platform.signing import demo_peer_public_key
from portal.rules import casestates
from portal.rules.casestates import INBOUND, OUTBOUND
from portal.rules.dates import add_months
from portal.rules.ids import (
    luhn_check_digit,
    org_code_check_char,
    resident_id_check_char,
    uscc_check_char,
)
from portal.rules.money import deposit_interest, quantize, rate_for, repayment_schedule
from portal.rules.workdays import add_workdays, is_workday
from portal.services.identity import hash_password

SEED = 20261125
DEMO_PASSWORD = "Demo1234"  # noqa: S105  # nosec B105 - published demo login
STAFF_PASSWORD = "Staff2026"  # noqa: S105  # nosec B105 - published demo login

# Fixed TOTP secrets so the README can say how to get each staff member's code.
DEMO_STAFF = [
    # username, name, role, department code, secret
    ("clerk", "王芳", "clerk", "AZQ", "CLERKDEMOSECRET2CLERKDEMOSECRET2"),
    ("liaison", "李强", "liaison", None, "LIAISONDEMOSECRETLIAISONDEMOSEC"),
    ("handler", "赵敏", "handler", "AZQ", "HANDLERDEMOSECRETHANDLERDEMOSEC"),
    ("handler2", "孙磊", "handler", "AYQ", "HANDLERTWODEMOSECRETHANDLERTWOD"),
    ("official", "周静", "official", None, "OFFICIALDEMOSECRETOFFICIALDEMOS"),
    ("admin", "吴刚", "admin", None, "ADMINDEMOSECRETADMINDEMOSECRETAD"),
    ("auditor", "郑洁", "auditor", None, "AUDITORDEMOSECRETAUDITORDEMOSEC"),
    # a second handler of 阿拉善左旗管理部: approves (复核) what `handler` prepares
    ("handler3", "钱慧", "handler", "AZQ", "HANDLERTHREEDEMOSECRETHANDLERTH"),
]

DEPARTMENTS = [
    ("AZQ", "阿拉善左旗管理部", "152921", "巴彦浩特镇土尔扈特路 18 号"),
    ("AYQ", "阿拉善右旗管理部", "152922", "额肯呼都格镇雅布赖路 6 号"),
    ("EJN", "额济纳旗管理部", "152923", "达来呼布镇居延路 9 号"),
]

PEERS = [
    (
        "110000",
        "北京住房公积金管理中心",
        "北京市",
        [
            "query",
            "usage_certificate",
            "retirement_withdrawal",
            "early_repayment",
            "individual_change",
            "employer_change",
        ],
    ),
    ("640100", "银川住房公积金管理中心", "宁夏回族自治区银川市", ["query"]),
]

LOAN_RATES = [  # effective date, first ≤5y, first >5y, second ≤5y, second >5y
    (date(2015, 10, 24), "0.0275", "0.0325", "0.03025", "0.03575"),
    (date(2022, 10, 1), "0.026", "0.031", "0.03025", "0.03575"),
    (date(2024, 5, 18), "0.0235", "0.0285", "0.02775", "0.03325"),
    (date(2025, 5, 8), "0.021", "0.026", "0.02525", "0.03075"),
]

SURNAMES = (
    "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢"
    "蒋蔡贾丁魏薛叶阎余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江史顾侯邵孟龙"
    "万段雷钱汤尹黎易常武乔贺赖龚文"
)
GIVEN_M = "伟强磊军勇杰涛斌超明刚平辉鹏华飞鑫波宇浩凯健俊帆帅旭宁龙林阳"
GIVEN_F = "芳娜敏静丽艳娟霞秀燕玲桂丹萍红琳雪梅婷颖慧莉倩琴洁佳悦欣怡"
COMPANY_WORDS = [
    "盐化",
    "能源",
    "畜牧",
    "文旅",
    "建设",
    "物流",
    "矿业",
    "乳业",
    "电力",
    "农牧",
    "医药",
    "环保",
    "水务",
    "通信",
    "商贸",
    "酒店",
    "沙产业",
    "煤业",
    "化工",
    "机械",
]
STREETS = ["土尔扈特路", "王府街", "新华街", "安德街", "额鲁特路", "雅布赖路", "居延路", "巴彦路"]
BANKS = ["中国工商银行", "中国建设银行", "中国农业银行", "中国银行", "内蒙古农村商业银行"]


@dataclass
class DemoSummary:
    employers: int
    depositors: int
    records: int
    loans: int
    cases: int


def rate_table():
    return tuple(
        (
            eff,
            {
                "first_le5": Decimal(a),
                "first_gt5": Decimal(b),
                "second_le5": Decimal(c),
                "second_gt5": Decimal(d),
            },
        )
        for eff, a, b, c, d in LOAN_RATES
    )


class _Gen:
    def __init__(self, seed: int, today: date):
        self.r = random.Random(seed)  # people: the same whatever the date
        self.h = random.Random(seed + 1)  # history whose length depends on the date
        self.today = today
        self.used_ids: set[str] = set()
        self.phone_seq = 0

    def name(self, sex: str) -> str:
        given = GIVEN_M if sex == "M" else GIVEN_F
        n = self.r.choice(SURNAMES) + self.r.choice(given)
        if self.r.random() < 0.6:
            n += self.r.choice(given)
        return n

    def resident_id(self, region: str, birth: date, sex: str) -> str:
        while True:
            seq = self.r.randrange(0, 99)
            seq = seq * 10 + (
                self.r.choice([1, 3, 5, 7, 9]) if sex == "M" else self.r.choice([0, 2, 4, 6, 8])
            )
            first17 = f"{region}{birth:%Y%m%d}{seq:03d}"
            rid = first17 + resident_id_check_char(first17)
            if rid not in self.used_ids:
                self.used_ids.add(rid)
                return rid

    def phone(self) -> str:
        self.phone_seq += 1
        return f"13{self.r.choice('0123456789')}{47000000 + self.phone_seq * 37 % 10000000:08d}"[
            :11
        ]

    def card(self) -> str:
        body = "622202" + "".join(self.r.choice("0123456789") for _ in range(12))
        return body + luhn_check_digit(body)

    def uscc(self, region: str) -> str:
        body = "MA0" + "".join(self.r.choice("0123456789ABCDEFGHJKLMNPQRTUWXY") for _ in range(5))
        org = body + org_code_check_char(body)
        first17 = f"91{region}{org}"
        return first17 + uscc_check_char(first17)


class _Ledger:
    """Posts an account's history in date order, settling interest (结息) each 30 June."""

    def __init__(self, account_id: int):
        self.account_id = account_id
        self.balance = Decimal("0.00")
        self.events: list[tuple[date, Decimal]] = []
        self.rows: list[dict] = []
        self.settled_until: date | None = None
        self.opened: date | None = None

    def post(self, kind, day, amount, employer=None, period=None, memo=""):
        self.opened = self.opened or day
        self.balance += amount
        self.events.append((day, self.balance))
        self.rows.append(
            dict(
                account=self.account_id,
                employer=employer,
                kind=kind,
                period=period,
                posted_on=day,
                amount=amount,
                balance_after=self.balance,
                memo=memo,
            )
        )

    def settle_through(self, day: date) -> None:
        """Settle every 30 June before ``day`` that has not been settled yet."""
        if self.opened is None:
            return
        year = (self.settled_until.year + 1) if self.settled_until else self.opened.year
        while date(year, 6, 30) < day:
            settle = date(year, 6, 30)
            if settle > self.opened:
                since = self.settled_until or self.opened
                interest = deposit_interest(self.events, since, settle)
                if interest > 0:
                    self.post("结息", settle, interest, memo=f"{year} 年度结息")
                self.settled_until = settle
            year += 1


def _months(start: date, end: date):
    """First days of months from start's month through end's month."""
    d = date(start.year, start.month, 1)
    while d <= end:
        yield d
        d = add_months(d, 1)


def load(today: date, seed: int = SEED, size: int = 500, log=print) -> DemoSummary:
    g = _Gen(seed, today)
    pw_hash = hash_password(DEMO_PASSWORD)  # one hash shared by the generated accounts
    staff_hash = hash_password(STAFF_PASSWORD)
    last_month = add_months(date(today.year, today.month, 1), -1)
    with db.atomic():
        Center.create(
            code="152900",
            name="阿拉善盟住房公积金管理中心",
            is_self=True,
            region="内蒙古自治区阿拉善盟",
            address="巴彦浩特镇王府街 1 号",
            phone="12329",
            online_items=[
                i
                for i in (
                    "query",
                    "usage_certificate",
                    "retirement_withdrawal",
                    "employer_change",
                    "individual_change",
                    "early_repayment",
                )
            ],
        )
        peers = [
            Center.create(
                code=c,
                name=n,
                region=reg,
                phone="12329",
                online_items=items,
                hall_url=f"https://gjj.example.invalid/{c}",
                public_key=demo_peer_public_key(c),  # deterministic demo key (platform files)
            )
            for c, n, reg, items in PEERS
        ]
        departments = {
            code: Department.create(code=code, name=name, address=addr, phone="0483-12329")
            for code, name, _region, addr in DEPARTMENTS
        }
        regions = {code: region for code, _n, region, _a in DEPARTMENTS}

        for eff, a, b, c, d in LOAN_RATES:
            Setting.create(
                key="loan_rates",
                effective_from=eff,
                value=json.dumps(
                    {"first_le5": a, "first_gt5": b, "second_le5": c, "second_gt5": d}
                ),
            )
        for key, value in [
            ("deposit_rate", "0.015"),
            ("deposit_base_floor", "1980.00"),
            ("deposit_base_ceiling", "27000.00"),
            ("ratio_min", "5"),
            ("ratio_max", "12"),
            ("loan_ceiling", "600000.00"),
            ("loan_balance_multiple", "15"),
            ("loan_repayment_ratio", "0.5"),
            ("loan_years_after_retirement", "5"),
            ("purchase_withdrawal_months", "12"),  # issue 7: 购房提取 within 12 months
            ("purchase_withdrawal_co_owners", "0"),  # only the spouse's withdrawals add up
            ("wip:outbound:accepted", "2"),  # board column limit, exceeded in the demo
        ]:
            Setting.create(key=key, value=value, effective_from=date(2025, 1, 1))

        staff = {}
        for n, (username, name, role, dept, secret) in enumerate(DEMO_STAFF):
            staff[username] = StaffUser.create(
                username=username,
                name=name,
                role=role,
                password_hash=staff_hash,
                department=departments[dept] if dept else None,
                totp_secret=secret,
                totp_confirmed=True,
                # the first seven draw from the generator (keeps the demo people as they were)
                phone=g.phone() if n < 7 else f"1390000{n:04d}",
            )

        # employers and their operators
        employers = []
        for i in range(max(4, size // 25)):
            dept_code = DEPARTMENTS[i % 3][0] if i % 5 else "AZQ"
            region = regions[dept_code]
            ratio = g.r.choice([5, 8, 10, 12, 12, 12])
            opened = date(g.r.randint(2005, 2018), g.r.randint(1, 12), g.r.randint(1, 28))
            contact_sex = g.r.choice("MF")
            employers.append(
                Employer.create(
                    credit_code=g.uscc(region),
                    name=f"阿拉善{g.r.choice(['盟', '左旗', '右旗', ''])}"
                    f"{COMPANY_WORDS[i % len(COMPANY_WORDS)]}"
                    f"{'有限责任公司' if i % 3 else '股份有限公司'}",
                    address=f"{departments[dept_code].name[:5]}{g.r.choice(STREETS)} "
                    f"{g.r.randint(1, 200)} 号",
                    contact_name=g.name(contact_sex),
                    contact_phone=g.phone(),
                    employer_ratio=ratio,
                    employee_ratio=ratio,
                    department=departments[dept_code],
                    account_no=f"{region}01{i + 1:06d}",
                    opened_on=opened,
                    paid_up_to=f"{last_month:%Y-%m}",
                )
            )
        operators = 0
        for i, employer in enumerate(employers):
            for k in range(1 + (i % 2)):
                sex = g.r.choice("MF")
                birth = date(g.r.randint(1975, 1998), g.r.randint(1, 12), g.r.randint(1, 28))
                EmployerOperator.create(
                    employer=employer,
                    resident_id=g.resident_id(employer.credit_code[2:8], birth, sex),
                    name=g.name(sex),
                    phone=g.phone(),
                    password_hash=pw_hash,
                    is_primary=(k == 0),
                    activated_at=utcnow(),
                )
                operators += 1

        # depositors, accounts and their deposit history
        records: list[dict] = []
        depositors: list[tuple[Depositor, Account]] = []
        for n in range(size):
            sex = "M" if g.r.random() < 0.55 else "F"
            if n < 25:  # a group past (or near) their statutory retirement date
                year = g.r.randint(1958, 1966) if sex == "M" else g.r.randint(1966, 1972)
            else:
                year = g.r.randint(1968, 2001)
            birth = date(year, g.r.randint(1, 12), g.r.randint(1, 28))
            category = (
                "male" if sex == "M" else ("female_55" if g.r.random() < 0.4 else "female_50")
            )
            employer = employers[n % len(employers)]
            dept = employer.department
            retired_on = None
            if n < 8:
                retired_on = add_months(birth, 12 * (60 if sex == "M" else 50))
            dep = Depositor.create(
                resident_id=g.resident_id(regions[dept.code], birth, sex),
                name=g.name(sex),
                sex=sex,
                birth_date=birth,
                retirement_category=category,
                retired_on=retired_on,
                phone=g.phone(),
                bank_card=g.card(),
                bank_name=g.r.choice(BANKS),
                bank_card_changed_at=datetime(2020, 3, 1)
                if n % 97
                else utcnow() - timedelta(days=2),
                address=f"{dept.name[:5]}{g.r.choice(STREETS)} {g.r.randint(1, 300)} 号",
                department=dept,
                password_hash=None if n % 50 == 7 else pw_hash,
            )
            years = g.r.randint(3, 10)
            opened = date(last_month.year - years, g.r.randint(1, 12), 1)
            base = Decimal(g.r.randrange(3000, 15000, 100))
            status = "正常"
            roll = g.r.random()
            if n % 40 == 3:
                status = "封存"
            elif n % 90 == 5:
                status = "冻结"
            account = Account.create(
                account_no=f"{regions[dept.code]}{n + 1:08d}",
                depositor=dep,
                employer=employer,
                deposit_base=base,
                employer_ratio=employer.employer_ratio,
                employee_ratio=employer.employee_ratio,
                status=status,
                opened_on=opened,
                balance=Decimal("0.00"),
            )
            stop = last_month if status != "封存" else add_months(last_month, -g.r.randint(3, 20))
            monthly = account.monthly_amount
            withdraw_month = add_months(opened, g.r.randint(12, 30)) if roll < 0.08 else None
            ledger = _Ledger(account.id)
            for month in _months(opened, stop):
                posted = date(month.year, month.month, 15)
                ledger.settle_through(posted)
                ledger.post(
                    "补缴" if g.h.random() < 0.02 else "汇缴",
                    posted,
                    monthly,
                    employer=employer.id,
                    period=f"{month:%Y-%m}",
                )
                if withdraw_month and month == withdraw_month:
                    day = date(month.year, month.month, 22)
                    ledger.post(
                        "提取", day, -quantize(ledger.balance * Decimal("0.6")), memo="购房提取"
                    )
            ledger.settle_through(today)
            records.extend(ledger.rows)
            balance, settled_until = ledger.balance, ledger.settled_until
            account.balance = balance
            account.paid_up_to = f"{stop:%Y-%m}"
            account.last_interest_on = settled_until
            account.save()
            depositors.append((dep, account))
        for i in range(0, len(records), 2000):
            DepositRecord.insert_many(records[i : i + 2000]).execute()
        log(f"  {len(depositors)} depositors, {len(records)} deposit records")

        loans = _loans(g, depositors, today)
        log(f"  {loans} loans")
        cases = _cases(g, peers, departments, staff, depositors, today)
        log(f"  {cases} proxy cases")
        return DemoSummary(len(employers), len(depositors), len(records), loans, cases)


def loan_day(month: date, n: int) -> date:
    """The ``n``-th demo loan's disbursement date in ``month``'s month: days 1-28, spread.

    Instalments fall due on this day of each month. Were every loan disbursed on the seeding
    day-of-month, every instalment would fall due on the seeding day, unpaid, and the whole
    demo would turn overdue together at the next midnight; spread over the month, one loan
    in 28 does."""
    return date(month.year, month.month, 1 + (n * 11) % 28)


def _loans(g: _Gen, depositors, today: date) -> int:
    table = rate_table()
    candidates = [(d, a) for d, a in depositors if a.status == "正常" and d.birth_date.year >= 1972]
    chosen = g.r.sample(candidates, min(len(candidates), max(6, len(depositors) // 8)))
    repayments = []
    count = 0
    for idx, (dep, _account) in enumerate(chosen):
        kind = "active"
        if idx % 10 == 3:
            kind = "overdue"
        elif idx % 10 in (5, 8):
            kind = "settled_early"
        elif idx % 10 == 9:
            kind = "settled_normal"
        if kind == "settled_normal":
            term = 60
            disbursed = add_months(today, -g.r.randint(64, 90))
        else:
            term = g.r.choice([120, 180, 240, 300, 360])
            disbursed = add_months(today, -g.r.randint(6, 96))
        disbursed = loan_day(disbursed, idx)
        amount = Decimal(g.r.randrange(150000, 600001, 10000))
        rate = rate_for(table, disbursed, term, True)
        first_due = add_months(disbursed, 1)
        method = g.r.choice(["annuity", "annuity", "equal_principal"])
        schedule = repayment_schedule(amount, rate, term, first_due, method)
        due_rows = [row for row in schedule if row.due_date < today]
        paid_rows = due_rows
        settled_on = settled_kind = None
        status = "active"
        if kind == "overdue":
            paid_rows = due_rows[: -g.r.randint(1, 3)] if len(due_rows) > 3 else due_rows[:-1]
        elif kind == "settled_early":
            cut = max(1, len(due_rows) // 2)
            paid_rows = due_rows[:cut]
            settled_on = paid_rows[-1].due_date + timedelta(days=g.r.randint(3, 20))
            settled_kind, status = "early", "settled"
        elif kind == "settled_normal":
            paid_rows = schedule
            settled_on, settled_kind, status = schedule[-1].due_date, "normal", "settled"
        outstanding = paid_rows[-1].remaining if paid_rows else amount
        n = count + 1
        loan = Loan.create(
            contract_no=f"ALS{disbursed:%Y}JK{n:05d}",
            loan_account_no=f"15290080{n:08d}",
            depositor=dep,
            amount=amount,
            term_months=term,
            annual_rate=rate,
            method=method,
            first_home=True,
            disbursed_on=disbursed,
            first_due_on=first_due,
            outstanding=Decimal("0.00") if status == "settled" else outstanding,
            status=status,
            settled_on=settled_on,
            settled_kind=settled_kind,
            property_address=f"阿拉善左旗巴彦浩特镇{g.r.choice(STREETS)}{g.r.randint(1, 40)}号小区 "
            f"{g.r.randint(1, 12)}-{g.r.randint(101, 2402)}",
            property_cert_no=f"蒙({disbursed:%Y})阿拉善左旗不动产证明"
            f"第{g.r.randint(1000000, 9999999)}号",
            lending_bank=g.r.choice(BANKS),
        )
        for row in paid_rows:
            repayments.append(
                dict(
                    loan=loan.id,
                    period=row.period,
                    due_on=row.due_date,
                    paid_on=row.due_date,
                    principal=row.principal,
                    interest=row.interest,
                    amount=row.payment,
                    kind="scheduled",
                )
            )
        if kind == "settled_early":
            remaining = paid_rows[-1].remaining
            interest = quantize(remaining * rate * (settled_on - paid_rows[-1].due_date).days / 360)
            repayments.append(
                dict(
                    loan=loan.id,
                    period=None,
                    due_on=None,
                    paid_on=settled_on,
                    principal=remaining,
                    interest=interest,
                    amount=remaining + interest,
                    kind="early",
                )
            )
            if idx % 20 == 5:
                CertificateRequest.create(loan=loan, source="online")
        count += 1
    for i in range(0, len(repayments), 2000):
        LoanRepayment.insert_many(repayments[i : i + 2000]).execute()
    return count


OUT_PATHS = {
    "accepted": ["accepted"],
    "verifying": ["accepted", "verifying"],
    "transmitted": ["accepted", "verifying", "transmitted"],
    "feedback": ["accepted", "verifying", "transmitted", "feedback"],
    "archived": ["accepted", "verifying", "transmitted", "feedback", "archived"],
    "supplement": ["accepted", "supplement"],
    "rejected": ["accepted", "verifying", "rejected"],
}
IN_PATHS = {
    "received": ["received"],
    "distributed": ["received", "distributed"],
    "processing": ["received", "distributed", "processing"],
    "done": ["received", "distributed", "processing", "done"],
    "fed_back": ["received", "distributed", "processing", "done", "fed_back"],
    "supplement": ["received", "distributed", "processing", "supplement"],
    "rejected": ["received", "rejected"],
}
MOVER = {
    "verifying": "clerk",
    "transmitted": "liaison",
    "feedback": "liaison",
    "archived": "clerk",
    "supplement": "clerk",
    "rejected": "clerk",
    "distributed": "liaison",
    "processing": "handler",
    "done": "handler",
    "fed_back": "liaison",
}


def _workdays_back(today: date, n: int) -> date:
    d = today
    while n > 0:
        d -= timedelta(days=1)
        if is_workday(d):
            n -= 1
    return d


def _event_time(start: date, today: date, i: int, steps: int) -> datetime:
    """When the i-th move of a case happened: spread over the working days it has been open."""
    span = 0
    d = start
    while d < today and span < 12:
        d += timedelta(days=1)
        if is_workday(d):
            span += 1
    day = add_workdays(start, round(i * span / max(1, steps - 1))) if span else start
    return datetime(day.year, day.month, day.day, 2 + i, 0)  # 10:00 onwards, Beijing time


def _cases(g: _Gen, peers, departments, staff, depositors, today: date) -> int:
    seq = 0
    from portal import items as item_config

    out_items = [
        "purchase_withdrawal",
        "settlement_certificate",
        "employer_registration",
        "retirement_withdrawal",
        "usage_certificate",
    ]
    in_items = ["purchase_withdrawal", "settlement_certificate", "employer_registration"]
    for direction, paths in ((OUTBOUND, OUT_PATHS), (INBOUND, IN_PATHS)):
        for state, path in paths.items():
            for k in range(2 if state not in ("accepted", "received", "processing") else 3):
                seq += 1
                peer = peers[(seq + k) % len(peers)]
                if (
                    direction == OUTBOUND
                ):  # only what the applicant's own center has no online channel for
                    choices = [i for i in out_items if not peer.offers_online(i)]
                else:
                    choices = in_items
                item = choices[seq % len(choices)]
                age = (
                    g.r.randint(0, 9)
                    if casestates.is_open(direction, state)
                    else g.r.randint(8, 30)
                )
                start = _workdays_back(today, age)
                limit = 7 if direction == OUTBOUND else 3
                if direction == OUTBOUND:
                    sex = g.r.choice("MF")
                    birth = date(g.r.randint(1965, 1998), g.r.randint(1, 12), g.r.randint(1, 28))
                    region = "110105" if peer.code == "110000" else "640104"
                    name, id_no, phone = g.name(sex), g.resident_id(region, birth, sex), g.phone()
                    depositor, dept = None, departments["AZQ"]
                    assignee = None
                else:
                    depositor, _acct = depositors[(seq * 7) % len(depositors)]
                    name, id_no, phone = depositor.name, depositor.resident_id, depositor.phone
                    dept = depositor.department if state != "received" else None
                    handler = (
                        staff["handler"]
                        if dept and dept.code == "AZQ"
                        else (staff["handler2"] if dept and dept.code == "AYQ" else None)
                    )
                    assignee = (
                        handler
                        if state in ("processing", "done", "fed_back", "supplement")
                        else None
                    )
                materials = {m.code: True for m in item_config.get(item).materials}
                application = {"item": item, "note": "演示数据"}
                if item == "purchase_withdrawal":
                    application.update(contract_no=f"HT{start:%Y%m%d}{seq:03d}", price="680000.00")
                if item == "employer_registration":  # issue 5: tracked by receipt + credit code
                    application.update(_demo_registration(seq))
                case = ProxyCase.create(
                    case_no=f"KS{start:%Y%m%d}{seq:04d}",
                    receipt_no=f"HZ{start:%Y%m%d}{seq:04d}",
                    item=item,
                    direction=direction,
                    state=state,
                    center=peer,
                    depositor=depositor,
                    applicant_name=name,
                    applicant_id_no=id_no,
                    applicant_phone=phone,
                    application=application,
                    checklist=materials,
                    department=dept,
                    assignee=assignee,
                    accepted_by=staff["clerk"] if direction == OUTBOUND else None,
                    clock_start=start,
                    deadline=add_workdays(start, limit),
                    paused_since=today - timedelta(days=1) if state == "supplement" else None,
                    missing_materials=["购房发票或首付款证明"] if state == "supplement" else [],
                    rejection_reason="申请人非本中心缴存职工" if state == "rejected" else "",
                    result={"outcome": "办结", "note": "已按规定办理"}
                    if state in ("feedback", "done", "fed_back", "archived")
                    else {},
                    tracking_no="SF1234567890"
                    if state in ("feedback", "archived") and seq % 2
                    else "",
                )
                at = datetime(start.year, start.month, start.day, 2, 0)
                CaseEvent.create(
                    case=case,
                    actor=staff["clerk"] if direction == OUTBOUND else None,
                    actor_label="窗口受理"
                    if direction == OUTBOUND
                    else "全国住房公积金监管服务平台",
                    action="create",
                    to_state=path[0],
                    created_at=at,
                )
                for i in range(1, len(path)):
                    role = MOVER[path[i]]
                    actor = staff[
                        "handler"
                        if role == "handler" and (not dept or dept.code == "AZQ")
                        else ("handler2" if role == "handler" else role)
                    ]
                    CaseEvent.create(
                        case=case,
                        actor=actor,
                        actor_label=actor.name,
                        action="move",
                        from_state=path[i - 1],
                        to_state=path[i],
                        created_at=_event_time(start, today, i, len(path)),
                    )
    return seq


def _demo_registration(seq: int) -> dict:
    """The application of a demo 单位登记开户 case: a fictional employer with a valid credit code
    derived from the case's sequence number (no random draw, so other demo data is unchanged)."""
    body = f"MA1{seq:05d}"
    first17 = f"91152921{body}{org_code_check_char(body)}"
    return {
        "employer_name": f"阿拉善盟示例{COMPANY_WORDS[seq % len(COMPANY_WORDS)]}有限公司",
        "credit_code": first17 + uscc_check_char(first17),
        "employer_address": f"阿拉善左旗巴彦浩特镇{STREETS[seq % len(STREETS)]} {seq} 号",
        "legal_rep": "演示法人",
    }


def example_logins() -> list[tuple[str, object]]:
    """A few demo people worth logging in as, with what makes each interesting."""
    from portal.models import Employer

    people: list[tuple[str, object]] = []

    def first(label, query):
        row = query.order_by(Depositor.id).first()
        if row is not None:
            people.append((label, row))

    with_password = Depositor.password_hash.is_null(False)
    first(
        "在职·有贷款",
        Depositor.select()
        .join(Loan, on=(Loan.depositor == Depositor.id))
        .switch(Depositor)
        .join(Account)
        .where(with_password & (Loan.status == "active") & (Account.status == "正常")),
    )
    first("已退休", Depositor.select().where(with_password & Depositor.retired_on.is_null(False)))
    first("首次登录", Depositor.select().where(Depositor.password_hash.is_null()))
    first(
        "账户封存",
        Depositor.select().join(Account).where(with_password & (Account.status == "封存")),
    )
    first(
        "账户冻结",
        Depositor.select().join(Account).where(with_password & (Account.status == "冻结")),
    )
    operator = (
        EmployerOperator.select()
        .join(Employer)
        .where(EmployerOperator.is_primary)
        .order_by(EmployerOperator.id)
        .first()
    )
    if operator is not None:
        people.append((f"单位经办人 {operator.employer.credit_code}", operator))
    return people
