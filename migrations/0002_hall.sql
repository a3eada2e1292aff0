-- Depositor online hall (issue 4): the fixed-window rate-limit counter.
CREATE TABLE "rate_limit_hit" (
    "id" {{pk}},
    "key" VARCHAR(120) NOT NULL,
    "window_start" BIGINT NOT NULL,
    "hits" INTEGER NOT NULL
);
CREATE UNIQUE INDEX "rate_limit_hit_key_window_start" ON "rate_limit_hit" ("key", "window_start");
