-- 0012 (issue 11): notifications (站内消息), service rating (好差评), background jobs.
-- A notice in someone's in-portal inbox: a depositor, an employer operator or a staff member.
-- "key" makes a notice idempotent per recipient (a repeated event is not told twice).
CREATE TABLE "notice" (
    "id" {{pk}},
    "recipient_kind" VARCHAR(10) NOT NULL,
    "recipient_id" INTEGER NOT NULL,
    "title" VARCHAR(100) NOT NULL,
    "body" TEXT NOT NULL,
    "link" VARCHAR(200) NOT NULL,
    "key" VARCHAR(100),
    "read_at" TIMESTAMP,
    "created_at" TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX "notice_recipient_kind_recipient_id_key" ON "notice" ("recipient_kind", "recipient_id", "key");
CREATE INDEX "notice_recipient_kind_recipient_id_read_at" ON "notice" ("recipient_kind", "recipient_id", "read_at");
-- A rating of a finished case or online item by its applicant: once per subject and person.
CREATE TABLE "rating" (
    "id" {{pk}},
    "subject_kind" VARCHAR(12) NOT NULL,
    "subject_id" INTEGER NOT NULL,
    "rater_kind" VARCHAR(10) NOT NULL,
    "rater_id" INTEGER NOT NULL,
    "rater_name" VARCHAR(40) NOT NULL,
    "channel" VARCHAR(10) NOT NULL,
    "item" VARCHAR(32) NOT NULL,
    "title" VARCHAR(120) NOT NULL,
    "department_id" INTEGER,
    "score" INTEGER NOT NULL,
    "comment" TEXT NOT NULL,
    "followup_state" VARCHAR(8) NOT NULL,
    "created_at" TIMESTAMP NOT NULL,
    FOREIGN KEY ("department_id") REFERENCES "department" ("id")
);
CREATE UNIQUE INDEX "rating_subject_kind_subject_id_rater_kind_rater_id" ON "rating" ("subject_kind", "subject_id", "rater_kind", "rater_id");
CREATE INDEX "rating_department_id" ON "rating" ("department_id");
CREATE INDEX "rating_created_at" ON "rating" ("created_at");
CREATE INDEX "rating_followup_state" ON "rating" ("followup_state");
-- The department's follow-up of a bad rating: 回访 first, then 整改; each once.
CREATE TABLE "rating_followup" (
    "id" {{pk}},
    "rating_id" INTEGER NOT NULL,
    "step" VARCHAR(4) NOT NULL,
    "note" TEXT NOT NULL,
    "staff_id" INTEGER NOT NULL,
    "at" TIMESTAMP NOT NULL,
    FOREIGN KEY ("rating_id") REFERENCES "rating" ("id") ON DELETE CASCADE,
    FOREIGN KEY ("staff_id") REFERENCES "staff_user" ("id")
);
CREATE UNIQUE INDEX "rating_followup_rating_id_step" ON "rating_followup" ("rating_id", "step");
CREATE INDEX "rating_followup_staff_id" ON "rating_followup" ("staff_id");
-- Long work done by the worker process (`flask --app portal jobs worker`), with its progress.
CREATE TABLE "job" (
    "id" {{pk}},
    "kind" VARCHAR(30) NOT NULL,
    "params" TEXT NOT NULL,
    "status" VARCHAR(8) NOT NULL,
    "progress" INTEGER NOT NULL,
    "message" VARCHAR(300) NOT NULL,
    "result_key" VARCHAR(200) NOT NULL,
    "result_name" VARCHAR(120) NOT NULL,
    "created_by_id" INTEGER,
    "created_at" TIMESTAMP NOT NULL,
    "started_at" TIMESTAMP,
    "finished_at" TIMESTAMP,
    "updated_at" TIMESTAMP NOT NULL,
    "locked_until" TIMESTAMP,
    "attempts" INTEGER NOT NULL,
    FOREIGN KEY ("created_by_id") REFERENCES "staff_user" ("id")
);
CREATE INDEX "job_created_by_id" ON "job" ("created_by_id");
CREATE INDEX "job_status_created_at" ON "job" ("status", "created_at");
