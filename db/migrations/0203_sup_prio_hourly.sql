-- 0203_sup_prio_hourly.sql - support tickets per priority and UTC hour (issue 21): the whole
-- team's figures of analyze_support_performance (every call's period metrics; overview's trend
-- buckets; sla's per-priority figures; comparison) summed sup_prio_daily's whole days and read
-- the tickets of the partial first and last days (~5,000 tickets a day at 100,000 accounts,
-- ~60 ms each, twice per period and up to five periods per call: ~1 s for the overview).
-- With whole hours from here, only the tickets of the two partial hours are read.
--
--   sup_prio_hourly (day, hr, priority): the same counters as sup_prio_daily (agent always '*')
--   for the clocks falling in hour hr (0-23, UTC) of day.
--
-- Invariants (db/functions/support/sup_agent_daily.sql): exact, kept by the same statement
-- triggers on support_tickets as sup_agent_daily in the writing transaction; included in
-- csmcp.sup_agent_daily_check() and csmcp.sup_agent_daily_rebuild(); the function file fills it
-- when it is empty and tickets exist.
CREATE TABLE sup_prio_hourly (LIKE sup_agent_daily INCLUDING DEFAULTS);
ALTER TABLE sup_prio_hourly ADD COLUMN hr smallint NOT NULL;
ALTER TABLE sup_prio_hourly ADD PRIMARY KEY (day, hr, priority);
