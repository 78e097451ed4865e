-- 0152_risk_indicators_score_index.sql - the risk indicators of one health score (issue 21,
-- session 7, helper valuex). identify_churn_risk lists each listed account's indicators by the
-- score's id (risk_indicators.score_id), and deleting a health score cascades to its indicators
-- by the same column: without an index each was a scan of every indicator (~100,000 rows, 11 MB
-- at 100,000 accounts; 15-130 ms per listed account).
CREATE INDEX risk_indicators_score_idx ON risk_indicators (score_id);
