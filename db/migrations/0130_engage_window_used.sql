-- 0130_engage_window_used.sql - the periods analyze_engagement_patterns' all-accounts callers
-- asked for, and the last UTC day they did (issue 21): the monitor process fills the day tables
-- of the periods used in the last 7 days shortly after UTC midnight (csmcp.engage_window_prefill),
-- so that the day's first caller no longer pays the fill (9-14 s at 100,000 accounts).
-- Written once per period and day by the tool (csmcp.engage_window_ensure), read by the prefill.
CREATE TABLE engage_window_used (
    v_days integer PRIMARY KEY,
    last_day date NOT NULL
);
