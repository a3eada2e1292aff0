-- 0006: employer hall (issue 5). An employer's change of one depositor's deposit base names
-- the account; a change dated to a later month waits as "scheduled" until that month.
ALTER TABLE "change_record" ADD COLUMN "account_id" INTEGER REFERENCES "account" ("id");
CREATE INDEX "change_record_account_id" ON "change_record" ("account_id");
ALTER TABLE "change_record" ADD COLUMN "status" VARCHAR(10) NOT NULL DEFAULT 'applied';
CREATE INDEX "change_record_status" ON "change_record" ("status");
