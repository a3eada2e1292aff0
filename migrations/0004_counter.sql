-- Issue 6 (counter, ledger, platform files): platform messages we sent or processed.
-- A message id from one sender is processed once: importing it again is a no-op.
CREATE TABLE "platform_message" (
    "id" {{pk}},
    "message_id" VARCHAR(36) NOT NULL,
    "direction" VARCHAR(3) NOT NULL,
    "kind" VARCHAR(24) NOT NULL,
    "sender" VARCHAR(12) NOT NULL,
    "recipient" VARCHAR(12) NOT NULL,
    "case_id" INTEGER,
    "storage_key" VARCHAR(200) NOT NULL,
    "sha256" VARCHAR(64) NOT NULL,
    "actor" VARCHAR(40) NOT NULL,
    "created_at" TIMESTAMP NOT NULL,
    FOREIGN KEY ("case_id") REFERENCES "proxy_case" ("id")
);
CREATE UNIQUE INDEX "platform_message_sender_message_id" ON "platform_message" ("sender", "message_id");
CREATE INDEX "platform_message_case_id" ON "platform_message" ("case_id");
CREATE INDEX "platform_message_created_at" ON "platform_message" ("created_at");
