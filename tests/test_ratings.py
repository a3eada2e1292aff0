"""好差评: rating once and only after completion, bad ratings open a follow-up (回访 then 整改),
the satisfaction rate, and the depositor's, the counter applicant's and the staff's pages."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from portal.models import ChangeRecord, Depositor, Notice, Rating, RatingFollowup
from portal.rules import casestates as cs
from portal.services import certificates, ratings
from tests.conftest import TODAY, login_depositor, login_staff
from tests.notices_helpers import (
    HX,
    OTHER_ID,
    counter_case,
    depositor_case,
    make_case,
    notices_of,
    pending_payout,
    soup,
    staff,
)
from tests.query_helpers import QueryCounter


@pytest.fixture(autouse=True)
def _app_context(app):
    with app.app_context():
        yield


def _rate(subject, score=5, comment="", channel="hall"):
    return ratings.rate(subject, score, comment, channel, "test")


# --- the rules ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "direction, state, ratable",
    [
        (cs.INBOUND, "processing", False),
        (cs.INBOUND, cs.PAUSED, False),
        (cs.INBOUND, "done", True),
        (cs.INBOUND, "fed_back", True),
        (cs.INBOUND, "rejected", True),
        (cs.OUTBOUND, "transmitted", False),
        (cs.OUTBOUND, "feedback", True),
        (cs.OUTBOUND, "archived", True),
    ],
)
def test_a_case_can_be_rated_only_once_it_is_finished(depositor, direction, state, ratable):
    case = depositor_case(depositor, state, direction=direction)
    subject = ratings.depositor_subject(depositor, "case", case.id)
    assert subject.completed is ratable
    if ratable:
        assert _rate(subject).score == 5
    else:
        with pytest.raises(ratings.Refused, match="办结后方可评价"):
            _rate(subject)
        assert Rating.select().count() == 0


def test_a_subject_is_rated_only_once(depositor):
    subject = ratings.depositor_subject(depositor, "case", depositor_case(depositor, "done").id)
    _rate(subject, 4)
    with pytest.raises(ratings.Refused, match="只能评价一次"):
        _rate(subject, 1, "再评一次")
    assert Rating.select().count() == 1


def test_a_case_is_rated_by_the_same_person_whichever_way_they_come(depositor):
    """Applied at our counter and also one of our depositors: /track and /me are one rater."""
    case = counter_case("archived", applicant_id_no=depositor.resident_id)
    assert ratings.track_subject(case.id).rater == ("depositor", depositor.id)
    _rate(ratings.track_subject(case.id), 5, channel="track")
    with pytest.raises(ratings.Refused):
        _rate(ratings.depositor_subject(depositor, "case", case.id), 3)


def test_a_counter_applicant_is_their_own_rater():
    case = counter_case("archived")  # the applicant is not one of our depositors
    subject = ratings.track_subject(case.id)
    assert subject.rater == ("applicant", case.id)
    assert subject.rater_name == "测***人"  # masked


def test_someone_elses_subject_is_not_found(depositor, other_depositor):
    theirs = depositor_case(other_depositor, "done")
    certificate = certificates.issue_usage(
        other_depositor, "某中心", TODAY, lambda code: code, "中心"
    )
    for kind, sid in (("case", theirs.id), ("certificate", certificate.id), ("payout", 999999)):
        with pytest.raises(ratings.NotFound):
            ratings.depositor_subject(depositor, kind, sid)


def test_online_items_can_be_rated_once_done(depositor):
    certificate = certificates.issue_usage(depositor, "某中心", TODAY, lambda code: code, "中心")
    assert _rate(ratings.depositor_subject(depositor, "certificate", certificate.id)).item == (
        "usage_certificate"
    )
    payout = pending_payout(depositor)
    subject = ratings.depositor_subject(depositor, "payout", payout.id)
    assert not subject.completed
    with pytest.raises(ratings.Refused):
        _rate(subject)
    from portal.services import payouts

    payouts.confirm(payout, "REF")
    assert ratings.depositor_subject(depositor, "payout", payout.id).completed
    change = ChangeRecord.create(
        subject_type="depositor", subject_id=depositor.id, field="address", actor="test"
    )
    rating = _rate(ratings.depositor_subject(depositor, "change", change.id), 3)
    assert rating.title == "信息变更：联系地址"


def _batch_matches_one_by_one(depositor, kind, ids) -> dict:
    """depositor_prompts gives, for each id, what depositor_prompt gives (None: left out)."""
    batch = ratings.depositor_prompts(depositor, kind, ids)
    single = {sid: ratings.depositor_prompt(depositor, kind, sid) for sid in ids}
    assert batch == {sid: p for sid, p in single.items() if p is not None}
    return batch


def test_the_prompts_of_many_cases_are_those_of_each(depositor, other_depositor):
    rated = depositor_case(depositor, "fed_back")
    _rate(ratings.depositor_subject(depositor, "case", rated.id), 4)
    rateable = depositor_case(depositor, "archived", direction=cs.OUTBOUND)
    running = depositor_case(depositor, "processing")
    # applied at our counter with the depositor's ID number, not linked: still theirs
    at_counter = counter_case("feedback", applicant_id_no=depositor.resident_id)
    # linked to another depositor although the ID number is this one's: the other's to rate
    linked_elsewhere = depositor_case(
        other_depositor, "done", applicant_id_no=depositor.resident_id
    )
    theirs = depositor_case(other_depositor, "done")
    ids = [rated.id, rateable.id, running.id, at_counter.id, linked_elsewhere.id, theirs.id]
    batch = _batch_matches_one_by_one(depositor, "case", [*ids, rated.id, 999999])
    assert set(batch) == {rated.id, rateable.id, running.id, at_counter.id}
    assert batch[rated.id].rating_label == "满意" and not batch[rated.id].can_rate
    assert batch[rateable.id].can_rate and batch[at_counter.id].can_rate
    assert not batch[running.id].can_rate and batch[running.id].rating is None
    assert {p.subject.rater for p in batch.values()} == {("depositor", depositor.id)}
    assert _batch_matches_one_by_one(other_depositor, "case", ids).keys() == {
        linked_elsewhere.id,
        theirs.id,
    }
    assert ratings.depositor_prompts(depositor, "case", []) == {}
    assert ratings.depositor_prompts(depositor, "loan", [rated.id]) == {}


def test_the_raters_of_many_cases_are_looked_up_as_for_one(depositor, other_depositor):
    cases = [
        depositor_case(depositor, "done"),
        depositor_case(other_depositor, "done", applicant_id_no=depositor.resident_id),
        counter_case("feedback", applicant_id_no=depositor.resident_id),
        counter_case("feedback", applicant_id_no=other_depositor.resident_id),
        counter_case("feedback"),  # not one of our depositors: the applicant rates
    ]
    expected = {c.id: ratings._case_rater(c) for c in cases}
    assert ratings._case_raters(cases) == expected
    assert ratings._case_raters(cases, depositor) == expected
    assert expected[cases[3].id][0] == ("depositor", other_depositor.id)
    assert expected[cases[4].id][0] == ("applicant", cases[4].id)


def test_the_prompts_of_many_online_items_are_those_of_each(depositor, other_depositor):
    from portal.services import payouts

    mine = [
        certificates.issue_usage(depositor, "某中心", TODAY, lambda code: code, "中心")
        for _ in range(2)
    ]
    _rate(ratings.depositor_subject(depositor, "certificate", mine[0].id), 5)
    theirs = certificates.issue_usage(other_depositor, "某中心", TODAY, lambda code: code, "中心")
    batch = _batch_matches_one_by_one(depositor, "certificate", [c.id for c in mine] + [theirs.id])
    assert [batch[c.id].can_rate for c in mine] == [False, True]

    waiting = pending_payout(depositor)
    done = pending_payout(depositor, amount="99.00")
    payouts.confirm(done, "REF")
    other = pending_payout(other_depositor)
    batch = _batch_matches_one_by_one(depositor, "payout", [waiting.id, done.id, other.id])
    assert (batch[waiting.id].can_rate, batch[done.id].can_rate) == (False, True)
    assert batch[waiting.id].subject.waiting == "业务办结后方可评价"

    applied, scheduled, elses = (
        ChangeRecord.create(
            subject_type="depositor", subject_id=who.id, field="address", actor="t", status=st
        )
        for who, st in (
            (depositor, "applied"),
            (depositor, "scheduled"),
            (other_depositor, "applied"),
        )
    )
    _rate(ratings.depositor_subject(depositor, "change", applied.id), 3)
    batch = _batch_matches_one_by_one(depositor, "change", [applied.id, scheduled.id, elses.id])
    assert batch[applied.id].rating_label == "基本满意" and not batch[scheduled.id].can_rate
    assert elses.id not in batch


def test_the_prompts_of_many_cases_take_the_same_queries_as_of_one(depositor, monkeypatch):
    counter = QueryCounter(monkeypatch)

    def queries(ids) -> int:
        counter.clear()
        prompts = ratings.depositor_prompts(depositor, "case", ids)
        assert len(prompts) == len(ids)
        return len(counter.statements)

    cases = [depositor_case(depositor, state) for state in ("done", "fed_back", "processing") * 3]
    cases.append(counter_case("feedback", applicant_id_no=depositor.resident_id))
    _rate(ratings.depositor_subject(depositor, "case", cases[0].id), 5)
    assert queries([c.id for c in cases]) == queries([cases[0].id]) <= 3


def test_a_bad_rating_needs_a_reason_and_opens_the_departments_follow_up(depositor):
    case = depositor_case(depositor, "done")
    subject = ratings.depositor_subject(depositor, "case", case.id)
    with pytest.raises(ratings.Refused) as refused:
        _rate(subject, 2, "  ")
    assert refused.value.field == "comment"
    rating = _rate(subject, 1, "等待时间太长")
    assert rating.followup_state == "待回访"
    assert rating.department_id == case.department_id
    told = notices_of("staff", staff("handler").id)  # AZQ's handler
    assert [n.link for n in told] == [f"/staff/ratings/{rating.id}"]
    assert notices_of("staff", staff("handler2").id) == []  # another department


def test_a_good_rating_opens_nothing(depositor):
    rating = _rate(
        ratings.depositor_subject(depositor, "case", depositor_case(depositor, "done").id), 3
    )
    assert rating.followup_state == ""
    assert not Notice.select().where(Notice.link.startswith("/staff/ratings/")).exists()


def test_comments_are_bounded():
    case = counter_case("archived")
    with pytest.raises(ratings.Refused, match="500"):
        _rate(ratings.track_subject(case.id), 5, "好" * 501)


# --- follow-ups ---------------------------------------------------------------------------


def _bad(depositor, dept="AZQ"):
    case = depositor_case(depositor, "done", dept=dept)
    return _rate(ratings.depositor_subject(depositor, "case", case.id), 2, "态度不好")


def test_follow_up_is_visit_then_rectification(depositor):
    rating = _bad(depositor)
    handler = staff("handler")
    with pytest.raises(ratings.Refused, match="请先记录回访"):
        ratings.record_followup(handler, rating.id, "整改", "已整改")
    with pytest.raises(ratings.Refused) as empty:
        ratings.record_followup(handler, rating.id, "回访", " ")
    assert empty.value.field == "note"
    ratings.record_followup(handler, rating.id, "回访", "电话回访，已致歉")
    assert Rating.get_by_id(rating.id).followup_state == "待整改"
    ratings.record_followup(staff("liaison"), rating.id, "整改", "增加窗口引导")
    assert Rating.get_by_id(rating.id).followup_state == "已整改"
    with pytest.raises(ratings.Refused, match="无需跟进"):
        ratings.record_followup(handler, rating.id, "整改", "再来一次")
    steps = (
        RatingFollowup.select()
        .where(RatingFollowup.rating == rating.id)
        .order_by(RatingFollowup.id)
    )
    assert [(f.step, f.staff.username) for f in steps] == [("回访", "handler"), ("整改", "liaison")]


def test_who_may_follow_up(depositor):
    rating = _bad(depositor)
    with pytest.raises(ratings.NotFound):  # another department's handler
        ratings.record_followup(staff("handler2"), rating.id, "回访", "x")
    for role in ("official", "auditor", "clerk", "admin"):
        with pytest.raises(ratings.Refused):
            ratings.record_followup(staff(role), rating.id, "回访", "x")
    good = _rate(
        ratings.depositor_subject(depositor, "case", depositor_case(depositor, "fed_back").id), 5
    )
    with pytest.raises(ratings.Refused, match="无需跟进"):
        ratings.record_followup(staff("handler"), good.id, "回访", "x")


# --- the satisfaction rate ----------------------------------------------------------------


def test_the_satisfaction_rate_formula():
    assert ratings.satisfaction().rate is None and ratings.satisfaction().percent == "—"
    scores = [5, 5, 4, 3, 2, 1, 5]
    for score in scores:
        case = counter_case("archived")
        _rate(ratings.track_subject(case.id), score, "原因" if score < 3 else "")
    sat = ratings.satisfaction()
    assert (sat.rated, sat.satisfied, sat.bad) == (7, 5, 2)
    assert sat.rate == Decimal(5) / Decimal(7)
    assert sat.percent == "71.4%"
    assert ratings.satisfaction(department=ratings.Department.get(code="AYQ").id).rated == 0


# --- the depositor's pages ----------------------------------------------------------------


def test_rating_a_finished_case_from_the_hall(client, depositor):
    case = depositor_case(depositor, "fed_back")
    login_depositor(client, depositor)
    cases_page = soup(client.get("/me/cases"))
    link = cases_page.select_one(f'a[href="/me/ratings/case/{case.id}"]')
    assert link is not None and link.text == "评价本次服务"
    page = client.get(f"/me/ratings/case/{case.id}")
    assert page.status_code == 200
    html = soup(page)
    assert len(html.select("input[name=score]")) == 5
    assert [lbl.text for lbl in html.select(".rate-choice span")] == [
        "非常满意",
        "满意",
        "基本满意",
        "不满意",
        "非常不满意",
    ]
    r = client.post(f"/me/ratings/case/{case.id}", data={"score": "4", "comment": "办得快"})
    assert r.status_code == 303
    rating = Rating.get()
    assert (rating.score, rating.comment, rating.channel) == (4, "办得快", "hall")
    shown = soup(client.get(f"/me/ratings/case/{case.id}"))
    assert shown.select_one(".rate-tag").text == "满意" and shown.select("form.rate-form") == []
    assert "您的评价" in soup(client.get(f"/me/cases/{case.id}")).select_one(".rate-line").text
    listed = soup(client.get("/me/cases")).select_one(f'a[href="/me/ratings/case/{case.id}"]')
    assert listed.text == "查看" and "满意" in listed.parent.text


def test_rating_with_htmx_swaps_the_panel(client, depositor):
    case = depositor_case(depositor, "done")
    login_depositor(client, depositor)
    fragment = client.get(f"/me/ratings/case/{case.id}", headers=HX)
    assert soup(fragment).select_one("html") is None
    assert soup(fragment).select_one("section#rate-panel form")["hx-post"]
    r = client.post(
        f"/me/ratings/case/{case.id}", data={"score": "1", "comment": "太慢"}, headers=HX
    )
    assert r.status_code == 200
    assert soup(r).select_one("#rate-panel .rate-tag").text == "非常不满意"
    assert "回访" in soup(r).select_one("#rate-panel").text


def test_invalid_ratings_are_explained_next_to_the_field(client, depositor):
    case = depositor_case(depositor, "done")
    login_depositor(client, depositor)
    r = client.post(f"/me/ratings/case/{case.id}", data={"comment": "x"})
    assert r.status_code == 422
    assert soup(r).select_one("#score-error").text == "请选择评价等级"
    r = client.post(f"/me/ratings/case/{case.id}", data={"score": "2"}, headers=HX)
    assert r.status_code == 422
    assert "请说明不满意的原因" in soup(r).select_one("#comment-error").text
    r = client.post(f"/me/ratings/case/{case.id}", data={"score": "9"})
    assert r.status_code == 422
    assert Rating.select().count() == 0


def test_an_unfinished_case_shows_no_form(client, depositor):
    case = depositor_case(depositor, "processing")
    login_depositor(client, depositor)
    html = soup(client.get(f"/me/ratings/case/{case.id}"))
    assert html.select("form.rate-form") == [] and "办结后方可评价" in html.text
    r = client.post(f"/me/ratings/case/{case.id}", data={"score": "5"})
    assert r.status_code == 422 and Rating.select().count() == 0


def test_someone_elses_case_or_item_is_a_404(client, depositor, other_depositor):
    theirs = depositor_case(other_depositor, "done")
    payout = pending_payout(other_depositor)
    login_depositor(client, depositor)
    for url in (
        f"/me/ratings/case/{theirs.id}",
        f"/me/ratings/payout/{payout.id}",
        "/me/ratings/certificate/999999",
        "/me/ratings/change/999999",
    ):
        assert client.get(url).status_code == 404
        assert client.post(url, data={"score": "5"}).status_code == 404
    assert client.get(f"/me/ratings/loan/{theirs.id}").status_code == 404


def test_my_ratings_lists_what_waits_and_what_was_given(client, depositor):
    waiting = depositor_case(depositor, "done")
    rated = depositor_case(depositor, "fed_back")
    _rate(ratings.depositor_subject(depositor, "case", rated.id), 5, "很好")
    depositor_case(depositor, "processing")  # not finished: not listed
    login_depositor(client, depositor)
    html = soup(client.get("/me/ratings/"))
    assert html.select_one(f'.rate-waiting a[href="/me/ratings/case/{waiting.id}"]')
    assert not html.select_one(f'.rate-waiting a[href="/me/ratings/case/{rated.id}"]')
    assert "很好" in html.select_one(".rate-given-list").text


def test_receipts_link_to_the_rating(client, depositor):
    certificate = certificates.issue_usage(depositor, "某中心", TODAY, lambda code: code, "中心")
    login_depositor(client, depositor)
    html = soup(client.get(f"/me/certificates/{certificate.id}"))
    assert html.select_one(f'a[href="/me/ratings/certificate/{certificate.id}"]')


# --- the counter applicant, from the tracking page ----------------------------------------


def _track(client, case, id_no=OTHER_ID):
    return client.post("/track", data={"receipt_no": case.receipt_no, "resident_id": id_no})


def _token(response) -> str:
    return soup(response).select_one("#track-rate input[name=token]")["value"]


def test_a_counter_applicant_rates_from_the_tracking_page(client):
    case = counter_case("archived")
    page = _track(client, case)
    assert page.status_code == 200
    assert OTHER_ID not in str(soup(page).select_one("#track-rate"))  # a token, not the ID
    r = client.post(
        "/track/rate", data={"token": _token(page), "score": "5", "comment": "窗口服务热情"}
    )
    assert r.status_code == 200 and "感谢您的评价" in soup(r).text
    rating = Rating.get()
    assert (rating.rater_kind, rating.rater_id, rating.channel) == ("applicant", case.id, "track")
    again = _track(client, case)
    assert soup(again).select_one("#track-rate .rate-tag").text == "非常满意"
    assert soup(again).select("#track-rate form") == []


def test_no_rating_form_while_the_case_runs(client):
    case = counter_case("transmitted")
    assert soup(_track(client, case)).select_one("#track-rate") is None


def test_the_tracking_rating_needs_a_valid_token(client):
    case = counter_case("archived")
    assert client.post("/track/rate", data={"score": "5"}).status_code == 400
    forged = "eyJjYXNlIjoxfQ.forged.signature"
    assert client.post("/track/rate", data={"token": forged, "score": "5"}).status_code == 400
    assert client.get("/track/rate").status_code == 200
    page = _track(client, case)
    r = client.post("/track/rate", data={"token": _token(page), "score": "1"})
    assert r.status_code == 422
    assert "请说明不满意的原因" in soup(r).select_one("#comment-error").text
    assert soup(r).select_one("input[name=token]")["value"] == _token(page)
    assert Rating.select().count() == 0


def test_an_expired_tracking_token_is_refused(client, app, monkeypatch):
    from portal.public import ratings as views

    case = counter_case("archived")
    token = _token(_track(client, case))
    monkeypatch.setattr(views, "TOKEN_SECONDS", -1)
    r = client.post("/track/rate", data={"token": token, "score": "5"})
    assert r.status_code == 400 and "30 分钟" in soup(r).text


# --- staff --------------------------------------------------------------------------------


def _two_departments(depositor):
    _bad(depositor, "AZQ")
    other = depositor_case(depositor, "done", dept="AYQ")
    _rate(ratings.depositor_subject(depositor, "case", other.id), 5)


def test_a_handler_sees_their_department_with_its_satisfaction_rate(client, depositor):
    _two_departments(depositor)
    login_staff(client, "handler")
    html = soup(client.get("/staff/ratings/"))
    assert len(html.select(".ratings-table tbody tr")) == 1  # AZQ only
    assert html.select_one("#satisfaction-rate").text == "0.0%"
    assert html.select_one("nav a[aria-current=page]").text.strip() == "服务评价"


def test_the_liaison_sees_every_rating(client, depositor):
    _two_departments(depositor)
    login_staff(client, "liaison")
    html = soup(client.get("/staff/ratings/"))
    assert len(html.select(".ratings-table tbody tr")) == 2
    assert html.select_one("#satisfaction-rate").text == "50.0%"
    fragment = client.get("/staff/ratings/?show=bad", headers=HX)
    assert soup(fragment).select_one("html") is None
    assert len(soup(fragment).select(".ratings-table tbody tr")) == 1


@pytest.mark.parametrize(
    "username, status", [("clerk", 403), ("admin", 403), ("official", 200), ("auditor", 200)]
)
def test_who_may_open_the_ratings_page(client, username, status):
    login_staff(client, username)
    assert client.get("/staff/ratings/").status_code == status


def test_another_departments_rating_is_a_404(client, depositor):
    rating = _bad(depositor, "AYQ")
    login_staff(client, "handler")
    assert client.get(f"/staff/ratings/{rating.id}").status_code == 404
    r = client.post(f"/staff/ratings/{rating.id}/followup", data={"step": "回访", "note": "x"})
    assert r.status_code == 404


def test_recording_the_follow_up_from_the_page(client, depositor):
    rating = _bad(depositor)
    login_staff(client, "handler")
    page = soup(client.get(f"/staff/ratings/{rating.id}"))
    assert page.select_one("#followup form input[name=step]")["value"] == "回访"
    r = client.post(f"/staff/ratings/{rating.id}/followup", data={"step": "回访", "note": ""})
    assert r.status_code == 422 and soup(r).select_one("#note-error")
    r = client.post(
        f"/staff/ratings/{rating.id}/followup",
        data={"step": "回访", "note": "已电话回访"},
        headers=HX,
    )
    assert r.status_code == 200
    assert "已电话回访" in soup(r).select_one("#followup .timeline").text
    assert soup(r).select_one("#followup input[name=step]")["value"] == "整改"
    r = client.post(f"/staff/ratings/{rating.id}/followup", data={"step": "回访", "note": "x"})
    assert r.status_code == 422 and "请先记录整改" in r.get_data(as_text=True)
    r = client.post(f"/staff/ratings/{rating.id}/followup", data={"step": "整改", "note": "培训"})
    assert r.status_code == 303
    assert Rating.get_by_id(rating.id).followup_state == "已整改"


def test_officials_read_but_do_not_record(client, depositor):
    rating = _bad(depositor)
    login_staff(client, "official")
    page = soup(client.get(f"/staff/ratings/{rating.id}"))
    assert page.select("#followup form") == []
    r = client.post(f"/staff/ratings/{rating.id}/followup", data={"step": "回访", "note": "x"})
    # issue 9: a role that only reads is refused with 403 before the form is read
    assert r.status_code == 403 and RatingFollowup.select().count() == 0


def test_the_dashboard_shows_the_satisfaction_rate(client):
    for score in (5, 2):
        _rate(ratings.track_subject(counter_case("archived").id), score, "原因")
    login_staff(client, "admin")
    html = soup(client.get("/staff/dashboard/"))
    assert html.select_one("#satisfaction-rate").text == "50.0%"


def test_the_inbox_notice_of_a_bad_rating_opens_the_rating(client, depositor):
    rating = _bad(depositor)
    notice = notices_of("staff", staff("handler").id)[0]
    login_staff(client, "handler")
    r = client.post(f"/staff/inbox/{notice.id}/open")
    assert r.headers["Location"] == f"/staff/ratings/{rating.id}"
    assert client.get(r.headers["Location"]).status_code == 200


def test_rater_names_are_masked_for_staff(client, depositor):
    _bad(depositor)
    login_staff(client, "liaison")
    text = client.get("/staff/ratings/").get_data(as_text=True)
    assert depositor.name not in text or len(depositor.name) == 1
    assert not re.search(r"\d{17}[\dX]", text)
    assert Depositor.get_by_id(depositor.id).resident_id not in text


def test_a_case_without_a_department_goes_to_the_liaison(depositor):
    case = make_case(
        cs.INBOUND,
        "rejected",
        dept=None,
        depositor=depositor,
        applicant_id_no=depositor.resident_id,
    )
    rating = _rate(ratings.depositor_subject(depositor, "case", case.id), 1, "被退回")
    assert [n.link for n in notices_of("staff", staff("liaison").id)] == [
        f"/staff/ratings/{rating.id}"
    ]
