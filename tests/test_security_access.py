"""Issue 9, points 6 and 7: every route × every role, and forged board moves.

The table below names, for every endpoint and method of ``app.url_map``, the outcome each of
the twelve roles gets (``tests/security_helpers.py`` describes the roles and the world of
objects the URLs point at). The test enumerates the URL map, so a new route without a row
fails with a message naming it; a row for a route that no longer exists fails too.

Outcome codes, one per role in the order of ``COLUMNS``::

    A  allowed: the request passes the access checks (2xx, a redirect that is not to a login
       page, 400/409/422 from form validation on the empty POST body the test sends)
    L  sent to log in (a redirect to a login page, or 401 for htmx)
    D  403
    H  404 (someone else's object: its existence is not revealed)
    nnn  exactly that status (the machine-to-machine platform inbox)

Each object-bound URL points at objects of the "own" side: the depositor's loan, certificate,
payouts, case and e-code; the operator's employer; a case of 阿拉善左旗管理部 (the handler's);
the clerk's e-code look-up. Variants (``endpoint@variant``) point the same route at another
object: an outbound case, or a case of 阿拉善右旗管理部 (the other handler's).

The policy the table encodes is checked separately on the table itself (``test_policy_*``):
depositors and operators never reach staff pages or someone else's data; handlers only their
department's cases; only officials issue, refuse or revoke settlement certificates; every
business POST by the auditor is refused; the admin sees no business data.
"""

from __future__ import annotations

import pytest
from flask import url_for

from portal.models import CaseEvent, ProxyCase
from tests.conftest import TODAY
from tests.security_helpers import (
    ALLOW,
    DENY,
    HIDE,
    LOGIN,
    ROLES,
    build_world,
    login,
    login_staff_user,
    outcome,
)

COLUMNS = ROLES  # anonymous depositor other_depositor operator other_operator clerk liaison
#                  handler other_handler official admin auditor
CODES = {"A": ALLOW, "L": LOGIN, "D": DENY, "H": HIDE}

# fmt: off
#                                        anon dep oth op  oop clk lia hdl oh  off adm aud
TABLE: dict[str, str] = {
    # --- public pages: anyone ---------------------------------------------------------------
    "public.index GET":                  "A   A   A   A   A   A   A   A   A   A   A   A",
    "public.verify GET":                 "A   A   A   A   A   A   A   A   A   A   A   A",
    "public.verify_code GET":            "A   A   A   A   A   A   A   A   A   A   A   A",
    "public.track GET":                  "A   A   A   A   A   A   A   A   A   A   A   A",
    "public.track POST":                 "A   A   A   A   A   A   A   A   A   A   A   A",
    "guides.index GET":                  "A   A   A   A   A   A   A   A   A   A   A   A",
    "guides.guide GET":                  "A   A   A   A   A   A   A   A   A   A   A   A",
    "healthz GET":                       "A   A   A   A   A   A   A   A   A   A   A   A",
    "static GET":                        "A   A   A   A   A   A   A   A   A   A   A   A",
    "dev.sms_outbox GET":                "A   A   A   A   A   A   A   A   A   A   A   A",
    "employer.track GET":                "A   A   A   A   A   A   A   A   A   A   A   A",
    "employer.track POST":               "A   A   A   A   A   A   A   A   A   A   A   A",
    "employer.activate GET":             "A   A   A   A   A   A   A   A   A   A   A   A",
    "employer.activate POST":            "A   A   A   A   A   A   A   A   A   A   A   A",
    "employer.activate_code POST":       "A   A   A   A   A   A   A   A   A   A   A   A",
    # signed packages only: an unsigned body is refused whoever sends it
    "platform_inbox.about GET":          "A   A   A   A   A   A   A   A   A   A   A   A",
    "platform_inbox.receive POST":       "400 400 400 400 400 400 400 400 400 400 400 400",
    # --- logging in and out ----------------------------------------------------------------
    "auth.login GET":                    "A   A   A   A   A   A   A   A   A   A   A   A",
    "auth.login POST":                   "A   A   A   A   A   A   A   A   A   A   A   A",
    "auth.login_code GET":               "L   L   L   L   L   L   L   L   L   L   L   L",
    "auth.login_code POST":              "L   L   L   L   L   L   L   L   L   L   L   L",
    "auth.resend_code POST":             "L   L   L   L   L   L   L   L   L   L   L   L",
    "auth.activate GET":                 "A   A   A   A   A   A   A   A   A   A   A   A",
    "auth.activate POST":                "A   A   A   A   A   A   A   A   A   A   A   A",
    "auth.reset GET":                    "A   A   A   A   A   A   A   A   A   A   A   A",
    "auth.reset POST":                   "A   A   A   A   A   A   A   A   A   A   A   A",
    "auth.password_set GET":             "A   A   A   A   A   A   A   A   A   A   A   A",
    "auth.password_set POST":            "A   A   A   A   A   A   A   A   A   A   A   A",
    "auth.employer_login GET":           "A   A   A   A   A   A   A   A   A   A   A   A",
    "auth.employer_login POST":          "A   A   A   A   A   A   A   A   A   A   A   A",
    "auth.employer_login_code GET":      "L   L   L   L   L   L   L   L   L   L   L   L",
    "auth.employer_login_code POST":     "L   L   L   L   L   L   L   L   L   L   L   L",
    "auth.staff_login GET":              "A   A   A   A   A   A   A   A   A   A   A   A",
    "auth.staff_login POST":             "A   A   A   A   A   A   A   A   A   A   A   A",
    "auth.staff_totp GET":               "L   L   L   L   L   L   L   L   L   L   L   L",
    "auth.staff_totp POST":              "L   L   L   L   L   L   L   L   L   L   L   L",
    "auth.staff_enrol GET":              "L   L   L   L   L   L   L   L   L   L   L   L",
    "auth.staff_enrol POST":             "L   L   L   L   L   L   L   L   L   L   L   L",
    "auth.staff_setup GET":              "H   H   H   H   H   H   H   H   H   H   H   H",
    "auth.staff_setup POST":             "H   H   H   H   H   H   H   H   H   H   H   H",
    "auth.logout POST":                  "L   L   L   L   L   L   L   L   L   L   L   L",
    # --- the depositor hall: the depositor's own data only -----------------------------------
    "hall.account GET":                  "L   A   A   D   D   D   D   D   D   D   D   D",
    "hall.deposit_detail GET":           "L   A   A   D   D   D   D   D   D   D   D   D",
    "hall.statement GET":                "L   A   A   D   D   D   D   D   D   D   D   D",
    "hall.statement_pdf GET":            "L   A   A   D   D   D   D   D   D   D   D   D",
    "hall.loans GET":                    "L   A   A   D   D   D   D   D   D   D   D   D",
    "hall.loan_quota GET":               "L   A   A   D   D   D   D   D   D   D   D   D",
    "hall.loan_detail GET":              "L   A   H   D   D   D   D   D   D   D   D   D",
    "hall.payoff GET":                   "L   A   H   D   D   D   D   D   D   D   D   D",
    "hall.payoff POST":                  "L   A   H   D   D   D   D   D   D   D   D   D",
    "hall.payoff_calculator GET":        "L   A   H   D   D   D   D   D   D   D   D   D",
    "hall.payoff_receipt GET":           "L   A   H   D   D   D   D   D   D   D   D   D",
    "hall.request_settlement POST":      "L   A   H   D   D   D   D   D   D   D   D   D",
    "hall.certificates GET":             "L   A   A   D   D   D   D   D   D   D   D   D",
    "hall.certificates POST":            "L   A   A   D   D   D   D   D   D   D   D   D",
    "hall.certificate GET":              "L   A   H   D   D   D   D   D   D   D   D   D",
    "hall.certificate_pdf GET":          "L   A   H   D   D   D   D   D   D   D   D   D",
    "hall.retirement GET":               "L   A   A   D   D   D   D   D   D   D   D   D",
    "hall.retirement POST":              "L   A   A   D   D   D   D   D   D   D   D   D",
    "hall.retirement_receipt GET":       "L   A   H   D   D   D   D   D   D   D   D   D",
    "hall.retirement_receipt_pdf GET":   "L   A   H   D   D   D   D   D   D   D   D   D",
    "hall.changes GET":                  "L   A   A   D   D   D   D   D   D   D   D   D",
    "hall.change_address POST":          "L   A   A   D   D   D   D   D   D   D   D   D",
    "hall.change_card POST":             "L   A   A   D   D   D   D   D   D   D   D   D",
    "hall.change_phone_start POST":      "L   A   A   D   D   D   D   D   D   D   D   D",
    "hall.change_phone_confirm GET":     "L   A   A   D   D   D   D   D   D   D   D   D",
    "hall.change_phone_confirm POST":    "L   A   A   D   D   D   D   D   D   D   D   D",
    "hall.change_phone_cancel POST":     "L   A   A   D   D   D   D   D   D   D   D   D",
    "hall.send_code POST":               "L   A   A   D   D   D   D   D   D   D   D   D",
    "hall.cases GET":                    "L   A   A   D   D   D   D   D   D   D   D   D",
    "hall.case GET":                     "L   A   H   D   D   D   D   D   D   D   D   D",
    "ecode.index GET":                   "L   A   A   D   D   D   D   D   D   D   D   D",
    "ecode.issue POST":                  "L   A   A   D   D   D   D   D   D   D   D   D",
    "ecode.revoke POST":                 "L   A   H   D   D   D   D   D   D   D   D   D",
    # --- the employer hall: the operator's own employer only ---------------------------------
    "employer.overview GET":             "L   D   D   A   A   D   D   D   D   D   D   D",
    "employer.detail_export GET":        "L   D   D   A   A   D   D   D   D   D   D   D",
    "employer.roster GET":               "L   D   D   A   A   D   D   D   D   D   D   D",
    "employer.change_base GET":          "L   D   D   A   H   D   D   D   D   D   D   D",
    "employer.change_base POST":         "L   D   D   A   H   D   D   D   D   D   D   D",
    "employer.changes GET":              "L   D   D   A   A   D   D   D   D   D   D   D",
    "employer.change_contact POST":      "L   D   D   A   A   D   D   D   D   D   D   D",
    "employer.change_address POST":      "L   D   D   A   A   D   D   D   D   D   D   D",
    "employer.change_ratios POST":       "L   D   D   A   A   D   D   D   D   D   D   D",
    "employer.send_code POST":           "L   D   D   A   A   D   D   D   D   D   D   D",
    "employer.operators GET":            "L   D   D   A   A   D   D   D   D   D   D   D",
    "employer.add_operator POST":        "L   D   D   A   A   D   D   D   D   D   D   D",
    "employer.operator_action GET":      "L   D   D   A   H   D   D   D   D   D   D   D",
    "employer.operator_action POST":     "L   D   D   A   H   D   D   D   D   D   D   D",
    "employer.certificates GET":         "L   D   D   A   A   D   D   D   D   D   D   D",
    "employer.certificates POST":        "L   D   D   A   A   D   D   D   D   D   D   D",
    "employer.certificate GET":          "L   D   D   A   H   D   D   D   D   D   D   D",
    "employer.certificate_pdf GET":      "L   D   D   A   H   D   D   D   D   D   D   D",
    # --- the intranet ------------------------------------------------------------------------
    "intranet.home GET":                 "L   D   D   D   D   A   A   A   A   A   A   A",
    # boards: clerks the outbound board only; officials and admins none; the auditor reads
    "board.index GET":                   "L   D   D   D   D   A   A   A   A   D   D   A",
    "board.board GET":                   "L   D   D   D   D   D   A   A   A   D   D   A",
    "board.column_more GET":             "L   D   D   D   D   D   A   A   A   D   D   A",
    "board.poll GET":                    "L   D   D   D   D   D   A   A   A   D   D   A",
    "board.case_detail GET":             "L   D   D   D   D   H   A   A   H   D   D   A",
    "board.case_detail@outbound GET":    "L   D   D   D   D   A   A   A   H   D   D   A",
    "board.case_detail@other_dept GET":  "L   D   D   D   D   H   A   H   A   D   D   A",
    "board.case_card GET":               "L   D   D   D   D   H   A   A   H   D   D   A",
    "board.case_card@outbound GET":      "L   D   D   D   D   A   A   A   H   D   D   A",
    "board.move POST":                   "L   D   D   D   D   H   A   A   H   D   D   D",
    "board.move@outbound POST":          "L   D   D   D   D   A   A   A   H   D   D   D",
    "board.move@other_dept POST":        "L   D   D   D   D   H   A   H   A   D   D   D",
    "board.comment POST":                "L   D   D   D   D   H   A   A   H   D   D   D",
    "board.take POST":                   "L   D   D   D   D   D   D   A   H   D   D   D",
    "board.take@other_dept POST":        "L   D   D   D   D   D   D   H   A   D   D   D",
    "board.assign POST":                 "L   D   D   D   D   D   A   D   D   D   D   D",
    "board.mail POST":                   "L   D   D   D   D   D   A   D   D   D   D   D",
    "board.limits GET":                  "L   D   D   D   D   D   D   D   D   D   A   D",
    "board.limits POST":                 "L   D   D   D   D   D   D   D   D   D   A   D",
    # the counter: clerks and handlers accept; the liaison and the auditor read cases
    "counter.start GET":                 "L   D   D   D   D   A   D   A   A   D   D   D",
    "counter.guided POST":               "L   D   D   D   D   A   D   A   A   D   D   D",
    "counter.new_case GET":              "L   D   D   D   D   A   D   A   A   D   D   D",
    "counter.create_case POST":          "L   D   D   D   D   A   D   A   A   D   D   D",
    "counter.case_page GET":             "L   D   D   D   D   A   A   A   H   D   D   A",
    "counter.document GET":              "L   D   D   D   D   A   A   A   H   D   D   A",
    "counter.material GET":              "L   D   D   D   D   A   A   A   H   D   D   A",
    "counter.upload_material POST":      "L   D   D   D   D   A   A   A   H   D   D   D",
    "ledger.index GET":                  "L   D   D   D   D   A   A   A   A   D   D   A",
    "ledger.export GET":                 "L   D   D   D   D   A   A   A   A   D   D   A",
    "ecode_counter.index GET":           "L   D   D   D   D   A   D   A   A   D   D   D",
    "ecode_counter.lookup POST":         "L   D   D   D   D   A   D   A   A   D   D   D",
    "ecode_counter.show GET":            "L   D   D   D   D   A   D   H   H   D   D   D",
    # processing inbound cases: handlers of the case's department
    "processing.case GET":               "L   D   D   D   D   D   D   A   H   D   D   D",
    "processing.case@other_dept GET":    "L   D   D   D   D   D   D   H   A   D   D   D",
    "processing.result GET":             "L   D   D   D   D   H   A   A   H   D   D   A",
    "processing.query POST":             "L   D   D   D   D   D   D   A   H   D   D   D",
    "processing.usage POST":             "L   D   D   D   D   D   D   A   H   D   D   D",
    "processing.purchase POST":          "L   D   D   D   D   D   D   A   H   D   D   D",
    "processing.purchase@other_dept POST": "L D   D   D   D   D   D   H   A   D   D   D",
    "processing.retirement POST":        "L   D   D   D   D   D   D   A   H   D   D   D",
    "processing.payoff POST":            "L   D   D   D   D   D   D   A   H   D   D   D",
    "processing.settlement POST":        "L   D   D   D   D   D   D   A   H   D   D   D",
    "processing.employer POST":          "L   D   D   D   D   D   D   A   H   D   D   D",
    "processing.employer_change POST":   "L   D   D   D   D   D   D   A   H   D   D   D",
    "processing.change POST":            "L   D   D   D   D   D   D   A   H   D   D   D",
    "processing.finish POST":            "L   D   D   D   D   D   D   A   H   D   D   D",
    "processing.decline POST":           "L   D   D   D   D   D   D   A   H   D   D   D",
    "processing.approvals GET":          "L   D   D   D   D   D   D   A   A   D   D   D",
    "processing.review GET":             "L   D   D   D   D   D   D   A   H   D   D   D",
    "processing.approve POST":           "L   D   D   D   D   D   D   A   H   D   D   D",
    "processing.refuse POST":            "L   D   D   D   D   D   D   A   H   D   D   D",
    "processing.retry POST":             "L   D   D   D   D   D   D   A   H   D   D   D",
    "processing.withdraw POST":          "L   D   D   D   D   D   D   A   H   D   D   D",
    "processing.reconcile GET":          "L   D   D   D   D   D   A   A   A   D   D   D",
    # settlement certificates: only officials issue, refuse and revoke
    "officials.queue GET":               "L   D   D   D   D   D   D   D   D   A   D   A",
    "officials.request_detail GET":      "L   D   D   D   D   D   D   D   D   A   D   A",
    "officials.issue POST":              "L   D   D   D   D   D   D   D   D   A   D   D",
    "officials.refuse POST":             "L   D   D   D   D   D   D   D   D   A   D   D",
    "officials.certificates GET":        "L   D   D   D   D   D   D   D   D   A   D   A",
    "officials.certificate GET":         "L   D   D   D   D   D   D   D   D   A   D   A",
    "officials.certificate_pdf GET":     "L   D   D   D   D   D   D   D   D   A   D   D",
    "officials.revoke POST":             "L   D   D   D   D   D   D   D   D   A   D   D",
    "officials.counter GET":             "L   D   D   D   D   A   D   A   A   A   D   D",
    "officials.counter POST":            "L   D   D   D   D   A   D   A   A   A   D   D",
    # the platform exchange: the liaison
    "platform_files.index GET":          "L   D   D   D   D   D   A   D   D   D   D   D",
    "platform_files.import_package POST": "L  D   D   D   D   D   A   D   D   D   D   D",
    "platform_files.export_package POST": "L  D   D   D   D   D   A   D   D   D   D   D",
    "platform_files.package GET":        "L   D   D   D   D   D   A   D   D   D   D   D",
    "outbox.index GET":                  "L   D   D   D   D   D   A   D   D   D   D   D",
    "outbox.retry POST":                 "L   D   D   D   D   D   A   D   D   D   D   D",
    # management figures (aggregates, no personal data): officials and the admin
    "dashboard.show GET":                "L   D   D   D   D   D   D   D   D   A   A   D",
    "dashboard.export GET":              "L   D   D   D   D   D   D   D   D   A   A   D",
    # administration: the admin only
    "admin.index GET":                   "L   D   D   D   D   D   D   D   D   D   A   D",
    "admin.staff GET":                   "L   D   D   D   D   D   D   D   D   D   A   D",
    "admin.staff POST":                  "L   D   D   D   D   D   D   D   D   D   A   D",
    "admin.staff_action POST":           "L   D   D   D   D   D   D   D   D   D   A   D",
    "admin.calendar GET":                "L   D   D   D   D   D   D   D   D   D   A   D",
    "admin.calendar POST":               "L   D   D   D   D   D   D   D   D   D   A   D",
    "admin.calendar_delete POST":        "L   D   D   D   D   D   D   D   D   D   A   D",
    "admin.settings GET":                "L   D   D   D   D   D   D   D   D   D   A   D",
    "admin.settings POST":               "L   D   D   D   D   D   D   D   D   D   A   D",
    "admin.departments GET":             "L   D   D   D   D   D   D   D   D   D   A   D",
    "admin.departments POST":            "L   D   D   D   D   D   D   D   D   D   A   D",
    "admin.centers GET":                 "L   D   D   D   D   D   D   D   D   D   A   D",
    "admin.center_edit GET":             "L   D   D   D   D   D   D   D   D   D   A   D",
    "admin.center_edit POST":            "L   D   D   D   D   D   D   D   D   D   A   D",
    # the audit log: the auditor only
    "audit.search GET":                  "L   D   D   D   D   D   D   D   D   D   D   A",
    "audit.export GET":                  "L   D   D   D   D   D   D   D   D   D   D   A",
    # --- notices, ratings, background jobs, language (issue 11) -----------------------------
    "i18n.switch_language POST":         "400 400 400 400 400 400 400 400 400 400 400 400",
    "hall_inbox.index GET":              "L   A   A   D   D   D   D   D   D   D   D   D",
    "hall_inbox.count GET":              "L   A   A   D   D   D   D   D   D   D   D   D",
    "hall_inbox.read POST":              "L   A   H   D   D   D   D   D   D   D   D   D",
    "hall_inbox.open_notice POST":       "L   A   H   D   D   D   D   D   D   D   D   D",
    "hall_inbox.read_all POST":          "L   A   A   D   D   D   D   D   D   D   D   D",
    "employer_inbox.index GET":          "L   D   D   A   A   D   D   D   D   D   D   D",
    "employer_inbox.count GET":          "L   D   D   A   A   D   D   D   D   D   D   D",
    "employer_inbox.read POST":          "L   D   D   A   H   D   D   D   D   D   D   D",
    "employer_inbox.open_notice POST":   "L   D   D   A   H   D   D   D   D   D   D   D",
    "employer_inbox.read_all POST":      "L   D   D   A   A   D   D   D   D   D   D   D",
    # the notice is the handler's: everyone else's inbox is their own
    "staff_inbox.index GET":             "L   D   D   D   D   A   A   A   A   A   A   A",
    "staff_inbox.count GET":             "L   D   D   D   D   A   A   A   A   A   A   A",
    "staff_inbox.read POST":             "L   D   D   D   D   H   H   A   H   H   H   H",
    "staff_inbox.open_notice POST":      "L   D   D   D   D   H   H   A   H   H   H   H",
    "staff_inbox.read_all POST":         "L   D   D   D   D   A   A   A   A   A   A   A",
    "hall_ratings.index GET":            "L   A   A   D   D   D   D   D   D   D   D   D",
    "hall_ratings.rate GET":             "L   A   H   D   D   D   D   D   D   D   D   D",
    "hall_ratings.rate POST":            "L   A   H   D   D   D   D   D   D   D   D   D",
    "track_rating.track_rate_page GET":  "A   A   A   A   A   A   A   A   A   A   A   A",
    # a signed token from the tracking page only: without one, refused whoever sends it
    "track_rating.track_rate POST":      "400 400 400 400 400 400 400 400 400 400 400 400",
    # ratings of 阿拉善左旗: its handlers, the liaison, officials, the auditor read; only
    # handlers and the liaison record follow-ups
    "staff_ratings.index GET":           "L   D   D   D   D   D   A   A   A   A   D   A",
    "staff_ratings.detail GET":          "L   D   D   D   D   D   A   A   H   A   D   A",
    "staff_ratings.followup POST":       "L   D   D   D   D   D   A   A   H   D   D   D",
    # jobs are their starter's (the world's job is the admin's dashboard export)
    "jobs.index GET":                    "L   D   D   D   D   A   A   A   A   A   A   A",
    "jobs.show GET":                     "L   D   D   D   D   H   H   H   H   H   A   H",
    "jobs.download_result GET":          "L   D   D   D   D   H   H   H   H   H   A   H",
    "jobs.start_dashboard_export POST":  "L   D   D   D   D   D   D   D   D   A   A   D",
    "jobs.start_ledger_export POST":     "L   D   D   D   D   A   A   A   A   D   D   A",
    "jobs.start_settlement POST":        "L   D   D   D   D   D   D   D   D   D   A   D",
    "jobs.start_demo_large POST":        "L   D   D   D   D   H   H   H   H   H   H   H",
}
# fmt: on

# Blueprints whose POSTs are logging in or public look-ups, not business actions.
NON_BUSINESS = (
    "auth.",
    "public.",
    "guides.",
    "platform_inbox.",
    "dev.",
    "static",
    "healthz",
    "i18n.",  # the interface language (a cookie)
    "track_rating.",  # the public tracking page's rating (signed token)
)
# POSTs the auditor may make: they change nothing of the business.
AUDITOR_POSTS = {
    "jobs.start_ledger_export": "the ledger export (a read the auditor may do), run as a job",
    "staff_inbox.read": "marks one of the auditor's own notices read",
    "staff_inbox.read_all": "marks the auditor's own notices read",
    "staff_inbox.open_notice": "marks one of the auditor's own notices read",
}
PUBLIC_EMPLOYER = ("employer.track", "employer.activate", "employer.activate_code")
STAFF_BLUEPRINTS = (
    "intranet.",
    "staff_inbox.",
    "staff_ratings.",
    "jobs.",
    "board.",
    "counter.",
    "ledger.",
    "ecode_counter.",
    "processing.",
    "officials.",
    "platform_files.",
    "outbox.",
    "dashboard.",
    "admin.",
    "audit.",
)
# Business data an admin has no role for (boards, ledger, cases, people, money, certificates).
BUSINESS = (
    "hall.",
    "hall_inbox.",
    "hall_ratings.",
    "employer_inbox.",
    "staff_ratings.",
    "jobs.start_ledger_export",
    "ecode.",
    "board.board",
    "board.column_more",
    "board.poll",
    "board.case",
    "board.move",
    "board.comment",
    "board.take",
    "board.assign",
    "board.mail",
    "counter.",
    "ledger.",
    "ecode_counter.",
    "processing.",
    "officials.",
    "platform_files.",
    "outbox.",
    "audit.",
)
# Query strings some pages need to show the object rather than a form error.
QUERY = {"hall.statement_pdf": {"year": TODAY.year - 1}}


def expectations() -> dict[str, dict[str, str]]:
    out = {}
    for key, row in TABLE.items():
        cells = row.split()
        assert len(cells) == len(COLUMNS), f"{key}: {len(cells)} cells for {len(COLUMNS)} roles"
        out[key] = {role: CODES.get(cell, cell) for role, cell in zip(COLUMNS, cells, strict=True)}
    return out


def _endpoint(key: str) -> str:
    return key.split()[0].split("@")[0]


def url_args(endpoint: str, arguments, w, variant: str | None = None) -> dict:
    """Values for a rule's URL arguments, pointing at the world's "own" objects."""
    blueprint = endpoint.split(".")[0]
    case = w.inbound_case
    if variant == "outbound":
        case = w.outbound_case
    elif variant == "other_dept":
        case = w.extra["ayq_case"]
    elif endpoint == "hall.case":
        case = w.own_case
    values = {
        "loan_id": w.loan.id,
        "payout_id": w.payoff_payout.id
        if endpoint == "hall.payoff_receipt"
        else w.retirement_payout.id,
        "certificate_id": {
            "hall": w.usage_certificate.id,
            "employer": w.employer_certificate.id,
        }.get(blueprint, w.settlement_certificate.id),
        "case_id": case.id,
        "case_no": w.outbound_case.case_no,
        "attachment_id": w.material.id if blueprint == "counter" else w.result.id,
        "kind": "application",
        "direction": "inbound",
        "state": "processing",
        "ecode_id": w.ecode.id,
        "lookup_id": w.lookup.id,
        "request_id": w.cert_request.id,
        "record_id": w.case_payout.id,
        "outbox_id": w.outbox.id,
        "message_pk": w.package.id,
        "user_id": w.target_staff.id,
        "day": w.holiday.day.isoformat(),
        "token": "not-a-real-setup-token",
        "filename": "css/portal.css",
        "account_id": w.employer_account.id,
        "operator_id": w.colleague.id,
        "purpose": {"hall": "withdraw", "employer": "change", "auth": "activate"}.get(blueprint),
        "action": {"employer": "disable", "admin": "setup_link"}.get(blueprint),
        "code": {"admin": w.peer.code, "guides": "purchase_withdrawal"}.get(
            blueprint, w.usage_certificate.verify_code
        ),
        "notice_id": {
            "hall_inbox": w.extra["notice_depositor"].id,
            "employer_inbox": w.extra["notice_operator"].id,
        }.get(blueprint, w.extra["notice_staff"].id),
        "subject_id": w.usage_certificate.id,
        "rating_id": w.extra["rating"].id,
        "job_id": w.extra["job"].id,
    }
    if blueprint == "hall_ratings":
        values["kind"] = "certificate"
    return {name: values[name] for name in arguments}


def route_keys(app) -> dict[str, tuple[str, str]]:
    """'endpoint METHOD' for every rule and method of the URL map → (endpoint, method)."""
    keys = {}
    for rule in app.url_map.iter_rules():
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            keys[f"{rule.endpoint} {method}"] = (rule.endpoint, method)
    return keys


def _requests(app, world) -> list[tuple[str, str, str]]:
    """(table key, method, url) for every row of the table whose route exists; logout last."""
    rules = {rule.endpoint: rule for rule in app.url_map.iter_rules()}
    todo = []
    with app.test_request_context():
        for key in TABLE:
            head, method = key.split()
            endpoint, _, variant = head.partition("@")
            rule = rules.get(endpoint)
            if rule is None:
                continue
            arguments = rule.arguments - set(rule.defaults or {})
            args = url_args(endpoint, arguments, world, variant or None)
            url = url_for(endpoint, **args, **QUERY.get(endpoint, {}))
            todo.append((key, method, url))
    todo.sort(key=lambda t: t[0] == "auth.logout POST")
    return todo


# --- the table is complete --------------------------------------------------------------


def test_every_route_and_method_has_a_row(app):
    routes = route_keys(app)
    rows = {f"{_endpoint(k)} {k.split()[1]}" for k in TABLE}
    missing = sorted(set(routes) - rows)
    assert not missing, (
        "routes without a row in tests/test_security_access.py TABLE (add the expected "
        "outcome for every role): " + ", ".join(missing)
    )
    registered = {endpoint.split(".")[0] for endpoint, _ in routes.values()}
    stale = sorted(k for k in rows if k not in routes and _endpoint(k).split(".")[0] in registered)
    assert not stale, "rows for routes that do not exist (remove them): " + ", ".join(stale)
    expectations()  # every row has one cell per role


# --- the policy, checked on the table ----------------------------------------------------


def test_policy_public_people_never_reach_staff_pages_or_others_data():
    for key, row in expectations().items():
        endpoint = _endpoint(key)
        if endpoint.startswith(STAFF_BLUEPRINTS):
            for role in ("anonymous", "depositor", "other_depositor", "operator", "other_operator"):
                assert row[role] in (LOGIN, DENY), f"{key}: {role} reaches a staff page"
        if endpoint.startswith(("hall.", "ecode.", "hall_inbox.", "hall_ratings.")):
            for role in ("operator", "other_operator", "clerk", "admin", "auditor"):
                assert row[role] in (DENY,), f"{key}: {role} reaches a depositor's hall"
        if endpoint.startswith("employer.") and endpoint not in PUBLIC_EMPLOYER:
            assert row["depositor"] == DENY and row["other_depositor"] == DENY, key


def test_policy_someone_elses_object_is_404_never_200():
    """Rows bound to one person's object: the other depositor or operator gets 404."""
    rows = expectations()
    for key in (
        "hall.loan_detail GET",
        "hall.payoff POST",
        "hall.payoff_receipt GET",
        "hall.certificate GET",
        "hall.certificate_pdf GET",
        "hall.retirement_receipt GET",
        "hall.retirement_receipt_pdf GET",
        "hall.case GET",
        "ecode.revoke POST",
    ):
        assert rows[key]["depositor"] == ALLOW and rows[key]["other_depositor"] == HIDE, key
    for key in (
        "employer.certificate GET",
        "employer.certificate_pdf GET",
        "employer.change_base POST",
        "employer.operator_action POST",
    ):
        assert rows[key]["operator"] == ALLOW and rows[key]["other_operator"] == HIDE, key


def test_policy_handlers_only_their_departments_cases():
    rows = expectations()
    for key, row in rows.items():
        endpoint = _endpoint(key)
        if not endpoint.startswith(("board.case", "board.move", "board.take", "processing.")):
            continue
        if "@other_dept" in key:
            assert row["handler"] == HIDE and row["other_handler"] == ALLOW, key
        elif endpoint not in ("processing.approvals", "processing.reconcile"):
            assert row["other_handler"] in (HIDE, DENY), key


def test_policy_only_officials_issue_refuse_or_revoke_certificates():
    rows = expectations()
    for key in ("officials.issue POST", "officials.refuse POST", "officials.revoke POST"):
        allowed = [role for role, code in rows[key].items() if code == ALLOW]
        assert allowed == ["official"], key


def test_policy_the_auditor_only_reads():
    for key, row in expectations().items():
        endpoint, method = _endpoint(key), key.split()[1]
        if method != "POST" or endpoint.startswith(NON_BUSINESS) or endpoint in PUBLIC_EMPLOYER:
            continue
        if endpoint in AUDITOR_POSTS:
            continue
        assert row["auditor"] in (DENY, HIDE, LOGIN), f"{key}: the auditor may change something"


def test_policy_the_admin_sees_no_business_data():
    for key, row in expectations().items():
        if _endpoint(key).startswith(BUSINESS):
            assert row["admin"] in (DENY, HIDE), f"{key}: the admin reaches business data"


# --- the table holds against the running application -------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_every_route_for_role(app, role):
    client = app.test_client()
    with app.app_context():
        world = build_world()
    login(client, role, world)
    wanted = expectations()
    wrong = []
    for key, method, url in _requests(app, world):
        response = client.open(url, method=method)
        got = outcome(response)
        expected = wanted[key][role]
        if expected.isdigit():
            got = str(response.status_code)
        response.close()
        if got != expected:
            wrong.append(f"{key} {url}: expected {expected}, got {got}")
    assert not wrong, f"{role}:\n  " + "\n  ".join(wrong)


def test_an_htmx_request_without_login_gets_401_not_a_redirect(client):
    r = client.get("/staff/board/inbound", headers={"HX-Request": "true"})
    assert r.status_code == 401
    r = client.get("/me/", headers={"HX-Request": "true"})
    assert r.status_code == 401


# --- point 7: forged moves ------------------------------------------------------------------


def _move(client, case, target, version=None, htmx=True, **extra):
    """The board's drop (htmx); without htmx the refusal is flashed on a 303 to the board."""
    data = {"target": target, "version": case.version if version is None else version}
    data.update(extra)
    headers = {"HX-Request": "true"} if htmx else {}
    return client.post(f"/staff/board/case/{case.id}/move", data=data, headers=headers)


def _unchanged(case) -> None:
    fresh = ProxyCase.get_by_id(case.id)
    assert (fresh.state, fresh.version) == (case.state, case.version)
    moves = CaseEvent.select().where((CaseEvent.case == case.id) & (CaseEvent.action == "move"))
    assert moves.count() == 0


@pytest.mark.parametrize(
    "target",
    [
        "fed_back",  # skips 已办结
        "received",  # backwards
        "distributed",  # backwards
        "archived",  # a column of the other board
        "paid",  # no such column
        "",  # nothing
        "processing",  # where it already is
        "<script>alert(1)</script>",
    ],
)
def test_a_forged_move_to_a_column_not_allowed_from_the_state_is_refused(app, client, target):
    with app.app_context():
        world = build_world()
    case = world.inbound_case
    login_staff_user(client, "handler")
    r = _move(client, case, target)
    assert r.status_code in (409, 422), r.status_code
    body = r.get_data(as_text=True)
    assert "<script>alert(1)</script>" not in body
    _unchanged(case)
    r = _move(client, case, target, htmx=False)
    assert r.status_code in (303, 409, 422)
    _unchanged(case)


def test_a_forged_move_with_a_stale_or_made_up_version_is_refused(app, client):
    with app.app_context():
        world = build_world()
    case = world.inbound_case
    login_staff_user(client, "handler")
    for version in (case.version - 1, case.version + 7, 0, -1, 10**12):
        r = _move(client, case, "supplement", version=version, with_data="1", missing="身份证")
        assert r.status_code in (409, 422), (version, r.status_code)
        _unchanged(case)
    r = _move(client, case, "done", version="abc", with_data="1", outcome="办结", note="x")
    assert r.status_code == 422
    _unchanged(case)


def test_a_move_by_a_role_the_move_does_not_belong_to_is_refused(app, client):
    """The liaison may not accept an outbound case into 材料核实 (the window's move), and a
    handler may not skip the liaison's 已传递 — even with the right version."""
    with app.app_context():
        world = build_world()
    case = world.outbound_case
    login_staff_user(client, "liaison")
    r = _move(client, case, "verifying")
    assert r.status_code == 409
    _unchanged(case)


def test_a_forged_move_on_another_departments_case_is_404(app, client):
    with app.app_context():
        world = build_world()
    case = world.extra["ayq_case"]
    login_staff_user(client, "handler")
    r = _move(client, case, "done", with_data="1", outcome="办结", note="伪造")
    assert r.status_code == 404
    _unchanged(case)


def test_the_auditor_cannot_move_even_a_valid_move(app, client):
    with app.app_context():
        world = build_world()
    case = world.outbound_case
    login_staff_user(client, "auditor")
    assert _move(client, case, "verifying").status_code == 403
    _unchanged(case)


# --- point 5: the session cookie is Secure over HTTPS ---------------------------------------


def _session_cookie(response) -> str:
    cookies = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("hpf_session=")]
    assert cookies, "no session cookie was set"
    return cookies[-1]


def test_the_session_cookie_is_secure_when_served_over_https(app, depositor):
    client = app.test_client()
    r = client.post(
        "/login",
        data={"resident_id": depositor.resident_id, "password": "Demo1234"},
        base_url="https://portal.test",
    )
    cookie = _session_cookie(r)
    assert "; Secure" in cookie and "; HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_the_session_cookie_over_plain_http_is_secure_only_when_configured(app, depositor):
    data = {"resident_id": depositor.resident_id, "password": "Demo1234"}
    cookie = _session_cookie(app.test_client().post("/login", data=data))
    assert "; Secure" not in cookie and "; HttpOnly" in cookie
    app.config["SESSION_COOKIE_SECURE"] = True
    try:
        cookie = _session_cookie(app.test_client().post("/login", data=data))
    finally:
        app.config["SESSION_COOKIE_SECURE"] = False
    assert "; Secure" in cookie
