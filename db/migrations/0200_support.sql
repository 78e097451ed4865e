-- 0200_support.sql - support & self-service: what the six tools need beyond 0001's tables.
--
--   * server-generated ids: TKT-<n> from support_ticket_seq, KB-<n> from kb_article_seq, RES-<n>
--     (portal resources); the sequences start above every id the demo seed writes;
--   * support_tickets: escalated_at, rated_at (CSAT is counted in the period the rating was
--     given), and indexes for the agent-load counts, the unassigned queue and period analytics;
--   * kb_articles.search_vector: the full-text document (title A, tags B, summary B, content C),
--     kept current by triggers in db/functions/support/_lib.sql; kb_article_versions keeps every
--     previous version; kb_article_views records which client viewed what (portal views, the
--     deflection rate); kb_searches records searches (zero-result queries are the search gaps);
--   * portal_resources: downloadable resources offered in the customer portal.
CREATE SEQUENCE support_ticket_seq START 20000000;
CREATE SEQUENCE kb_article_seq START 10000;
CREATE SEQUENCE portal_resource_seq START 1000;

ALTER TABLE support_tickets
    ADD COLUMN escalated_at timestamptz,
    ADD COLUMN rated_at timestamptz;
UPDATE support_tickets SET rated_at = coalesce(closed_at, resolved_at, updated_at) WHERE satisfaction_rating IS NOT NULL;
UPDATE support_tickets SET escalated_at = updated_at WHERE escalated;
CREATE INDEX support_tickets_agent_open_idx ON support_tickets (assigned_agent)
    WHERE status NOT IN ('resolved', 'closed');
CREATE INDEX support_tickets_unassigned_idx ON support_tickets (assigned_team, priority)
    WHERE assigned_agent IS NULL AND status NOT IN ('resolved', 'closed');
CREATE INDEX support_tickets_created_idx ON support_tickets (created_at);
CREATE INDEX support_tickets_resolved_idx ON support_tickets (resolved_at) WHERE resolved_at IS NOT NULL;
CREATE INDEX support_tickets_first_response_idx ON support_tickets (first_response_at) WHERE first_response_at IS NOT NULL;

ALTER TABLE kb_articles ADD COLUMN search_vector tsvector;
UPDATE kb_articles a SET search_vector =
    setweight(to_tsvector('english', a.title), 'A') ||
    setweight(to_tsvector('english', coalesce((SELECT string_agg(t.tag, ' ') FROM kb_article_tags t
                                                WHERE t.article_id = a.article_id), '')), 'B') ||
    setweight(to_tsvector('english', a.summary), 'B') ||
    setweight(to_tsvector('english', a.content), 'C');
CREATE INDEX kb_articles_search_idx ON kb_articles USING gin (search_vector);
CREATE INDEX kb_articles_category_idx ON kb_articles (category, status);

CREATE TABLE kb_article_versions (
    article_id  text NOT NULL REFERENCES kb_articles ON DELETE CASCADE,
    version     integer NOT NULL,
    title       text NOT NULL,
    summary     text NOT NULL,
    content     text NOT NULL,
    category    text NOT NULL,
    subcategory text,
    tags        text[] NOT NULL DEFAULT '{}',
    status      text NOT NULL,
    saved_at    timestamptz NOT NULL DEFAULT now(),
    saved_by    text NOT NULL,
    PRIMARY KEY (article_id, version)
);

CREATE TABLE kb_article_views (
    view_id    bigserial PRIMARY KEY,
    article_id text NOT NULL REFERENCES kb_articles ON DELETE CASCADE,
    client_id  text REFERENCES accounts ON DELETE CASCADE,
    viewed_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX kb_article_views_client_idx ON kb_article_views (client_id, viewed_at);
CREATE INDEX kb_article_views_time_idx ON kb_article_views (viewed_at);

CREATE TABLE kb_searches (
    search_id   bigserial PRIMARY KEY,
    query       text NOT NULL,
    category    text,
    results     integer NOT NULL,
    client_id   text REFERENCES accounts ON DELETE CASCADE,
    searched_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX kb_searches_time_idx ON kb_searches (searched_at);

CREATE TABLE portal_resources (
    resource_id   text PRIMARY KEY CHECK (resource_id ~ '^RES-[0-9]+$'),
    resource_type text NOT NULL CHECK (resource_type IN ('documentation', 'downloads', 'training')),
    title         text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    description   text NOT NULL DEFAULT '',
    url           text NOT NULL,
    client_id     text REFERENCES accounts ON DELETE CASCADE, -- NULL: offered to every client
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX portal_resources_type_idx ON portal_resources (resource_type, client_id);
