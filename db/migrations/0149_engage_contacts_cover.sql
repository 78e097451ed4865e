-- 0149_engage_contacts_cover.sql - the churned accounts' communications and tickets of a period
-- by index only (issue 21): analyze_engagement_patterns across all accounts subtracts them from
-- the per-day rollups (0146), one index range per churned account; at 100,000 accounts the heap
-- reads of those ~8,000 tickets / ~5,000 communications took 0.3-1.0 s per call. The same keys as
-- the indexes they replace (every query that used those can use these).
CREATE INDEX communications_client_cover_idx ON communications (client_id, occurred_at) INCLUDE (channel, direction);
DROP INDEX communications_client_idx;
CREATE INDEX support_tickets_client_cover_idx ON support_tickets (client_id, created_at) INCLUDE (priority, category);
DROP INDEX support_tickets_client_idx;
