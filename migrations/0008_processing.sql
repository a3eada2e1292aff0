-- 0008: processing inbound proxy cases (issue 7).
-- A payout a handler prepares on an inbound case (home-purchase withdrawal, and the proxy
-- retirement withdrawal and early loan repayment) waits for a second handler's approval (复核)
-- before the exactly-once payout; the purchase columns feed the shared-property cap.
CREATE TABLE "case_payout" (
    "id" {{pk}},
    "case_id" INTEGER NOT NULL,
    "kind" VARCHAR(20) NOT NULL,
    "depositor_id" INTEGER NOT NULL,
    "account_id" INTEGER NOT NULL,
    "amount" BIGINT NOT NULL,
    "status" VARCHAR(16) NOT NULL,
    "property_no" VARCHAR(60) NOT NULL,
    "property_address" VARCHAR(200) NOT NULL,
    "purchase_date" DATE,
    "price" BIGINT,
    "spouse_name" VARCHAR(40) NOT NULL,
    "spouse_id_no" VARCHAR(18) NOT NULL,
    "co_owners" TEXT NOT NULL,
    "detail" TEXT NOT NULL,
    "bank_card" VARCHAR(19),
    "bank_name" VARCHAR(40) NOT NULL,
    "prepared_by_id" INTEGER NOT NULL,
    "prepared_at" TIMESTAMP NOT NULL,
    "approved_by_id" INTEGER,
    "approved_at" TIMESTAMP,
    "refused_by_id" INTEGER,
    "refused_reason" TEXT NOT NULL,
    "payout_id" INTEGER,
    "version" INTEGER NOT NULL,
    FOREIGN KEY ("case_id") REFERENCES "proxy_case" ("id"),
    FOREIGN KEY ("depositor_id") REFERENCES "depositor" ("id"),
    FOREIGN KEY ("account_id") REFERENCES "account" ("id"),
    FOREIGN KEY ("prepared_by_id") REFERENCES "staff_user" ("id"),
    FOREIGN KEY ("approved_by_id") REFERENCES "staff_user" ("id"),
    FOREIGN KEY ("refused_by_id") REFERENCES "staff_user" ("id"),
    FOREIGN KEY ("payout_id") REFERENCES "payout" ("id")
);
CREATE INDEX "case_payout_case_id" ON "case_payout" ("case_id");
CREATE INDEX "case_payout_depositor_id" ON "case_payout" ("depositor_id");
CREATE INDEX "case_payout_account_id" ON "case_payout" ("account_id");
CREATE INDEX "case_payout_status" ON "case_payout" ("status");
CREATE INDEX "case_payout_property_no" ON "case_payout" ("property_no");
CREATE INDEX "case_payout_prepared_by_id" ON "case_payout" ("prepared_by_id");
CREATE INDEX "case_payout_approved_by_id" ON "case_payout" ("approved_by_id");
CREATE INDEX "case_payout_refused_by_id" ON "case_payout" ("refused_by_id");
CREATE INDEX "case_payout_payout_id" ON "case_payout" ("payout_id");
-- Officials decide on settlement-certificate requests: who asked, who decided, why refused.
ALTER TABLE "certificate_request" ADD COLUMN "requested_by" VARCHAR(40) NOT NULL DEFAULT '';
ALTER TABLE "certificate_request" ADD COLUMN "decided_by_id" INTEGER REFERENCES "staff_user" ("id");
CREATE INDEX "certificate_request_decided_by_id" ON "certificate_request" ("decided_by_id");
ALTER TABLE "certificate_request" ADD COLUMN "decided_at" TIMESTAMP;
ALTER TABLE "certificate_request" ADD COLUMN "refused_reason" TEXT NOT NULL DEFAULT '';
CREATE INDEX "certificate_request_status" ON "certificate_request" ("status");
