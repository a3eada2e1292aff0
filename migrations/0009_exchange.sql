-- 0009 (issue 8): the national platform exchange over HTTP.
-- A peer center's exchange endpoint (its /platform/inbox URL), managed by the admin.
ALTER TABLE "center" ADD COLUMN "exchange_url" VARCHAR(200) NOT NULL DEFAULT '';
-- An outbound case sent to the platform: pending (待送达) until the peer acknowledges, failed
-- when the message could not be delivered, acked once the peer's acknowledgement arrived (the
-- peer's own 3 working days run from peer_ack_on to peer_deadline).
ALTER TABLE "proxy_case" ADD COLUMN "delivery" VARCHAR(10) NOT NULL DEFAULT '';
ALTER TABLE "proxy_case" ADD COLUMN "peer_ack_on" DATE;
ALTER TABLE "proxy_case" ADD COLUMN "peer_deadline" DATE;
-- The durable outbox: a message to a peer reached over HTTP is written here in the same
-- transaction as the state change that causes it; the worker sends it with retries.
CREATE TABLE "outbox_message" (
    "id" {{pk}},
    "message_id" VARCHAR(36) NOT NULL,
    "platform_message_id" INTEGER NOT NULL,
    "center_id" INTEGER NOT NULL,
    "case_id" INTEGER,
    "kind" VARCHAR(24) NOT NULL,
    "status" VARCHAR(10) NOT NULL,
    "attempts" INTEGER NOT NULL,
    "next_attempt_at" TIMESTAMP NOT NULL,
    "locked_until" TIMESTAMP,
    "last_error" VARCHAR(300) NOT NULL,
    "last_status" INTEGER,
    "created_by" VARCHAR(40) NOT NULL,
    "created_at" TIMESTAMP NOT NULL,
    "updated_at" TIMESTAMP NOT NULL,
    "sent_at" TIMESTAMP,
    FOREIGN KEY ("platform_message_id") REFERENCES "platform_message" ("id"),
    FOREIGN KEY ("center_id") REFERENCES "center" ("id"),
    FOREIGN KEY ("case_id") REFERENCES "proxy_case" ("id")
);
CREATE UNIQUE INDEX "outbox_message_message_id" ON "outbox_message" ("message_id");
CREATE UNIQUE INDEX "outbox_message_platform_message_id" ON "outbox_message" ("platform_message_id");
CREATE INDEX "outbox_message_center_id" ON "outbox_message" ("center_id");
CREATE INDEX "outbox_message_case_id" ON "outbox_message" ("case_id");
CREATE INDEX "outbox_message_status_next_attempt_at" ON "outbox_message" ("status", "next_attempt_at");
-- 亮码可办: a depositor's one-day business e-code (valid until 24:00 Asia/Shanghai of the day it
-- was issued, single use once a center has queried it), and who used it.
CREATE TABLE "e_code" (
    "id" {{pk}},
    "depositor_id" INTEGER NOT NULL,
    "code" VARCHAR(24) NOT NULL,
    "issued_on" DATE NOT NULL,
    "expires_at" TIMESTAMP NOT NULL,
    "created_at" TIMESTAMP NOT NULL,
    "revoked_at" TIMESTAMP,
    "used_at" TIMESTAMP,
    "used_by_center" VARCHAR(12) NOT NULL,
    "used_by_center_name" VARCHAR(100) NOT NULL,
    "used_by" VARCHAR(100) NOT NULL,
    "query_message_id" VARCHAR(36) NOT NULL,
    "reply_key" VARCHAR(200) NOT NULL,
    "reply_sha256" VARCHAR(64) NOT NULL,
    FOREIGN KEY ("depositor_id") REFERENCES "depositor" ("id")
);
CREATE UNIQUE INDEX "e_code_code" ON "e_code" ("code");
CREATE INDEX "e_code_depositor_id" ON "e_code" ("depositor_id");
-- The querying side: a clerk's look-up of another center's depositor by e-code.
CREATE TABLE "e_code_lookup" (
    "id" {{pk}},
    "staff_id" INTEGER NOT NULL,
    "center_id" INTEGER NOT NULL,
    "code_hint" VARCHAR(24) NOT NULL,
    "message_id" VARCHAR(36) NOT NULL,
    "reply_message_id" VARCHAR(36) NOT NULL,
    "outcome" VARCHAR(10) NOT NULL,
    "reason" VARCHAR(200) NOT NULL,
    "data" TEXT NOT NULL,
    "created_at" TIMESTAMP NOT NULL,
    FOREIGN KEY ("staff_id") REFERENCES "staff_user" ("id"),
    FOREIGN KEY ("center_id") REFERENCES "center" ("id")
);
CREATE INDEX "e_code_lookup_staff_id" ON "e_code_lookup" ("staff_id");
CREATE INDEX "e_code_lookup_center_id" ON "e_code_lookup" ("center_id");
CREATE INDEX "e_code_lookup_created_at" ON "e_code_lookup" ("created_at");
