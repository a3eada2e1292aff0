"""Peewee models. The schema itself is created by the numbered files in ``migrations/``.

Money is stored as integer fen and read back as ``Decimal`` yuan (:class:`FenField`);
rates are stored as decimal text (:class:`RateField`). Times are UTC.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

from peewee import (
    BigIntegerField,
    BooleanField,
    CharField,
    DateField,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
    Model,
    TextField,
)

from portal.db import db


def utcnow() -> datetime:
    """Naive UTC timestamp (stored the same way on SQLite and PostgreSQL)."""
    return datetime.now(UTC).replace(tzinfo=None)


class FenField(BigIntegerField):
    """A money amount: ``Decimal`` yuan in Python, integer fen in the database."""

    def db_value(self, value):
        if value is None:
            return None
        if isinstance(value, float):
            raise TypeError("money must be Decimal, not float")
        if isinstance(value, int):
            raise TypeError("money must be Decimal yuan; pass Decimal, not int fen")
        fen = (Decimal(value) * 100).to_integral_value()
        if fen != Decimal(value) * 100:
            raise ValueError(f"amount {value} has more than two decimal places")
        return int(fen)

    def python_value(self, value):
        if value is None:
            return None
        return (Decimal(int(value)) / 100).quantize(Decimal("0.01"))


class RateField(CharField):
    """An interest rate such as Decimal('0.0285'), stored as text so it never becomes a float."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("max_length", 16)
        super().__init__(*args, **kwargs)

    def db_value(self, value):
        if value is None:
            return None
        if isinstance(value, float):
            raise TypeError("rates must be Decimal, not float")
        return str(Decimal(value))

    def python_value(self, value):
        return None if value is None else Decimal(value)


class JSONField(TextField):
    def db_value(self, value):
        return None if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)

    def python_value(self, value):
        return None if value is None else json.loads(value)


class SealedField(TextField):
    """A personal identifier encrypted at rest (portal.crypto, AES-GCM).

    With ``lookup`` (the name of a blind-index column on the same model), comparing the field
    with a string in a query compares keyed hashes instead: ``Depositor.resident_id == x``
    keeps working although the column holds ciphertext. The model fills the index column
    whenever the field is written (``BaseModel._normalize_data``)."""

    def __init__(self, *args, lookup: str | None = None, purpose: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lookup = lookup
        self.purpose = purpose

    @property
    def context(self) -> str:
        return f"{self.model._meta.table_name}.{self.column_name}"

    def index_value(self, value):
        from portal import crypto

        return None if value is None else crypto.blind_index(str(value), self.purpose or "")

    def db_value(self, value):
        from portal import crypto

        return None if value is None else crypto.seal(str(value), self.context)

    def python_value(self, value):
        from portal import crypto

        return None if value is None else crypto.unseal(value, self.context)

    def __eq__(self, rhs):
        if isinstance(rhs, str):
            if not self.lookup:
                raise TypeError(f"{self.context} is encrypted and has no lookup index")
            return getattr(self.model, self.lookup) == self.index_value(rhs)
        return super().__eq__(rhs)

    def __ne__(self, rhs):
        if isinstance(rhs, str):
            return getattr(self.model, self.lookup) != self.index_value(rhs)
        return super().__ne__(rhs)

    __hash__ = TextField.__hash__

    def in_(self, values):
        values = list(values)
        if self.lookup and all(isinstance(v, str) for v in values):
            return getattr(self.model, self.lookup).in_([self.index_value(v) for v in values])
        return super().in_(values)


class SealedJSONField(SealedField):
    """A JSON value holding personal identifiers (a list of co-owners with their ID numbers),
    encrypted at rest as one sealed text; no lookups."""

    def db_value(self, value):
        if value is None:
            return None
        return super().db_value(json.dumps(value, ensure_ascii=False, sort_keys=True))

    def python_value(self, value):
        text = super().python_value(value)
        return None if text is None else json.loads(text)


class BaseModel(Model):
    class Meta:
        database = db
        legacy_table_names = False

    @classmethod
    def _sealed_lookups(cls) -> list[SealedField]:
        return [f for f in cls._meta.sorted_fields if isinstance(f, SealedField) and f.lookup]

    @classmethod
    def _normalize_data(cls, data, kwargs):
        normalized = super()._normalize_data(data, kwargs)
        if isinstance(normalized, dict):
            for field in cls._sealed_lookups():
                if field in normalized:
                    index = cls._meta.fields[field.lookup]
                    normalized[index] = field.index_value(normalized[field])
        return normalized

    @classmethod
    def insert_many(cls, rows, fields=None):
        sealed = cls._sealed_lookups()
        if sealed and fields is None:
            rows = [dict(row) for row in rows]
            for row in rows:
                for field in sealed:
                    for key in (field.name, field):
                        if key in row:
                            row[field.lookup] = field.index_value(row[key])
        return super().insert_many(rows, fields)


# --- organisation -------------------------------------------------------------------------


class Center(BaseModel):
    """Our center (is_self) and the peer centers we exchange cases with."""

    code = CharField(max_length=12, unique=True)
    name = CharField(max_length=100)
    is_self = BooleanField(default=False)
    region = CharField(max_length=50, default="")
    address = CharField(max_length=200, default="")
    phone = CharField(max_length=30, default="")
    hall_url = CharField(max_length=200, default="")
    online_items = JSONField(default=list)  # item codes this center offers fully online
    public_key = TextField(null=True)  # Ed25519 public key (platform exchange)
    exchange_url = CharField(max_length=200, default="")  # peer's /platform/inbox (0009)
    active = BooleanField(default=True)

    def offers_online(self, item_code: str) -> bool:
        return item_code in (self.online_items or [])


class Department(BaseModel):
    """A management department (管理部): owns depositors and processes their cases."""

    code = CharField(max_length=12, unique=True)
    name = CharField(max_length=60)
    address = CharField(max_length=200, default="")
    phone = CharField(max_length=30, default="")
    wip_limit = IntegerField(null=True)


# --- employers and depositors -------------------------------------------------------------

EMPLOYER_STATUSES = ("正常", "缓缴", "注销")
ACCOUNT_STATUSES = ("正常", "封存", "冻结", "销户")
RETIREMENT_CATEGORIES = ("male", "female_55", "female_50")


class Employer(BaseModel):
    credit_code = CharField(max_length=18, unique=True)
    name = CharField(max_length=120)
    address = CharField(max_length=200, default="")
    contact_name = CharField(max_length=40, default="")
    contact_phone = CharField(max_length=20, default="")
    employer_ratio = IntegerField(default=12)  # percent, 5..12
    employee_ratio = IntegerField(default=12)
    status = CharField(max_length=8, default="正常")
    department = ForeignKeyField(Department, null=True, backref="employers")
    account_no = CharField(max_length=20, unique=True)
    opened_on = DateField()
    paid_up_to = CharField(max_length=7, null=True)  # YYYY-MM
    created_at = DateTimeField(default=utcnow)


class EmployerOperator(BaseModel):
    """A person who acts for an employer in the employer hall (单位经办人)."""

    employer = ForeignKeyField(Employer, backref="operators", on_delete="CASCADE")
    resident_id = SealedField(lookup="resident_id_index", purpose="resident_id")
    resident_id_index = CharField(max_length=64)
    name = CharField(max_length=40)
    phone = CharField(max_length=20)
    password_hash = CharField(max_length=255, null=True)
    is_primary = BooleanField(default=False)
    active = BooleanField(default=True)
    activated_at = DateTimeField(null=True)
    created_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("employer", "resident_id_index"), True),)


class Depositor(BaseModel):
    """A natural person who deposits (缴存人)."""

    resident_id = SealedField(lookup="resident_id_index", purpose="resident_id")
    resident_id_index = CharField(max_length=64, unique=True)
    name = CharField(max_length=40)
    sex = CharField(max_length=1)  # M / F
    birth_date = DateField()
    retirement_category = CharField(max_length=10)  # male / female_55 / female_50
    retired_on = DateField(null=True)
    phone = CharField(max_length=20)
    bank_card = SealedField(null=True)
    bank_name = CharField(max_length=40, default="")
    bank_card_changed_at = DateTimeField(null=True)
    address = CharField(max_length=200, default="")
    department = ForeignKeyField(Department, null=True, backref="depositors")
    password_hash = CharField(max_length=255, null=True)
    active = BooleanField(default=True)
    created_at = DateTimeField(default=utcnow)


class Account(BaseModel):
    """The personal HPF account (个人账户)."""

    account_no = CharField(max_length=20, unique=True)
    depositor = ForeignKeyField(Depositor, backref="accounts", unique=True)
    employer = ForeignKeyField(Employer, null=True, backref="accounts")
    deposit_base = FenField(default=Decimal("0.00"))
    employer_ratio = IntegerField(default=12)
    employee_ratio = IntegerField(default=12)
    status = CharField(max_length=4, default="正常")
    opened_on = DateField()
    closed_on = DateField(null=True)
    balance = FenField(default=Decimal("0.00"))
    paid_up_to = CharField(max_length=7, null=True)  # YYYY-MM
    last_interest_on = DateField(null=True)  # last 30 June settlement
    version = IntegerField(default=1)

    @property
    def monthly_amount(self) -> Decimal:
        """Monthly deposit: each side rounded to the fen, then added (汇缴额)."""
        from portal.rules.money import quantize

        base = self.deposit_base
        return quantize(base * self.employer_ratio / 100) + quantize(
            base * self.employee_ratio / 100
        )


DEPOSIT_KINDS = ("汇缴", "补缴", "结息", "提取")


class DepositRecord(BaseModel):
    """One line of the account detail (缴存明细)."""

    account = ForeignKeyField(Account, backref="records", on_delete="CASCADE")
    employer = ForeignKeyField(Employer, null=True)
    kind = CharField(max_length=4)
    period = CharField(max_length=7, null=True)  # YYYY-MM the deposit is for
    posted_on = DateField()
    amount = FenField()  # signed: withdrawals are negative
    balance_after = FenField()
    memo = CharField(max_length=100, default="")

    class Meta:
        indexes = ((("account", "posted_on"), False),)


# --- staff --------------------------------------------------------------------------------

STAFF_ROLES = ("clerk", "liaison", "handler", "official", "admin", "auditor")


class StaffUser(BaseModel):
    username = CharField(max_length=40, unique=True)
    name = CharField(max_length=40)
    role = CharField(max_length=10)
    department = ForeignKeyField(Department, null=True, backref="staff")
    phone = CharField(max_length=20, default="")
    password_hash = CharField(max_length=255, null=True)
    totp_secret = CharField(max_length=64, null=True)
    totp_confirmed = BooleanField(default=False)
    totp_last_step = BigIntegerField(default=0)  # refuses a replayed TOTP code
    active = BooleanField(default=True)
    created_at = DateTimeField(default=utcnow)


# --- money movements ----------------------------------------------------------------------

PAYOUT_STATUSES = ("pending", "confirmed", "reversed")


class Payout(BaseModel):
    """Money leaving the fund; exactly once by idempotency key (DESIGN section 3)."""

    account = ForeignKeyField(Account, backref="payouts")
    kind = CharField(max_length=20)  # retirement / purchase / loan_offset
    amount = FenField()
    idempotency_key = CharField(max_length=64, unique=True)
    status = CharField(max_length=10, default="pending")
    bank_card = SealedField(null=True)
    bank_ref = CharField(max_length=64, null=True)
    requested_by = CharField(max_length=40, default="")
    approved_by = ForeignKeyField(StaffUser, null=True)
    proxy_case_id = IntegerField(null=True)
    detail = JSONField(default=dict)
    created_at = DateTimeField(default=utcnow)
    confirmed_at = DateTimeField(null=True)


class BankTransfer(BaseModel):
    """The development bank adapter's own ledger (what the 'bank' believes it paid)."""

    idempotency_key = CharField(max_length=64, unique=True)
    direction = CharField(max_length=3)  # out / in
    amount = FenField()
    card = SealedField(null=True)
    reference = CharField(max_length=64, unique=True)
    created_at = DateTimeField(default=utcnow)


LOAN_METHODS = ("annuity", "equal_principal")
LOAN_STATUSES = ("active", "settled")


class Loan(BaseModel):
    contract_no = CharField(max_length=24, unique=True)
    loan_account_no = CharField(max_length=24, unique=True)
    depositor = ForeignKeyField(Depositor, backref="loans")
    co_borrower = ForeignKeyField(Depositor, null=True, backref="co_loans")
    amount = FenField()
    term_months = IntegerField()
    annual_rate = RateField()
    method = CharField(max_length=16)
    first_home = BooleanField(default=True)
    disbursed_on = DateField()
    first_due_on = DateField()
    outstanding = FenField()
    status = CharField(max_length=8, default="active")
    settled_on = DateField(null=True)
    settled_kind = CharField(max_length=8, null=True)  # normal / early
    property_address = CharField(max_length=200, default="")
    property_cert_no = CharField(max_length=40, default="")  # 不动产登记证明号
    lending_bank = CharField(max_length=60, default="")
    version = IntegerField(default=1)

    @classmethod
    def of(cls, depositor):
        """WHERE clause: the loans this depositor borrowed or co-borrowed. Each side is found
        by its own index (issue 10: with ``OR`` SQLite's planner read every loan, most of them
        without a co-borrower)."""
        mine = cls.select(cls.id).where(cls.depositor == depositor)
        co = cls.select(cls.id).where(cls.co_borrower == depositor)
        return cls.id.in_(mine | co)


class LoanRepayment(BaseModel):
    loan = ForeignKeyField(Loan, backref="repayments", on_delete="CASCADE")
    period = IntegerField(null=True)
    due_on = DateField(null=True)
    paid_on = DateField()
    principal = FenField()
    interest = FenField()
    amount = FenField()
    kind = CharField(max_length=12, default="scheduled")  # scheduled / early / offset
    idempotency_key = CharField(max_length=64, null=True, unique=True)

    class Meta:
        indexes = ((("loan", "paid_on"), False),)


# --- proxy cases --------------------------------------------------------------------------


class ProxyCase(BaseModel):
    """A case handled by proxy (代收代办 / 两地联办), outbound or inbound."""

    case_no = CharField(max_length=24, unique=True)
    receipt_no = CharField(max_length=24, unique=True)
    item = CharField(max_length=32)
    direction = CharField(max_length=8)  # outbound / inbound
    state = CharField(max_length=16)
    center = ForeignKeyField(Center, backref="cases")  # the other center
    depositor = ForeignKeyField(Depositor, null=True, backref="cases")
    employer = ForeignKeyField(Employer, null=True, backref="cases")
    applicant_name = CharField(max_length=60)
    applicant_id_no = SealedField(lookup="applicant_id_index", purpose="resident_id")
    applicant_id_index = CharField(max_length=64, index=True)
    applicant_phone = CharField(max_length=20, default="")
    application = JSONField(default=dict)
    checklist = JSONField(default=dict)  # material code -> received?
    department = ForeignKeyField(Department, null=True, backref="cases")
    assignee = ForeignKeyField(StaffUser, null=True, backref="assigned_cases")
    accepted_by = ForeignKeyField(StaffUser, null=True, backref="accepted_cases")
    clock_start = DateField()  # accepted (outbound) or received (inbound)
    deadline = DateField()
    paused_since = DateField(null=True)  # in 待补正 since
    paused_workdays = IntegerField(default=0)
    missing_materials = JSONField(default=list)
    rejection_reason = TextField(default="")
    result = JSONField(default=dict)
    tracking_no = CharField(max_length=40, default="")
    platform_ref = CharField(max_length=64, null=True)
    # platform exchange (0009): an outbound case sent to the peer is "pending" (待送达) until
    # the peer acknowledges ("acked"), "failed" when it could not be delivered
    delivery = CharField(max_length=10, default="")
    peer_ack_on = DateField(null=True)
    peer_deadline = DateField(null=True)  # the peer's 3 working days, from its acknowledgement
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)
    version = IntegerField(default=1)

    class Meta:
        indexes = ((("direction", "state"), False),)


class CaseEvent(BaseModel):
    case = ForeignKeyField(ProxyCase, backref="events", on_delete="CASCADE")
    actor = ForeignKeyField(StaffUser, null=True)
    actor_label = CharField(max_length=60, default="")
    action = CharField(max_length=20)  # create / move / assign / mail / ...
    from_state = CharField(max_length=16, null=True)
    to_state = CharField(max_length=16, null=True)
    data = JSONField(default=dict)
    created_at = DateTimeField(default=utcnow)


class CaseComment(BaseModel):
    case = ForeignKeyField(ProxyCase, backref="comments", on_delete="CASCADE")
    author = ForeignKeyField(StaffUser)
    body = TextField()
    created_at = DateTimeField(default=utcnow)


class Attachment(BaseModel):
    case = ForeignKeyField(ProxyCase, backref="attachments", on_delete="CASCADE")
    kind = CharField(max_length=10, default="material")  # material / result / form
    material = CharField(max_length=32, default="")
    filename = CharField(max_length=200)
    content_type = CharField(max_length=60)
    size = IntegerField()
    sha256 = CharField(max_length=64)
    storage_key = CharField(max_length=200)
    uploaded_by = ForeignKeyField(StaffUser, null=True)
    created_at = DateTimeField(default=utcnow)


class PlatformMessage(BaseModel):
    """A platform message we sent (out) or processed (in); one sender's message id is
    processed once, so a duplicate delivery is a no-op (DESIGN section 6)."""

    message_id = CharField(max_length=36)
    direction = CharField(max_length=3)  # in / out
    kind = CharField(max_length=24)  # case.send / case.ack / materials.request / ...
    sender = CharField(max_length=12)  # center codes
    recipient = CharField(max_length=12)
    case = ForeignKeyField(ProxyCase, null=True, backref="platform_messages")
    storage_key = CharField(max_length=200, default="")  # the package (zip) in storage
    sha256 = CharField(max_length=64, default="")
    actor = CharField(max_length=40, default="")
    created_at = DateTimeField(default=utcnow, index=True)

    class Meta:
        indexes = ((("sender", "message_id"), True),)


# --- certificates -------------------------------------------------------------------------

CERTIFICATE_KINDS = ("usage", "settlement", "employer_deposit", "retirement_receipt")


class Certificate(BaseModel):
    kind = CharField(max_length=20)
    number = CharField(max_length=32, unique=True)
    verify_code = CharField(max_length=32, unique=True)
    depositor = ForeignKeyField(Depositor, null=True, backref="certificates")
    employer = ForeignKeyField(Employer, null=True, backref="certificates")
    loan = ForeignKeyField(Loan, null=True, backref="certificates")
    case = ForeignKeyField(ProxyCase, null=True, backref="certificates")
    addressee = CharField(max_length=100, default="")
    issued_at = DateTimeField(default=utcnow)
    valid_until = DateField(null=True)
    issued_by = ForeignKeyField(StaffUser, null=True, backref="issued_certificates")
    revoked_at = DateTimeField(null=True)
    revoked_reason = TextField(default="")
    revoked_by = ForeignKeyField(StaffUser, null=True, backref="revoked_certificates")
    summary = JSONField(default=dict)  # masked facts the verification page shows
    storage_key = CharField(max_length=200, default="")
    sha256 = CharField(max_length=64, default="")


class CertificateRequest(BaseModel):
    """A request for a loan-settlement certificate waiting for an official."""

    loan = ForeignKeyField(Loan, backref="certificate_requests")
    source = CharField(max_length=10)  # online / case / counter
    case = ForeignKeyField(ProxyCase, null=True)
    status = CharField(max_length=10, default="pending")  # pending / issued / refused
    certificate = ForeignKeyField(Certificate, null=True)
    requested_at = DateTimeField(default=utcnow)
    # processing (0008): who asked (audit actor), the official who issued or refused, and why
    requested_by = CharField(max_length=40, default="")
    decided_by = ForeignKeyField(StaffUser, null=True, backref="decided_requests")
    decided_at = DateTimeField(null=True)
    refused_reason = TextField(default="")


CASE_PAYOUT_STATUSES = ("pending_approval", "approved", "paid", "refused", "failed")


class CasePayout(BaseModel):
    """A payout a handler prepared on an inbound case (services.processing): home-purchase
    withdrawal, or the proxy retirement withdrawal / early repayment. A second handler of the
    department approves it (复核) before the exactly-once payout; the purchase columns feed the
    shared-property cap."""

    case = ForeignKeyField(ProxyCase, backref="case_payouts")
    kind = CharField(max_length=20)  # purchase / retirement / loan_offset
    depositor = ForeignKeyField(Depositor, backref="case_payouts")
    account = ForeignKeyField(Account, backref="case_payouts")
    amount = FenField()
    status = CharField(max_length=16, default="pending_approval", index=True)
    property_no = CharField(max_length=60, default="", index=True)  # contract or deed number
    property_address = CharField(max_length=200, default="")
    purchase_date = DateField(null=True)
    price = FenField(null=True)
    spouse_name = CharField(max_length=40, default="")
    spouse_id_no = SealedField(default="")  # encrypted at rest (migration 0013)
    co_owners = SealedJSONField(default=list)  # [{"name": ..., "id_no": ...}], encrypted
    detail = JSONField(default=dict)  # the computation shown to the approver
    bank_card = SealedField(null=True)  # encrypted at rest (migration 0013)
    bank_name = CharField(max_length=40, default="")
    prepared_by = ForeignKeyField(StaffUser, backref="prepared_payouts")
    prepared_at = DateTimeField(default=utcnow)
    approved_by = ForeignKeyField(StaffUser, null=True, backref="approved_payouts")
    approved_at = DateTimeField(null=True)
    refused_by = ForeignKeyField(StaffUser, null=True, backref="refused_payouts")
    refused_reason = TextField(default="")
    payout = ForeignKeyField(Payout, null=True, backref="case_payouts")
    version = IntegerField(default=1)


# --- identity, sessions, audit ------------------------------------------------------------


class WebSession(BaseModel):
    """Server-side session: deleting the row ends the session everywhere."""

    sid = CharField(max_length=64, primary_key=True)
    principal = CharField(max_length=32, null=True, index=True)  # d:1 / o:2 / s:3
    data = JSONField(default=dict)
    created_at = DateTimeField(default=utcnow)
    last_seen = DateTimeField(default=utcnow)


class OtpChallenge(BaseModel):
    """A one-time code sent by SMS; usable once, for one purpose, for a few minutes."""

    purpose = CharField(max_length=20)  # login / first_login / reset / change ...
    subject = CharField(max_length=32)  # d:1 / o:2
    phone = CharField(max_length=20)
    secret = CharField(max_length=64)
    created_at = DateTimeField(default=utcnow)
    expires_at = DateTimeField()
    attempts = IntegerField(default=0)
    used_at = DateTimeField(null=True)


class SmsMessage(BaseModel):
    """The development SMS outbox."""

    phone = CharField(max_length=20, index=True)
    body = TextField()
    created_at = DateTimeField(default=utcnow)


class AuditLog(BaseModel):
    """Append-only and hash-chained: each row's hash covers its content and the previous
    row's hash (services.audit); database triggers refuse updates and early deletes."""

    at = DateTimeField(default=utcnow, index=True)
    actor = CharField(max_length=40)  # staff:zhangsan / depositor:12 / system
    action = CharField(max_length=40)
    target_type = CharField(max_length=30, default="")
    target_id = CharField(max_length=40, default="")
    detail = JSONField(default=dict)
    ip = CharField(max_length=45, default="")
    prev_hash = CharField(max_length=64, default="")
    row_hash = CharField(max_length=64, default="")


class AuditHead(BaseModel):
    """The single head of the audit chain; writers lock it, so the chain stays linear."""

    last_hash = CharField(max_length=64, default="")
    anchor_hash = CharField(max_length=64, default="")  # prev_hash of the oldest kept row
    updated_at = DateTimeField(default=utcnow)


class ChangeRecord(BaseModel):
    """History of information changes (old and new values, channel, effective month)."""

    subject_type = CharField(max_length=12)  # depositor / employer / account
    subject_id = IntegerField()
    field = CharField(max_length=30)
    old_value = CharField(max_length=200, null=True)
    new_value = CharField(max_length=200, null=True)
    channel = CharField(max_length=10, default="online")
    effective_from = CharField(max_length=7, null=True)
    actor = CharField(max_length=40)
    changed_at = DateTimeField(default=utcnow)
    # employer hall (0006): the depositor account an employer's deposit-base change is about,
    # and whether a change dated to a later month is still waiting (scheduled / superseded)
    account = ForeignKeyField(Account, null=True, backref="change_records")
    status = CharField(max_length=10, default="applied", index=True)

    class Meta:
        indexes = ((("subject_type", "subject_id"), False),)


class HolidayOverride(BaseModel):
    day = DateField(unique=True)
    is_workday = BooleanField()
    note = CharField(max_length=60, default="")
    created_by = ForeignKeyField(StaffUser, null=True)


class Setting(BaseModel):
    """A setting value that takes effect on a date (rates, limits, floors and ceilings)."""

    key = CharField(max_length=40)
    value = TextField()
    effective_from = DateField()
    created_by = ForeignKeyField(StaffUser, null=True)
    created_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("key", "effective_from"), True),)


class RateLimitHit(BaseModel):
    """A fixed-window counter for ``services.ratelimit`` (a Redis backend may replace it)."""

    key = CharField(max_length=120)
    window_start = BigIntegerField()  # epoch seconds at the start of the window
    hits = IntegerField(default=0)

    class Meta:
        indexes = ((("key", "window_start"), True),)


class StaffSetupToken(BaseModel):
    """A one-time link that lets a new staff member set a password and enrol TOTP."""

    staff = ForeignKeyField(StaffUser, backref="setup_tokens", on_delete="CASCADE")
    token_hash = CharField(max_length=64, unique=True)
    created_at = DateTimeField(default=utcnow)
    expires_at = DateTimeField()
    used_at = DateTimeField(null=True)


# --- platform exchange over HTTP and 亮码可办 (issue 8, migration 0009) ----------------------

OUTBOX_STATUSES = ("pending", "sent", "failed")


class OutboxMessage(BaseModel):
    """A signed message to a peer reached over HTTP, written in the same transaction as the
    state change that causes it; the worker (``flask platform worker``) delivers it with
    retries and backoff. The receiver treats a repeated message id as a no-op."""

    message_id = CharField(max_length=36, unique=True)
    platform_message = ForeignKeyField(PlatformMessage, unique=True, backref="outbox")
    center = ForeignKeyField(Center, backref="outbox_messages")
    case = ForeignKeyField(ProxyCase, null=True, backref="outbox_messages")
    kind = CharField(max_length=24)
    status = CharField(max_length=10, default="pending")
    attempts = IntegerField(default=0)
    next_attempt_at = DateTimeField(default=utcnow)
    locked_until = DateTimeField(null=True)  # a worker's lease while it sends
    last_error = CharField(max_length=300, default="")
    last_status = IntegerField(null=True)  # the peer's last HTTP status
    created_by = CharField(max_length=40, default="")
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)
    sent_at = DateTimeField(null=True)

    class Meta:
        indexes = ((("status", "next_attempt_at"), False),)


class ECode(BaseModel):
    """A depositor's one-day business e-code (亮码可办): valid until 24:00 Asia/Shanghai of the
    day it was issued; used up once a center has queried it."""

    depositor = ForeignKeyField(Depositor, backref="ecodes")
    code = CharField(max_length=24, unique=True)
    issued_on = DateField()
    expires_at = DateTimeField()  # UTC
    created_at = DateTimeField(default=utcnow)
    revoked_at = DateTimeField(null=True)
    used_at = DateTimeField(null=True)
    used_by_center = CharField(max_length=12, default="")
    used_by_center_name = CharField(max_length=100, default="")
    used_by = CharField(max_length=100, default="")  # clerk and department, as reported
    query_message_id = CharField(max_length=36, default="")
    reply_key = CharField(max_length=200, default="")  # the signed reply we sent (storage)
    reply_sha256 = CharField(max_length=64, default="")


class ECodeLookup(BaseModel):
    """A clerk's look-up of another center's depositor by e-code, and what came back."""

    staff = ForeignKeyField(StaffUser, backref="ecode_lookups")
    center = ForeignKeyField(Center)
    code_hint = CharField(max_length=24)  # the code, masked
    message_id = CharField(max_length=36)
    reply_message_id = CharField(max_length=36, default="")
    outcome = CharField(max_length=10)  # ok / refused
    reason = CharField(max_length=200, default="")
    data = JSONField(default=dict)  # the information table (ok)
    created_at = DateTimeField(default=utcnow, index=True)


# --- notifications, service rating, background jobs (issue 11, migration 0012) ---------------

NOTICE_RECIPIENTS = ("depositor", "operator", "staff")


class Notice(BaseModel):
    """A message in someone's in-portal inbox (站内消息). ``key`` makes it idempotent per
    recipient: the same event told twice is stored once."""

    recipient_kind = CharField(max_length=10)  # depositor / operator / staff
    recipient_id = IntegerField()
    title = CharField(max_length=100)
    body = TextField(default="")
    link = CharField(max_length=200, default="")
    key = CharField(max_length=100, null=True)
    read_at = DateTimeField(null=True)
    created_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = (
            (("recipient_kind", "recipient_id", "key"), True),
            (("recipient_kind", "recipient_id", "read_at"), False),
        )


RATING_LABELS = {5: "非常满意", 4: "满意", 3: "基本满意", 2: "不满意", 1: "非常不满意"}
FOLLOWUP_STEPS = ("回访", "整改")


class Rating(BaseModel):
    """好差评: the applicant's rating of a finished case or online item, once per subject and
    person. A bad rating (不满意, 非常不满意) opens a follow-up (``followup_state``
    待回访 → 待整改 → 已整改); a good one has none ("")."""

    subject_kind = CharField(max_length=12)  # case / certificate / payout / change
    subject_id = IntegerField()
    rater_kind = CharField(max_length=10)  # depositor / applicant (counter, no login)
    rater_id = IntegerField()
    rater_name = CharField(max_length=40, default="")  # masked
    channel = CharField(max_length=10)  # hall / track
    item = CharField(max_length=32, default="")
    title = CharField(max_length=120)
    department = ForeignKeyField(Department, null=True, backref="ratings")
    score = IntegerField()  # 5 非常满意 ... 1 非常不满意
    comment = TextField(default="")
    followup_state = CharField(max_length=8, default="", index=True)
    created_at = DateTimeField(default=utcnow, index=True)

    class Meta:
        indexes = ((("subject_kind", "subject_id", "rater_kind", "rater_id"), True),)


class RatingFollowup(BaseModel):
    rating = ForeignKeyField(Rating, backref="followups", on_delete="CASCADE")
    step = CharField(max_length=4)  # 回访 / 整改
    note = TextField()
    staff = ForeignKeyField(StaffUser, backref="rating_followups")
    at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("rating", "step"), True),)


JOB_STATUSES = ("queued", "running", "done", "failed")


class Job(BaseModel):
    """Long work (exports, the 30 June interest settlement, the large demo load) done by the
    worker process; ``progress`` 0-100 feeds the progress bar. A running job holds a lease
    (``locked_until``) that its progress reports extend; an expired lease may be taken over."""

    kind = CharField(max_length=30)
    params = JSONField(default=dict)
    status = CharField(max_length=8, default="queued")
    progress = IntegerField(default=0)
    message = CharField(max_length=300, default="")
    result_key = CharField(max_length=200, default="")  # portal.storage key of the result
    result_name = CharField(max_length=120, default="")  # its download file name
    created_by = ForeignKeyField(StaffUser, null=True, backref="jobs")
    created_at = DateTimeField(default=utcnow)
    started_at = DateTimeField(null=True)
    finished_at = DateTimeField(null=True)
    updated_at = DateTimeField(default=utcnow)
    locked_until = DateTimeField(null=True)
    attempts = IntegerField(default=0)

    class Meta:
        indexes = ((("status", "created_at"), False),)


MODELS = [
    Center,
    Department,
    Employer,
    EmployerOperator,
    Depositor,
    Account,
    DepositRecord,
    StaffUser,
    Payout,
    BankTransfer,
    Loan,
    LoanRepayment,
    ProxyCase,
    CaseEvent,
    CaseComment,
    Attachment,
    PlatformMessage,
    Certificate,
    CertificateRequest,
    CasePayout,
    WebSession,
    OtpChallenge,
    SmsMessage,
    AuditLog,
    AuditHead,
    ChangeRecord,
    HolidayOverride,
    Setting,
    StaffSetupToken,
    RateLimitHit,
    OutboxMessage,
    ECode,
    ECodeLookup,
    Notice,
    Rating,
    RatingFollowup,
    Job,
]
