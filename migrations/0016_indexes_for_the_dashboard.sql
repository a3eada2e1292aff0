-- Issue 10 (performance): the dashboard counts what was done over the last 12 months (the
-- cases accepted or received since then, those that reached a final state since then and
-- their average working days), no longer over every case ever: its cost follows a year's
-- volume, not the years of history a center keeps.
--
-- The moves into a final state, found by that state and their time, the case beside them: the
-- window's range of the index alone. It replaces 0014's (case_id, to_state, created_at), which
-- only the dashboard's reading of every finished case used (and which SQLite's planner still
-- preferred for the window, to group by case without sorting).
DROP INDEX "case_event_case_to_state_created";
CREATE INDEX "case_event_to_state_created" ON "case_event" ("to_state", "created_at", "case_id");
-- The cases whose clock started in the window, by item and direction and by peer center: read
-- from the index alone (20 and 47 ms of table reads on the large dataset before). The same
-- leading columns as 0011's (clock_start, id), so the counter's recent cases keep using it.
DROP INDEX "proxy_case_clock_start";
CREATE INDEX "proxy_case_clock_start" ON "proxy_case" ("clock_start", "id", "center_id", "item", "direction");
