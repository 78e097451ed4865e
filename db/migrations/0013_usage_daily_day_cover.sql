-- 0013_usage_daily_day_cover.sql - covering index for list_clients' portfolio summary.
--
-- list_clients sums active users over the last 7 days for the whole filtered set on every
-- call. Without this index that is a sequential scan of all of usage_daily (860K rows at
-- 10,000 accounts) to keep 67K; with it, an index-only scan of the 7-day slice.
-- Measured at 10,000 accounts (docs/scale.md): list_clients 433 -> 261 ms per call.
CREATE INDEX IF NOT EXISTS usage_daily_day_cover ON usage_daily (day) INCLUDE (client_id, active_users);
