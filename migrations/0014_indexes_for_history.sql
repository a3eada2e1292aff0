-- Issue 10 (performance): pages whose cost grew with the years of data (the dashboard, the
-- officials' certificate register), found by timing every page on the large dataset. An index
-- on proxy_case (item, direction, state) would count the dashboard's figures from the index
-- alone, but SQLite's planner (no ANALYZE statistics) then took it for the ledger and board
-- filtered by item and made them several times slower: not added.
--
-- The average working days to finish: each finished case's moves into a final state and their
-- time, read from the index beside the case id.
CREATE INDEX "case_event_case_to_state_created" ON "case_event" ("case_id", "to_state", "created_at");
-- The officials' register of settlement certificates, newest first, 200 at a time: without it
-- the planner read every loan to find the few certificates of one kind. Partial (settlement
-- certificates only), so a depositor's or an employer's certificates keep their own index.
CREATE INDEX "certificate_settlement_issued" ON "certificate" ("issued_at", "id") WHERE "kind" = 'settlement';
