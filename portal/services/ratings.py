"""Service rating (好差评): the applicant rates a finished case or online item once, with a
comment; a bad rating opens a follow-up for the department (回访, then 整改, each recorded);
the satisfaction rate is (非常满意 + 满意 + 基本满意) / rated.

Subjects: a proxy case once its result is known (``RATABLE_CASE_STATES``), a certificate issued
to the depositor, a confirmed payout (retirement withdrawal, early payoff), an information change.
Raters: a logged-in depositor (their cases and items) or, for a case applied for at our counter,
the applicant authenticated by receipt number and ID number on the public tracking page. A case
whose applicant is one of our depositors is rated by that depositor whichever way they come, so
one person rates one subject once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal

from peewee import JOIN, IntegrityError, fn

from portal import items
from portal.db import db, locked, write_tx
from portal.models import (
    FOLLOWUP_STEPS,
    RATING_LABELS,
    Certificate,
    ChangeRecord,
    Department,
    Depositor,
    Loan,
    Payout,
    ProxyCase,
    Rating,
    RatingFollowup,
    StaffUser,
    utcnow,
)
from portal.rules import casestates as cs
from portal.services import audit, notices
from portal.services.certificates import mask_name

SCORES = tuple(sorted(RATING_LABELS, reverse=True))  # 5 .. 1
SATISFIED = (5, 4, 3)  # 非常满意, 满意, 基本满意
BAD = (2, 1)  # 不满意, 非常不满意
MAX_COMMENT = 500
SUBJECT_KINDS = ("case", "certificate", "payout", "change")
SUBJECT_LABELS = {
    "case": "代办业务",
    "certificate": "证明出具",
    "payout": "提取与还贷",
    "change": "信息变更",
}
# A case can be rated once the applicant's business is concluded: the result is known
# (outbound 已反馈, inbound 已办结), the case is closed, or it was 退回.
RATABLE_CASE_STATES = {
    cs.OUTBOUND: ("feedback", "archived", "rejected"),
    cs.INBOUND: ("done", "fed_back", "rejected"),
}
RATABLE_CERTIFICATES = ("usage", "settlement")
RATABLE_PAYOUTS = ("retirement", "loan_offset")
FOLLOWUP_OPEN, FOLLOWUP_FIX, FOLLOWUP_DONE = "待回访", "待整改", "已整改"
VIEW_ROLES = ("handler", "liaison", "official", "auditor")  # handlers: their department only
FOLLOWUP_ROLES = ("handler", "liaison")
PAGE_SIZE = 20


class Refused(Exception):
    """The rating or follow-up is not allowed; ``message`` says why, ``field`` where."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


class NotFound(LookupError):
    """No such subject or rating for this person (the view answers 404)."""


def label(score: int) -> str:
    return RATING_LABELS.get(score, "")


def is_bad(score: int) -> bool:
    return score in BAD


# --- subjects -----------------------------------------------------------------------------


@dataclass
class Subject:
    kind: str
    id: int
    title: str
    item: str
    department_id: int | None
    rater: tuple[str, int]
    rater_name: str  # masked
    completed: bool
    waiting: str = ""  # why it cannot be rated yet
    done_at: datetime | date | None = None

    @property
    def kind_label(self) -> str:
        return SUBJECT_LABELS[self.kind]


def _item_name(code: str) -> str:
    try:
        return items.get(code).name
    except KeyError:
        return code


def _case_rater(case: ProxyCase) -> tuple[tuple[str, int], str]:
    """Who rates a case: the linked depositor, else the depositor whose ID number is the
    applicant's, else the applicant; with the masked name."""
    return _case_raters([case])[case.id]


def _case_raters(
    cases: list[ProxyCase], known: Depositor | None = None
) -> dict[int, tuple[tuple[str, int], str]]:
    """``_case_rater`` for many cases in at most two queries: {case id: (rater, masked name)}.
    ``known`` (the logged-in depositor) is taken as already read: their own cases need no
    query."""
    by_id: dict[int, Depositor] = {known.id: known} if known is not None else {}
    wanted = {c.depositor_id for c in cases if c.depositor_id and c.depositor_id not in by_id}
    if wanted:
        by_id.update((d.id, d) for d in Depositor.select().where(Depositor.id.in_(wanted)))
    by_index: dict[str, Depositor] = {}
    if known is not None and known.resident_id is not None:
        by_index[Depositor.resident_id.index_value(known.resident_id)] = known
    index_of = {
        c.id: Depositor.resident_id.index_value(c.applicant_id_no)
        for c in cases
        if not (c.depositor_id and c.depositor_id in by_id)
    }
    wanted_index = {v for v in index_of.values() if v is not None and v not in by_index}
    if wanted_index:
        by_index.update(
            (d.resident_id_index, d)
            for d in Depositor.select().where(Depositor.resident_id_index.in_(wanted_index))
        )
    raters: dict[int, tuple[tuple[str, int], str]] = {}
    for case in cases:
        depositor = by_id.get(case.depositor_id) if case.depositor_id else None
        if depositor is None:
            depositor = by_index.get(index_of[case.id])
        if depositor is not None:
            raters[case.id] = (("depositor", depositor.id), mask_name(depositor.name))
        else:
            raters[case.id] = (("applicant", case.id), mask_name(case.applicant_name))
    return raters


def case_subject(case: ProxyCase, rater: tuple[tuple[str, int], str] | None = None) -> Subject:
    """The case as a subject; ``rater`` (from ``_case_raters``) saves looking the rater up."""
    rater, name = rater if rater is not None else _case_rater(case)
    completed = case.state in RATABLE_CASE_STATES[case.direction]
    return Subject(
        kind="case",
        id=case.id,
        title=f"{_item_name(case.item)}（{case.receipt_no}）",
        item=case.item,
        department_id=case.department_id,
        rater=rater,
        rater_name=name,
        completed=completed,
        waiting="" if completed else "办件办结后方可评价",
        done_at=case.updated_at if completed else None,
    )


def _depositor_subject(depositor: Depositor, kind: str, title: str, item: str, **extra) -> Subject:
    return Subject(
        kind=kind,
        title=title,
        item=item,
        department_id=depositor.department_id,
        rater=("depositor", depositor.id),
        rater_name=mask_name(depositor.name),
        **extra,
    )


def _own_cases(depositor: Depositor):
    return ProxyCase.select().where(
        (ProxyCase.depositor == depositor) | (ProxyCase.applicant_id_no == depositor.resident_id)
    )


def _own_certificates(depositor: Depositor):
    return (
        Certificate.select(Certificate)
        .join(Loan, on=(Certificate.loan == Loan.id), join_type=JOIN.LEFT_OUTER)
        .where(
            ((Certificate.depositor == depositor) | (Loan.depositor == depositor))
            & Certificate.kind.in_(RATABLE_CERTIFICATES)
        )
    )


def _own_payouts(depositor: Depositor):
    from portal.models import Account

    return (
        Payout.select(Payout)
        .join(Account)
        .where((Account.depositor == depositor) & Payout.kind.in_(RATABLE_PAYOUTS))
    )


def _own_changes(depositor: Depositor):
    return ChangeRecord.select().where(
        (ChangeRecord.subject_type == "depositor") & (ChangeRecord.subject_id == depositor.id)
    )


def _certificate_subject(depositor: Depositor, c: Certificate) -> Subject:
    name = notices.CERTIFICATE_NAMES.get(c.kind, "证明")
    item = "usage_certificate" if c.kind == "usage" else "settlement_certificate"
    return _depositor_subject(
        depositor,
        "certificate",
        f"{name}（{c.number}）",
        item,
        id=c.id,
        completed=True,
        done_at=c.issued_at,
    )


def _payout_subject(depositor: Depositor, p: Payout) -> Subject:
    name = notices.PAYOUT_NAMES.get(p.kind, p.kind)
    item = "retirement_withdrawal" if p.kind == "retirement" else "early_repayment"
    completed = p.status == "confirmed"
    return _depositor_subject(
        depositor,
        "payout",
        f"{name}（{p.amount:,.2f} 元）",
        item,
        id=p.id,
        completed=completed,
        waiting="" if completed else "业务办结后方可评价",
        done_at=p.confirmed_at,
    )


def _change_subject(depositor: Depositor, r: ChangeRecord) -> Subject:
    from portal.services.changes import FIELD_LABELS

    completed = r.status == "applied"
    return _depositor_subject(
        depositor,
        "change",
        f"信息变更：{FIELD_LABELS.get(r.field, r.field)}",
        "individual_change",
        id=r.id,
        completed=completed,
        waiting="" if completed else "变更生效后方可评价",
        done_at=r.changed_at,
    )


def depositor_subject(depositor: Depositor, kind: str, subject_id: int) -> Subject:
    """One of this depositor's cases or online items; NotFound for anyone else's."""
    if kind == "case":
        case = _own_cases(depositor).where(ProxyCase.id == subject_id).first()
        if case is None:
            raise NotFound(subject_id)
        subject = case_subject(case)
        if subject.rater != ("depositor", depositor.id):  # the case's applicant is someone else
            raise NotFound(subject_id)
        return subject
    if kind == "certificate":
        c = _own_certificates(depositor).where(Certificate.id == subject_id).first()
        if c is None:
            raise NotFound(subject_id)
        return _certificate_subject(depositor, c)
    if kind == "payout":
        p = _own_payouts(depositor).where(Payout.id == subject_id).first()
        if p is None:
            raise NotFound(subject_id)
        return _payout_subject(depositor, p)
    if kind == "change":
        r = _own_changes(depositor).where(ChangeRecord.id == subject_id).first()
        if r is None:
            raise NotFound(subject_id)
        return _change_subject(depositor, r)
    raise NotFound(subject_id)


def _depositor_subjects(depositor: Depositor, kind: str, ids: list[int]) -> list[Subject]:
    """``depositor_subject`` for many ids of one kind; anyone else's are left out."""
    if kind == "case":
        cases = list(_own_cases(depositor).where(ProxyCase.id.in_(ids)))
        raters = _case_raters(cases, depositor)
        subjects = [case_subject(case, raters[case.id]) for case in cases]
        # a case whose applicant is someone else is theirs to rate
        return [s for s in subjects if s.rater == ("depositor", depositor.id)]
    if kind == "certificate":
        found = _own_certificates(depositor).where(Certificate.id.in_(ids))
        return [_certificate_subject(depositor, c) for c in found]
    if kind == "payout":
        found = _own_payouts(depositor).where(Payout.id.in_(ids))
        return [_payout_subject(depositor, p) for p in found]
    if kind == "change":
        found = _own_changes(depositor).where(ChangeRecord.id.in_(ids))
        return [_change_subject(depositor, r) for r in found]
    return []


def existing(subject: Subject) -> Rating | None:
    kind, rid = subject.rater
    return Rating.get_or_none(
        (Rating.subject_kind == subject.kind)
        & (Rating.subject_id == subject.id)
        & (Rating.rater_kind == kind)
        & (Rating.rater_id == rid)
    )


@dataclass
class Prompt:
    """What a page shows about rating a subject: the rating given, or whether one can be."""

    subject: Subject
    rating: Rating | None

    @property
    def can_rate(self) -> bool:
        return self.rating is None and self.subject.completed

    @property
    def rating_label(self) -> str:
        return label(self.rating.score) if self.rating else ""


def prompt(subject: Subject) -> Prompt:
    return Prompt(subject, existing(subject))


def depositor_prompt(depositor: Depositor, kind: str, subject_id: int) -> Prompt | None:
    try:
        return prompt(depositor_subject(depositor, kind, subject_id))
    except NotFound:
        return None


def depositor_prompts(depositor: Depositor, kind: str, subject_ids) -> dict[int, Prompt]:
    """``depositor_prompt`` for many subjects of one kind, in a constant number of queries
    (for a page listing them): {subject id: Prompt}; an id that is not one of this
    depositor's subjects (where ``depositor_prompt`` gives None) is left out."""
    ids = list(dict.fromkeys(subject_ids))
    if not ids:
        return {}
    subjects = _depositor_subjects(depositor, kind, ids)
    if not subjects:
        return {}
    given = {
        r.subject_id: r
        for r in Rating.select().where(
            (Rating.subject_kind == kind)
            & Rating.subject_id.in_([s.id for s in subjects])
            & (Rating.rater_kind == "depositor")
            & (Rating.rater_id == depositor.id)
        )
    }
    return {s.id: Prompt(s, given.get(s.id)) for s in subjects}


@dataclass
class MyRatings:
    waiting: list[Subject] = field(default_factory=list)  # finished, not rated yet
    given: list[Rating] = field(default_factory=list)


def my_ratings(depositor: Depositor, limit: int = 20) -> MyRatings:
    """The depositor's finished items not rated yet (newest first) and the ratings given."""
    given = list(
        Rating.select()
        .where((Rating.rater_kind == "depositor") & (Rating.rater_id == depositor.id))
        .order_by(Rating.created_at.desc(), Rating.id.desc())
    )
    rated = {(r.subject_kind, r.subject_id) for r in given}
    subjects: list[Subject] = []
    cases = list(_own_cases(depositor).order_by(ProxyCase.updated_at.desc()).limit(limit))
    raters = _case_raters(cases, depositor)
    for case in cases:
        s = case_subject(case, raters[case.id])
        if s.completed and s.rater == ("depositor", depositor.id):
            subjects.append(s)
    for c in _own_certificates(depositor).order_by(Certificate.issued_at.desc()).limit(limit):
        subjects.append(_certificate_subject(depositor, c))
    for p in _own_payouts(depositor).where(Payout.status == "confirmed").limit(limit):
        subjects.append(_payout_subject(depositor, p))
    for r in _own_changes(depositor).where(ChangeRecord.status == "applied").limit(limit):
        subjects.append(_change_subject(depositor, r))
    waiting = [s for s in subjects if (s.kind, s.id) not in rated]
    waiting.sort(key=lambda s: _sort_time(s.done_at), reverse=True)
    return MyRatings(waiting[:limit], given)


def _sort_time(value) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    return datetime.min


# --- rating -------------------------------------------------------------------------------


def clean_comment(score: int, comment: str | None) -> str:
    text = " ".join((comment or "").split())
    if len(text) > MAX_COMMENT:
        raise Refused(f"评价内容不超过 {MAX_COMMENT} 字", "comment")
    if is_bad(score) and not text:
        raise Refused("请说明不满意的原因，以便我们改进", "comment")
    return text


def rate(subject: Subject, score: int, comment: str | None, channel: str, actor: str) -> Rating:
    """Record the rating once; a bad one opens the department's follow-up and tells it."""
    if score not in RATING_LABELS:
        raise Refused("请选择评价等级", "score")
    text = clean_comment(score, comment)
    if not subject.completed:
        raise Refused(subject.waiting or "业务办结后方可评价")
    bad = is_bad(score)
    with write_tx():
        if existing(subject) is not None:
            raise Refused("您已评价过该业务，每项业务只能评价一次")
        try:
            with db.atomic():
                rating = Rating.create(
                    subject_kind=subject.kind,
                    subject_id=subject.id,
                    rater_kind=subject.rater[0],
                    rater_id=subject.rater[1],
                    rater_name=subject.rater_name,
                    channel=channel,
                    item=subject.item,
                    title=subject.title[:120],
                    department=subject.department_id,
                    score=score,
                    comment=text,
                    followup_state=FOLLOWUP_OPEN if bad else "",
                )
        except IntegrityError:  # a concurrent double submit
            raise Refused("您已评价过该业务，每项业务只能评价一次") from None
        audit.record(
            actor,
            "rating.create",
            "rating",
            rating.id,
            subject=f"{subject.kind}:{subject.id}",
            score=score,
            channel=channel,
        )
        if bad:
            _tell_department(rating)
    return rating


def _department_staff(department_id: int | None) -> list[StaffUser]:
    query = StaffUser.select().where(StaffUser.active)
    if department_id:
        people = list(
            query.where(
                (StaffUser.role == "handler") & (StaffUser.department == department_id)
            ).order_by(StaffUser.id)
        )
        if people:
            return people
    return list(query.where(StaffUser.role == "liaison").order_by(StaffUser.id))


def _tell_department(rating: Rating) -> None:
    for person in _department_staff(rating.department_id):
        notices.notify(
            ("staff", person.id),
            f"差评待回访：{rating.title}"[:100],
            f"收到“{label(rating.score)}”评价：{rating.comment}。请在回访后记录，并跟进整改。",
            f"/staff/ratings/{rating.id}",
            f"rating:{rating.id}",
        )


# --- the public tracking page (counter applicants) ----------------------------------------


def track_subject(case_id: int) -> Subject:
    case = ProxyCase.get_or_none(ProxyCase.id == case_id)
    if case is None:
        raise NotFound(case_id)
    return case_subject(case)


# --- staff: the list, follow-ups and the satisfaction rate --------------------------------


def _scope(user: StaffUser):
    if user.role not in VIEW_ROLES:
        return None
    if user.role == "handler":
        if not user.department_id:
            return None
        return Rating.department == user.department_id
    return Rating.id.is_null(False)


@dataclass
class Satisfaction:
    rated: int
    satisfied: int
    counts: dict[int, int]

    @property
    def rate(self) -> Decimal | None:
        """(非常满意 + 满意 + 基本满意) / rated, as a fraction (None with no ratings)."""
        if not self.rated:
            return None
        return Decimal(self.satisfied) / Decimal(self.rated)

    @property
    def percent(self) -> str:
        """The rate as a percentage with one decimal ("93.3%"), or "—" with no ratings."""
        if self.rate is None:
            return "—"
        value = (self.rate * 100).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
        return f"{value}%"

    @property
    def bad(self) -> int:
        return sum(self.counts.get(s, 0) for s in BAD)


def satisfaction(
    since: date | None = None, until: date | None = None, department: int | None = None, clause=None
) -> Satisfaction:
    """The satisfaction rate over ratings made in [since, until] (Asia/Shanghai dates are
    approximated by UTC days here; pass ``None`` for all)."""
    query = Rating.select(Rating.score, fn.COUNT(Rating.id)).group_by(Rating.score)
    if since is not None:
        query = query.where(Rating.created_at >= datetime(since.year, since.month, since.day))
    if until is not None:
        query = query.where(
            Rating.created_at < datetime(until.year, until.month, until.day, 23, 59, 59, 999999)
        )
    if department is not None:
        query = query.where(Rating.department == department)
    if clause is not None:
        query = query.where(clause)
    counts = {score: n for score, n in query.tuples()}
    rated = sum(counts.values())
    satisfied = sum(counts.get(s, 0) for s in SATISFIED)
    return Satisfaction(rated, satisfied, counts)


@dataclass
class Row:
    rating: Rating
    label: str
    department: str
    steps: list[RatingFollowup]

    @property
    def bad(self) -> bool:
        return is_bad(self.rating.score)


@dataclass
class Listing:
    rows: list[Row]
    page: int
    pages: int
    total: int
    satisfaction: Satisfaction
    scope_label: str


FILTERS = {
    "": "全部评价",
    "bad": "差评",
    FOLLOWUP_OPEN: "待回访",
    FOLLOWUP_FIX: "待整改",
    FOLLOWUP_DONE: "已整改",
}


def _rows(ratings: list[Rating]) -> list[Row]:
    names = dict(Department.select(Department.id, Department.name).tuples())
    steps: dict[int, list[RatingFollowup]] = {}
    if ratings:
        for f in (
            RatingFollowup.select(RatingFollowup, StaffUser)
            .join(StaffUser)
            .where(RatingFollowup.rating.in_([r.id for r in ratings]))
            .order_by(RatingFollowup.at, RatingFollowup.id)
        ):
            steps.setdefault(f.rating_id, []).append(f)
    return [
        Row(r, label(r.score), names.get(r.department_id, "—"), steps.get(r.id, []))
        for r in ratings
    ]


def listing(user: StaffUser, show: str = "", page: int = 1) -> Listing:
    scope = _scope(user)
    if scope is None:
        raise NotFound("ratings")
    query = Rating.select().where(scope)
    if show == "bad":
        query = query.where(Rating.score.in_(BAD))
    elif show in (FOLLOWUP_OPEN, FOLLOWUP_FIX, FOLLOWUP_DONE):
        query = query.where(Rating.followup_state == show)
    total = query.count()
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(1, page), pages)
    ratings = list(
        query.order_by(Rating.created_at.desc(), Rating.id.desc()).paginate(page, PAGE_SIZE)
    )
    scope_label = user.department.name if user.role == "handler" else "全中心"
    return Listing(_rows(ratings), page, pages, total, satisfaction(clause=scope), scope_label)


def get_for_staff(user: StaffUser, rating_id: int) -> Row:
    scope = _scope(user)
    rating = None if scope is None else Rating.get_or_none((Rating.id == rating_id) & scope)
    if rating is None:
        raise NotFound(rating_id)
    return _rows([rating])[0]


def next_step(rating: Rating) -> str | None:
    """The follow-up step due next: 回访, then 整改; None when none is (good or closed)."""
    return {FOLLOWUP_OPEN: FOLLOWUP_STEPS[0], FOLLOWUP_FIX: FOLLOWUP_STEPS[1]}.get(
        rating.followup_state
    )


def can_follow_up(user: StaffUser, rating: Rating) -> bool:
    return user.role in FOLLOWUP_ROLES and next_step(rating) is not None


def record_followup(user: StaffUser, rating_id: int, step: str, note: str) -> RatingFollowup:
    """回访 then 整改, each once, by a handler of the department or the liaison."""
    if user.role not in FOLLOWUP_ROLES:
        raise Refused("只有管理部经办人或联络人可以记录回访和整改")
    text = " ".join((note or "").split())
    if not text:
        raise Refused("请填写回访或整改情况", "note")
    if len(text) > MAX_COMMENT:
        raise Refused(f"情况说明不超过 {MAX_COMMENT} 字", "note")
    with write_tx():
        scope = _scope(user)
        rating = locked(Rating.select().where((Rating.id == rating_id) & scope)).first()
        if rating is None:
            raise NotFound(rating_id)
        due = next_step(rating)
        if due is None:
            raise Refused("该评价无需跟进或已整改完毕")
        if step != due:
            raise Refused(f"请先记录{due}", "step")
        state = FOLLOWUP_FIX if due == FOLLOWUP_STEPS[0] else FOLLOWUP_DONE
        won = (
            Rating.update(followup_state=state)
            .where((Rating.id == rating.id) & (Rating.followup_state == rating.followup_state))
            .execute()
        )
        if not won:
            raise Refused("该评价已被他人处理，请刷新")
        followup = RatingFollowup.create(
            rating=rating, step=due, note=text, staff=user, at=utcnow()
        )
        audit.record(f"staff:{user.username}", "rating.followup", "rating", rating.id, step=due)
    return followup
