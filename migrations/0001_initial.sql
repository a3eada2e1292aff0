-- 0001: the initial schema (portable: {{pk}} becomes the dialect's auto-increment key).

CREATE TABLE "center" (
    "id" {{pk}},
    "code" VARCHAR(12) NOT NULL,
    "name" VARCHAR(100) NOT NULL,
    "is_self" BOOLEAN NOT NULL,
    "region" VARCHAR(50) NOT NULL,
    "address" VARCHAR(200) NOT NULL,
    "phone" VARCHAR(30) NOT NULL,
    "hall_url" VARCHAR(200) NOT NULL,
    "online_items" TEXT NOT NULL,
    "public_key" TEXT,
    "active" BOOLEAN NOT NULL
);
CREATE UNIQUE INDEX "center_code" ON "center" ("code");
CREATE TABLE "department" (
    "id" {{pk}},
    "code" VARCHAR(12) NOT NULL,
    "name" VARCHAR(60) NOT NULL,
    "address" VARCHAR(200) NOT NULL,
    "phone" VARCHAR(30) NOT NULL,
    "wip_limit" INTEGER
);
CREATE UNIQUE INDEX "department_code" ON "department" ("code");
CREATE TABLE "employer" (
    "id" {{pk}},
    "credit_code" VARCHAR(18) NOT NULL,
    "name" VARCHAR(120) NOT NULL,
    "address" VARCHAR(200) NOT NULL,
    "contact_name" VARCHAR(40) NOT NULL,
    "contact_phone" VARCHAR(20) NOT NULL,
    "employer_ratio" INTEGER NOT NULL,
    "employee_ratio" INTEGER NOT NULL,
    "status" VARCHAR(8) NOT NULL,
    "department_id" INTEGER,
    "account_no" VARCHAR(20) NOT NULL,
    "opened_on" DATE NOT NULL,
    "paid_up_to" VARCHAR(7),
    "created_at" TIMESTAMP NOT NULL,
    FOREIGN KEY ("department_id") REFERENCES "department" ("id")
);
CREATE UNIQUE INDEX "employer_credit_code" ON "employer" ("credit_code");
CREATE INDEX "employer_department_id" ON "employer" ("department_id");
CREATE UNIQUE INDEX "employer_account_no" ON "employer" ("account_no");
CREATE TABLE "employer_operator" (
    "id" {{pk}},
    "employer_id" INTEGER NOT NULL,
    "resident_id" VARCHAR(18) NOT NULL,
    "name" VARCHAR(40) NOT NULL,
    "phone" VARCHAR(20) NOT NULL,
    "password_hash" VARCHAR(255),
    "is_primary" BOOLEAN NOT NULL,
    "active" BOOLEAN NOT NULL,
    "activated_at" TIMESTAMP,
    "created_at" TIMESTAMP NOT NULL,
    FOREIGN KEY ("employer_id") REFERENCES "employer" ("id") ON DELETE CASCADE
);
CREATE INDEX "employer_operator_employer_id" ON "employer_operator" ("employer_id");
CREATE UNIQUE INDEX "employer_operator_employer_id_resident_id" ON "employer_operator" ("employer_id", "resident_id");
CREATE TABLE "depositor" (
    "id" {{pk}},
    "resident_id" VARCHAR(18) NOT NULL,
    "name" VARCHAR(40) NOT NULL,
    "sex" VARCHAR(1) NOT NULL,
    "birth_date" DATE NOT NULL,
    "retirement_category" VARCHAR(10) NOT NULL,
    "retired_on" DATE,
    "phone" VARCHAR(20) NOT NULL,
    "bank_card" VARCHAR(19),
    "bank_name" VARCHAR(40) NOT NULL,
    "bank_card_changed_at" TIMESTAMP,
    "address" VARCHAR(200) NOT NULL,
    "department_id" INTEGER,
    "password_hash" VARCHAR(255),
    "active" BOOLEAN NOT NULL,
    "created_at" TIMESTAMP NOT NULL,
    FOREIGN KEY ("department_id") REFERENCES "department" ("id")
);
CREATE UNIQUE INDEX "depositor_resident_id" ON "depositor" ("resident_id");
CREATE INDEX "depositor_department_id" ON "depositor" ("department_id");
CREATE TABLE "account" (
    "id" {{pk}},
    "account_no" VARCHAR(20) NOT NULL,
    "depositor_id" INTEGER NOT NULL,
    "employer_id" INTEGER,
    "deposit_base" BIGINT NOT NULL,
    "employer_ratio" INTEGER NOT NULL,
    "employee_ratio" INTEGER NOT NULL,
    "status" VARCHAR(4) NOT NULL,
    "opened_on" DATE NOT NULL,
    "closed_on" DATE,
    "balance" BIGINT NOT NULL,
    "paid_up_to" VARCHAR(7),
    "last_interest_on" DATE,
    "version" INTEGER NOT NULL,
    FOREIGN KEY ("depositor_id") REFERENCES "depositor" ("id"),
    FOREIGN KEY ("employer_id") REFERENCES "employer" ("id")
);
CREATE UNIQUE INDEX "account_account_no" ON "account" ("account_no");
CREATE UNIQUE INDEX "account_depositor_id" ON "account" ("depositor_id");
CREATE INDEX "account_employer_id" ON "account" ("employer_id");
CREATE TABLE "deposit_record" (
    "id" {{pk}},
    "account_id" INTEGER NOT NULL,
    "employer_id" INTEGER,
    "kind" VARCHAR(4) NOT NULL,
    "period" VARCHAR(7),
    "posted_on" DATE NOT NULL,
    "amount" BIGINT NOT NULL,
    "balance_after" BIGINT NOT NULL,
    "memo" VARCHAR(100) NOT NULL,
    FOREIGN KEY ("account_id") REFERENCES "account" ("id") ON DELETE CASCADE,
    FOREIGN KEY ("employer_id") REFERENCES "employer" ("id")
);
CREATE INDEX "deposit_record_account_id" ON "deposit_record" ("account_id");
CREATE INDEX "deposit_record_employer_id" ON "deposit_record" ("employer_id");
CREATE INDEX "deposit_record_account_id_posted_on" ON "deposit_record" ("account_id", "posted_on");
CREATE TABLE "staff_user" (
    "id" {{pk}},
    "username" VARCHAR(40) NOT NULL,
    "name" VARCHAR(40) NOT NULL,
    "role" VARCHAR(10) NOT NULL,
    "department_id" INTEGER,
    "phone" VARCHAR(20) NOT NULL,
    "password_hash" VARCHAR(255),
    "totp_secret" VARCHAR(64),
    "totp_confirmed" BOOLEAN NOT NULL,
    "totp_last_step" BIGINT NOT NULL,
    "active" BOOLEAN NOT NULL,
    "created_at" TIMESTAMP NOT NULL,
    FOREIGN KEY ("department_id") REFERENCES "department" ("id")
);
CREATE UNIQUE INDEX "staff_user_username" ON "staff_user" ("username");
CREATE INDEX "staff_user_department_id" ON "staff_user" ("department_id");
CREATE TABLE "payout" (
    "id" {{pk}},
    "account_id" INTEGER NOT NULL,
    "kind" VARCHAR(20) NOT NULL,
    "amount" BIGINT NOT NULL,
    "idempotency_key" VARCHAR(64) NOT NULL,
    "status" VARCHAR(10) NOT NULL,
    "bank_card" VARCHAR(19),
    "bank_ref" VARCHAR(64),
    "requested_by" VARCHAR(40) NOT NULL,
    "approved_by_id" INTEGER,
    "proxy_case_id" INTEGER,
    "detail" TEXT NOT NULL,
    "created_at" TIMESTAMP NOT NULL,
    "confirmed_at" TIMESTAMP,
    FOREIGN KEY ("account_id") REFERENCES "account" ("id"),
    FOREIGN KEY ("approved_by_id") REFERENCES "staff_user" ("id")
);
CREATE INDEX "payout_account_id" ON "payout" ("account_id");
CREATE UNIQUE INDEX "payout_idempotency_key" ON "payout" ("idempotency_key");
CREATE INDEX "payout_approved_by_id" ON "payout" ("approved_by_id");
CREATE TABLE "bank_transfer" (
    "id" {{pk}},
    "idempotency_key" VARCHAR(64) NOT NULL,
    "direction" VARCHAR(3) NOT NULL,
    "amount" BIGINT NOT NULL,
    "card" VARCHAR(19) NOT NULL,
    "reference" VARCHAR(64) NOT NULL,
    "created_at" TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX "bank_transfer_idempotency_key" ON "bank_transfer" ("idempotency_key");
CREATE UNIQUE INDEX "bank_transfer_reference" ON "bank_transfer" ("reference");
CREATE TABLE "loan" (
    "id" {{pk}},
    "contract_no" VARCHAR(24) NOT NULL,
    "loan_account_no" VARCHAR(24) NOT NULL,
    "depositor_id" INTEGER NOT NULL,
    "co_borrower_id" INTEGER,
    "amount" BIGINT NOT NULL,
    "term_months" INTEGER NOT NULL,
    "annual_rate" VARCHAR(16) NOT NULL,
    "method" VARCHAR(16) NOT NULL,
    "first_home" BOOLEAN NOT NULL,
    "disbursed_on" DATE NOT NULL,
    "first_due_on" DATE NOT NULL,
    "outstanding" BIGINT NOT NULL,
    "status" VARCHAR(8) NOT NULL,
    "settled_on" DATE,
    "settled_kind" VARCHAR(8),
    "property_address" VARCHAR(200) NOT NULL,
    "property_cert_no" VARCHAR(40) NOT NULL,
    "lending_bank" VARCHAR(60) NOT NULL,
    "version" INTEGER NOT NULL,
    FOREIGN KEY ("depositor_id") REFERENCES "depositor" ("id"),
    FOREIGN KEY ("co_borrower_id") REFERENCES "depositor" ("id")
);
CREATE UNIQUE INDEX "loan_contract_no" ON "loan" ("contract_no");
CREATE UNIQUE INDEX "loan_loan_account_no" ON "loan" ("loan_account_no");
CREATE INDEX "loan_depositor_id" ON "loan" ("depositor_id");
CREATE INDEX "loan_co_borrower_id" ON "loan" ("co_borrower_id");
CREATE TABLE "loan_repayment" (
    "id" {{pk}},
    "loan_id" INTEGER NOT NULL,
    "period" INTEGER,
    "due_on" DATE,
    "paid_on" DATE NOT NULL,
    "principal" BIGINT NOT NULL,
    "interest" BIGINT NOT NULL,
    "amount" BIGINT NOT NULL,
    "kind" VARCHAR(12) NOT NULL,
    "idempotency_key" VARCHAR(64),
    FOREIGN KEY ("loan_id") REFERENCES "loan" ("id") ON DELETE CASCADE
);
CREATE INDEX "loan_repayment_loan_id" ON "loan_repayment" ("loan_id");
CREATE UNIQUE INDEX "loan_repayment_idempotency_key" ON "loan_repayment" ("idempotency_key");
CREATE INDEX "loan_repayment_loan_id_paid_on" ON "loan_repayment" ("loan_id", "paid_on");
CREATE TABLE "proxy_case" (
    "id" {{pk}},
    "case_no" VARCHAR(24) NOT NULL,
    "receipt_no" VARCHAR(24) NOT NULL,
    "item" VARCHAR(32) NOT NULL,
    "direction" VARCHAR(8) NOT NULL,
    "state" VARCHAR(16) NOT NULL,
    "center_id" INTEGER NOT NULL,
    "depositor_id" INTEGER,
    "employer_id" INTEGER,
    "applicant_name" VARCHAR(60) NOT NULL,
    "applicant_id_no" VARCHAR(18) NOT NULL,
    "applicant_phone" VARCHAR(20) NOT NULL,
    "application" TEXT NOT NULL,
    "checklist" TEXT NOT NULL,
    "department_id" INTEGER,
    "assignee_id" INTEGER,
    "accepted_by_id" INTEGER,
    "clock_start" DATE NOT NULL,
    "deadline" DATE NOT NULL,
    "paused_since" DATE,
    "paused_workdays" INTEGER NOT NULL,
    "missing_materials" TEXT NOT NULL,
    "rejection_reason" TEXT NOT NULL,
    "result" TEXT NOT NULL,
    "tracking_no" VARCHAR(40) NOT NULL,
    "platform_ref" VARCHAR(64),
    "created_at" TIMESTAMP NOT NULL,
    "updated_at" TIMESTAMP NOT NULL,
    "version" INTEGER NOT NULL,
    FOREIGN KEY ("center_id") REFERENCES "center" ("id"),
    FOREIGN KEY ("depositor_id") REFERENCES "depositor" ("id"),
    FOREIGN KEY ("employer_id") REFERENCES "employer" ("id"),
    FOREIGN KEY ("department_id") REFERENCES "department" ("id"),
    FOREIGN KEY ("assignee_id") REFERENCES "staff_user" ("id"),
    FOREIGN KEY ("accepted_by_id") REFERENCES "staff_user" ("id")
);
CREATE UNIQUE INDEX "proxy_case_case_no" ON "proxy_case" ("case_no");
CREATE UNIQUE INDEX "proxy_case_receipt_no" ON "proxy_case" ("receipt_no");
CREATE INDEX "proxy_case_center_id" ON "proxy_case" ("center_id");
CREATE INDEX "proxy_case_depositor_id" ON "proxy_case" ("depositor_id");
CREATE INDEX "proxy_case_employer_id" ON "proxy_case" ("employer_id");
CREATE INDEX "proxy_case_department_id" ON "proxy_case" ("department_id");
CREATE INDEX "proxy_case_assignee_id" ON "proxy_case" ("assignee_id");
CREATE INDEX "proxy_case_accepted_by_id" ON "proxy_case" ("accepted_by_id");
CREATE INDEX "proxy_case_direction_state" ON "proxy_case" ("direction", "state");
CREATE TABLE "case_event" (
    "id" {{pk}},
    "case_id" INTEGER NOT NULL,
    "actor_id" INTEGER,
    "actor_label" VARCHAR(60) NOT NULL,
    "action" VARCHAR(20) NOT NULL,
    "from_state" VARCHAR(16),
    "to_state" VARCHAR(16),
    "data" TEXT NOT NULL,
    "created_at" TIMESTAMP NOT NULL,
    FOREIGN KEY ("case_id") REFERENCES "proxy_case" ("id") ON DELETE CASCADE,
    FOREIGN KEY ("actor_id") REFERENCES "staff_user" ("id")
);
CREATE INDEX "case_event_case_id" ON "case_event" ("case_id");
CREATE INDEX "case_event_actor_id" ON "case_event" ("actor_id");
CREATE TABLE "case_comment" (
    "id" {{pk}},
    "case_id" INTEGER NOT NULL,
    "author_id" INTEGER NOT NULL,
    "body" TEXT NOT NULL,
    "created_at" TIMESTAMP NOT NULL,
    FOREIGN KEY ("case_id") REFERENCES "proxy_case" ("id") ON DELETE CASCADE,
    FOREIGN KEY ("author_id") REFERENCES "staff_user" ("id")
);
CREATE INDEX "case_comment_case_id" ON "case_comment" ("case_id");
CREATE INDEX "case_comment_author_id" ON "case_comment" ("author_id");
CREATE TABLE "attachment" (
    "id" {{pk}},
    "case_id" INTEGER NOT NULL,
    "kind" VARCHAR(10) NOT NULL,
    "material" VARCHAR(32) NOT NULL,
    "filename" VARCHAR(200) NOT NULL,
    "content_type" VARCHAR(60) NOT NULL,
    "size" INTEGER NOT NULL,
    "sha256" VARCHAR(64) NOT NULL,
    "storage_key" VARCHAR(200) NOT NULL,
    "uploaded_by_id" INTEGER,
    "created_at" TIMESTAMP NOT NULL,
    FOREIGN KEY ("case_id") REFERENCES "proxy_case" ("id") ON DELETE CASCADE,
    FOREIGN KEY ("uploaded_by_id") REFERENCES "staff_user" ("id")
);
CREATE INDEX "attachment_case_id" ON "attachment" ("case_id");
CREATE INDEX "attachment_uploaded_by_id" ON "attachment" ("uploaded_by_id");
CREATE TABLE "certificate" (
    "id" {{pk}},
    "kind" VARCHAR(20) NOT NULL,
    "number" VARCHAR(32) NOT NULL,
    "verify_code" VARCHAR(32) NOT NULL,
    "depositor_id" INTEGER,
    "employer_id" INTEGER,
    "loan_id" INTEGER,
    "case_id" INTEGER,
    "addressee" VARCHAR(100) NOT NULL,
    "issued_at" TIMESTAMP NOT NULL,
    "valid_until" DATE,
    "issued_by_id" INTEGER,
    "revoked_at" TIMESTAMP,
    "revoked_reason" TEXT NOT NULL,
    "revoked_by_id" INTEGER,
    "summary" TEXT NOT NULL,
    "storage_key" VARCHAR(200) NOT NULL,
    "sha256" VARCHAR(64) NOT NULL,
    FOREIGN KEY ("depositor_id") REFERENCES "depositor" ("id"),
    FOREIGN KEY ("employer_id") REFERENCES "employer" ("id"),
    FOREIGN KEY ("loan_id") REFERENCES "loan" ("id"),
    FOREIGN KEY ("case_id") REFERENCES "proxy_case" ("id"),
    FOREIGN KEY ("issued_by_id") REFERENCES "staff_user" ("id"),
    FOREIGN KEY ("revoked_by_id") REFERENCES "staff_user" ("id")
);
CREATE UNIQUE INDEX "certificate_number" ON "certificate" ("number");
CREATE UNIQUE INDEX "certificate_verify_code" ON "certificate" ("verify_code");
CREATE INDEX "certificate_depositor_id" ON "certificate" ("depositor_id");
CREATE INDEX "certificate_employer_id" ON "certificate" ("employer_id");
CREATE INDEX "certificate_loan_id" ON "certificate" ("loan_id");
CREATE INDEX "certificate_case_id" ON "certificate" ("case_id");
CREATE INDEX "certificate_issued_by_id" ON "certificate" ("issued_by_id");
CREATE INDEX "certificate_revoked_by_id" ON "certificate" ("revoked_by_id");
CREATE TABLE "certificate_request" (
    "id" {{pk}},
    "loan_id" INTEGER NOT NULL,
    "source" VARCHAR(10) NOT NULL,
    "case_id" INTEGER,
    "status" VARCHAR(10) NOT NULL,
    "certificate_id" INTEGER,
    "requested_at" TIMESTAMP NOT NULL,
    FOREIGN KEY ("loan_id") REFERENCES "loan" ("id"),
    FOREIGN KEY ("case_id") REFERENCES "proxy_case" ("id"),
    FOREIGN KEY ("certificate_id") REFERENCES "certificate" ("id")
);
CREATE INDEX "certificate_request_loan_id" ON "certificate_request" ("loan_id");
CREATE INDEX "certificate_request_case_id" ON "certificate_request" ("case_id");
CREATE INDEX "certificate_request_certificate_id" ON "certificate_request" ("certificate_id");
CREATE TABLE "web_session" (
    "sid" VARCHAR(64) NOT NULL PRIMARY KEY,
    "principal" VARCHAR(32),
    "data" TEXT NOT NULL,
    "created_at" TIMESTAMP NOT NULL,
    "last_seen" TIMESTAMP NOT NULL
);
CREATE INDEX "web_session_principal" ON "web_session" ("principal");
CREATE TABLE "otp_challenge" (
    "id" {{pk}},
    "purpose" VARCHAR(20) NOT NULL,
    "subject" VARCHAR(32) NOT NULL,
    "phone" VARCHAR(20) NOT NULL,
    "secret" VARCHAR(64) NOT NULL,
    "created_at" TIMESTAMP NOT NULL,
    "expires_at" TIMESTAMP NOT NULL,
    "attempts" INTEGER NOT NULL,
    "used_at" TIMESTAMP
);
CREATE TABLE "sms_message" (
    "id" {{pk}},
    "phone" VARCHAR(20) NOT NULL,
    "body" TEXT NOT NULL,
    "created_at" TIMESTAMP NOT NULL
);
CREATE INDEX "sms_message_phone" ON "sms_message" ("phone");
CREATE TABLE "audit_log" (
    "id" {{pk}},
    "at" TIMESTAMP NOT NULL,
    "actor" VARCHAR(40) NOT NULL,
    "action" VARCHAR(40) NOT NULL,
    "target_type" VARCHAR(30) NOT NULL,
    "target_id" VARCHAR(40) NOT NULL,
    "detail" TEXT NOT NULL,
    "ip" VARCHAR(45) NOT NULL
);
CREATE INDEX "audit_log_at" ON "audit_log" ("at");
CREATE TABLE "change_record" (
    "id" {{pk}},
    "subject_type" VARCHAR(12) NOT NULL,
    "subject_id" INTEGER NOT NULL,
    "field" VARCHAR(30) NOT NULL,
    "old_value" VARCHAR(200),
    "new_value" VARCHAR(200),
    "channel" VARCHAR(10) NOT NULL,
    "effective_from" VARCHAR(7),
    "actor" VARCHAR(40) NOT NULL,
    "changed_at" TIMESTAMP NOT NULL
);
CREATE INDEX "change_record_subject_type_subject_id" ON "change_record" ("subject_type", "subject_id");
CREATE TABLE "holiday_override" (
    "id" {{pk}},
    "day" DATE NOT NULL,
    "is_workday" BOOLEAN NOT NULL,
    "note" VARCHAR(60) NOT NULL,
    "created_by_id" INTEGER,
    FOREIGN KEY ("created_by_id") REFERENCES "staff_user" ("id")
);
CREATE UNIQUE INDEX "holiday_override_day" ON "holiday_override" ("day");
CREATE INDEX "holiday_override_created_by_id" ON "holiday_override" ("created_by_id");
CREATE TABLE "setting" (
    "id" {{pk}},
    "key" VARCHAR(40) NOT NULL,
    "value" TEXT NOT NULL,
    "effective_from" DATE NOT NULL,
    "created_by_id" INTEGER,
    "created_at" TIMESTAMP NOT NULL,
    FOREIGN KEY ("created_by_id") REFERENCES "staff_user" ("id")
);
CREATE INDEX "setting_created_by_id" ON "setting" ("created_by_id");
CREATE UNIQUE INDEX "setting_key_effective_from" ON "setting" ("key", "effective_from");
