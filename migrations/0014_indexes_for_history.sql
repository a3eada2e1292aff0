-- Issue 10 (performance): pages whose cost grew with the years of data (the dashboard, the
-- officials' certificate register), found by timing every page on the large dataset.
--
-- Cases by item, direction and state (the dashboard's first figures) are counted over this
-- index instead of reading every case's row.
CREATE INDEX "proxy_case_item_direction_state" ON "proxy_case" ("item", "direction", "state");
-- The average working days to finish: each finished case's moves into a final state and their
-- time, read from the index beside the case id.
CREATE INDEX "case_event_case_to_state_created" ON "case_event" ("case_id", "to_state", "created_at");
-- The officials' register of settlement certificates, newest first, 200 at a time: without it
-- the planner read every loan to find the few certificates of one kind.
CREATE INDEX "certificate_kind_issued" ON "certificate" ("kind", "issued_at", "id");
-- The counter's recent cases: a window's latest outbound cases, without sorting all of them.
CREATE INDEX "proxy_case_department_direction_created" ON "proxy_case" ("department_id", "direction", "created_at", "id");
