"""Daily reconciliation (日终对账): the portal's payouts against the bank adapter's ledger.

For one Asia/Shanghai day, every payout the portal recorded that day and every transfer the
bank's ledger (``BankTransfer``) holds for that day are matched by idempotency key — the same
key both sides use, so a payout and its transfer always find each other, even across midnight.
What each payout should have at the bank follows from its kind (``services.payouts``): money out
to the card for a withdrawal, money in from the card for the part of an early repayment the HPF
balance did not cover, nothing for a repayment paid wholly from the balance.

Differences are listed for the department the depositor belongs to (the handlers of that
department and the liaison see them); bank transfers without any portal payout cannot be
attributed and are shown to everyone who reconciles. ``flask --app portal payouts
reconcile-daily --date YYYY-MM-DD`` prints the same report (exit status 1 when there are
differences) and records the run in the audit log.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from portal.filters import SHANGHAI
from portal.models import Account, BankTransfer, Department, Depositor, Payout, StaffUser
from portal.rules.ids import mask_bank_card
from portal.services import audit

ROLES = ("handler", "liaison")
KIND_LABELS = {
    "retirement": "正常退休提取",
    "purchase": "购房提取",
    "loan_offset": "提前还清贷款",
}
STATUS_LABELS = {"pending": "待确认", "confirmed": "已确认", "reversed": "已撤销"}
ZERO = Decimal("0.00")


class Forbidden(Exception):
    pass


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The naive UTC instants an Asia/Shanghai day starts and ends."""
    start = datetime.combine(day, time.min, SHANGHAI).astimezone(UTC).replace(tzinfo=None)
    return start, start + timedelta(days=1)


@dataclass(frozen=True)
class Leg:
    direction: str  # out / in
    amount: Decimal
    card: str


def expected_leg(payout: Payout) -> Leg | None:
    """What the bank should hold for this payout (None: no bank leg)."""
    from portal.services.payouts import OUT_KINDS

    if payout.kind in OUT_KINDS:
        return Leg("out", payout.amount, payout.bank_card or "")
    if payout.kind == "loan_offset":
        rest = Decimal(str((payout.detail or {}).get("rest", "0")))
        return Leg("in", rest, payout.bank_card or "") if rest > 0 else None
    return None


@dataclass
class Line:
    key: str
    kind_label: str
    portal_status: str
    portal_amount: Decimal | None
    bank_direction: str
    bank_amount: Decimal | None
    card: str  # masked
    department_id: int | None
    department: str
    case_no: str
    payout_id: int | None
    problem: str = ""  # empty: matched

    @property
    def matched(self) -> bool:
        return not self.problem


@dataclass
class Report:
    day: date
    lines: list[Line] = field(default_factory=list)
    portal_out: Decimal = ZERO
    portal_in: Decimal = ZERO
    bank_out: Decimal = ZERO
    bank_in: Decimal = ZERO

    @property
    def differences(self) -> list[Line]:
        return [line for line in self.lines if not line.matched]

    @property
    def matched(self) -> int:
        return sum(1 for line in self.lines if line.matched)

    @property
    def balanced(self) -> bool:
        return not self.differences


def _problem(payout: Payout | None, transfer: BankTransfer | None) -> str:
    if payout is None:
        return "银行有转账，门户无对应支付记录"
    leg = expected_leg(payout)
    if payout.status == "reversed":
        return "门户已撤销该笔支付，但银行已转账" if transfer is not None else ""
    if leg is None:
        return "该笔支付无需银行转账，但银行有记录" if transfer is not None else ""
    if transfer is None:
        if payout.status == "pending":
            return "门户待确认，银行无转账（待核对后撤销）"
        return "门户已确认支付，但银行无对应转账"
    if payout.status == "pending":
        return "银行已转账，门户仍待确认（待核对后确认）"
    if transfer.direction != leg.direction:
        return "转账方向不符"
    if transfer.amount != leg.amount:
        return f"金额不符：门户 {leg.amount:,.2f} 元，银行 {transfer.amount:,.2f} 元"
    if (transfer.card or "") != leg.card:
        return "银行卡号不符"
    return ""


def reconcile_day(day: date, now: datetime | None = None) -> Report:
    """Match the day's payouts and bank transfers by idempotency key."""
    start, end = day_bounds(day)
    payouts = {
        p.idempotency_key: p
        for p in Payout.select().where((Payout.created_at >= start) & (Payout.created_at < end))
    }
    transfers = {
        t.idempotency_key: t
        for t in BankTransfer.select().where(
            (BankTransfer.created_at >= start) & (BankTransfer.created_at < end)
        )
    }
    missing_t = [k for k in payouts if k not in transfers]
    for t in BankTransfer.select().where(BankTransfer.idempotency_key.in_(missing_t or ["-"])):
        transfers[t.idempotency_key] = t  # across midnight: the other day's transfer
    missing_p = [k for k in transfers if k not in payouts]
    for p in Payout.select().where(Payout.idempotency_key.in_(missing_p or ["-"])):
        payouts[p.idempotency_key] = p
    departments = _departments([p.account_id for p in payouts.values()])
    report = Report(day)
    for key in sorted(set(payouts) | set(transfers)):
        payout, transfer = payouts.get(key), transfers.get(key)
        dept_id, dept_name = (None, "")
        if payout is not None:
            dept_id, dept_name = departments.get(payout.account_id, (None, ""))
        leg = expected_leg(payout) if payout else None
        if payout is not None and payout.status == "confirmed" and leg is not None:
            if leg.direction == "out":
                report.portal_out += leg.amount
            else:
                report.portal_in += leg.amount
        if transfer is not None:
            if transfer.direction == "out":
                report.bank_out += transfer.amount
            else:
                report.bank_in += transfer.amount
        card = (payout.bank_card if payout else None) or (transfer.card if transfer else "")
        report.lines.append(
            Line(
                key=key,
                kind_label=KIND_LABELS.get(payout.kind, payout.kind) if payout else "—",
                portal_status=(
                    STATUS_LABELS.get(payout.status, payout.status) if payout else "无记录"
                ),
                portal_amount=leg.amount if leg else (payout.amount if payout else None),
                bank_direction={"out": "付出", "in": "收入"}.get(transfer.direction, "")
                if transfer
                else "无记录",
                bank_amount=transfer.amount if transfer else None,
                card=mask_bank_card(card) if card else "—",
                department_id=dept_id,
                department=dept_name,
                case_no=str((payout.detail or {}).get("case_no", "")) if payout else "",
                payout_id=payout.id if payout else None,
                problem=_problem(payout, transfer),
            )
        )
    return report


def _departments(account_ids: list[int]) -> dict[int, tuple[int | None, str]]:
    if not account_ids:
        return {}
    rows = (
        Account.select(Account.id, Department.id, Department.name)
        .join(Depositor, on=(Account.depositor == Depositor.id))
        .join(Department, on=(Depositor.department == Department.id))
        .where(Account.id.in_(account_ids))
        .tuples()
    )
    return {account: (dept, name) for account, dept, name in rows}


def for_user(user: StaffUser, day: date) -> Report:
    """The report as this staff member may see it: the liaison everything, a handler their
    department's lines and the transfers nobody can attribute."""
    if user.role not in ROLES:
        raise Forbidden
    report = reconcile_day(day)
    if user.role == "handler":
        report.lines = [
            line
            for line in report.lines
            if line.department_id == user.department_id or line.payout_id is None
        ]
    return report


# --- the CLI ------------------------------------------------------------------------------


def init_app(app) -> None:
    import click

    from portal.db import db
    from portal.filters import local_today

    group = app.cli.commands.get("payouts")
    if group is None:  # services.payouts registers the group; keep working without it

        @app.cli.group("payouts", help="Exactly-once payouts.")
        def group():
            pass

    @group.command("reconcile-daily", help="Compare one day's payouts with the bank ledger.")
    @click.option(
        "--date",
        "day",
        type=click.DateTime(formats=["%Y-%m-%d"]),
        default=None,
        help="Asia/Shanghai day (default: yesterday).",
    )
    def reconcile_daily(day):
        db.connect(reuse_if_open=True)
        target = day.date() if day else local_today() - timedelta(days=1)
        report = reconcile_day(target)
        click.echo(
            f"{target}: {len(report.lines)} entries, {report.matched} matched, "
            f"{len(report.differences)} differences; portal out {report.portal_out:,.2f} / "
            f"bank out {report.bank_out:,.2f}; portal in {report.portal_in:,.2f} / "
            f"bank in {report.bank_in:,.2f}"
        )
        for line in report.differences:
            click.echo(
                f"  DIFF {line.key} [{line.department or '未归属管理部'}] "
                f"{line.kind_label} {line.portal_status}: {line.problem}"
            )
        audit.record(
            "cli",
            "payouts.reconcile_daily",
            "payout",
            "",
            day=target.isoformat(),
            entries=len(report.lines),
            differences=len(report.differences),
        )
        if report.differences:
            raise SystemExit(1)
