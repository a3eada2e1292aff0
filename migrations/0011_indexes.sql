-- Issue 10 (performance): indexes for a center-sized dataset (bench/, docs/performance.md).
--
-- The boards: each column's first cards in board order (open columns by deadline, finished
-- ones newest first) come straight off an index instead of sorting every case of the column;
-- the second also covers the per-column aggregates (count, latest change, versions) the board
-- and its polling compute for every viewer (a department's staff see their department's), so
-- they read the index alone.
CREATE INDEX "proxy_case_direction_state_deadline" ON "proxy_case" ("direction", "state", "deadline", "id");
CREATE INDEX "proxy_case_direction_state_updated" ON "proxy_case" ("direction", "state", "updated_at", "id", "version", "department_id");
-- The ledger (台账): a date range of acceptance / receipt, newest first, a page at a time.
CREATE INDEX "proxy_case_clock_start" ON "proxy_case" ("clock_start", "id");
