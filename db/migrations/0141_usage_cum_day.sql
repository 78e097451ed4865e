-- 0141_usage_cum_day.sql - usage_cum by day (issue 21): the usage_decline trigger reads the running
-- totals of every account at three days (today, today - L, today - 2L); with this index those are
-- three slices read in order and hash-joined (one entry per account that has a usage row on that
-- exact day), and only accounts without a row on the day fall back to the per-account
-- "last row on or before" lookup of the primary key.
CREATE INDEX usage_cum_day_idx ON usage_cum (day, client_id) INCLUDE (cum_users);
ANALYZE usage_cum;
