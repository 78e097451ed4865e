-- 0201_support_indexes.sql - indexes for analyze_support_performance's period scans (measured at
-- 10,000 accounts): the ratings given in a period (CSAT by rated_at), and the portal's KB views
-- in a period (the deflection rate counts them from the index alone).
CREATE INDEX IF NOT EXISTS support_tickets_rated_idx ON support_tickets (rated_at) WHERE rated_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS kb_article_views_portal_idx ON kb_article_views (viewed_at, client_id) WHERE client_id IS NOT NULL;
