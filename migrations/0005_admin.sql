-- 0005: one-time setup links for new staff (no default passwords).
CREATE TABLE "staff_setup_token" (
    "id" {{pk}},
    "staff_id" INTEGER NOT NULL,
    "token_hash" VARCHAR(64) NOT NULL,
    "created_at" TIMESTAMP NOT NULL,
    "expires_at" TIMESTAMP NOT NULL,
    "used_at" TIMESTAMP,
    FOREIGN KEY ("staff_id") REFERENCES "staff_user" ("id") ON DELETE CASCADE
);
CREATE INDEX "staff_setup_token_staff_id" ON "staff_setup_token" ("staff_id");
CREATE UNIQUE INDEX "staff_setup_token_token_hash" ON "staff_setup_token" ("token_hash");
