-- 0220_expansion.sql - tables for the expansion & revenue tools (issue 14).
--
--   products, product_prerequisites, contract_products: the product catalogue and what each
--     contract includes (identify_crosssell_opportunities);
--   revenue_settings: configured figures the revenue tools read (gross margin, CAC);
--   expansion_opportunities: an opportunity_key so identification is idempotent (one open
--     opportunity per account and key), the ARR it started from, and the rule's inputs;
--   renewals: the latest forecast; renewal_forecasts: every forecast, for forecast-vs-outcome;
--   renewal_reminders: the 90/60/30/14/7-day reminders, at most once per contract and date.

CREATE TABLE products (
    product_id  text PRIMARY KEY CHECK (product_id ~ '^[a-z0-9_]{1,60}$'),
    name        text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    family      text NOT NULL CHECK (family IN ('platform', 'analytics', 'integration', 'automation', 'security', 'services')),
    list_price  numeric(14,2) NOT NULL CHECK (list_price >= 0), -- annual list price at seats factor 1
    is_base     boolean NOT NULL DEFAULT false,                 -- included in every contract
    active      boolean NOT NULL DEFAULT true
);

CREATE TABLE product_prerequisites (
    product_id text NOT NULL REFERENCES products ON DELETE CASCADE,
    requires   text NOT NULL REFERENCES products ON DELETE CASCADE,
    PRIMARY KEY (product_id, requires),
    CHECK (product_id <> requires)
);

CREATE TABLE contract_products (
    contract_id text NOT NULL REFERENCES contracts ON DELETE CASCADE,
    product_id  text NOT NULL REFERENCES products,
    added_on    date,
    PRIMARY KEY (contract_id, product_id)
);
CREATE INDEX contract_products_product_idx ON contract_products (product_id);

CREATE TABLE revenue_settings (
    key        text PRIMARY KEY CHECK (key IN ('gross_margin', 'cac')),
    value      numeric NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((key = 'gross_margin' AND value > 0 AND value <= 1) OR (key = 'cac' AND value >= 0))
);

CREATE SEQUENCE expansion_opportunity_seq START 1001;
ALTER TABLE expansion_opportunities
    ADD COLUMN opportunity_key text,
    ADD COLUMN current_arr     numeric(14,2) CHECK (current_arr >= 0),
    ADD COLUMN details         jsonb NOT NULL DEFAULT '{}',
    ADD COLUMN identified_by   text;
-- One open opportunity per account and key ('tier_upgrade:professional', 'cross_sell:api_suite',
-- 'user_expansion'): identification upserts on it.
CREATE UNIQUE INDEX expansion_open_key ON expansion_opportunities (client_id, opportunity_key)
    WHERE stage NOT IN ('won', 'lost');
CREATE INDEX expansion_open_type_idx ON expansion_opportunities (expansion_type) WHERE stage NOT IN ('won', 'lost');

ALTER TABLE renewals
    ADD COLUMN forecast_at      timestamptz,
    ADD COLUMN forecast_band    text CHECK (forecast_band IN ('high', 'medium', 'at_risk')),
    ADD COLUMN forecast_factors jsonb;
CREATE SEQUENCE renewal_seq START 1001;

CREATE TABLE renewal_forecasts (
    forecast_id        bigserial PRIMARY KEY,
    renewal_id         text NOT NULL REFERENCES renewals ON DELETE CASCADE,
    client_id          text NOT NULL REFERENCES accounts ON DELETE CASCADE,
    forecast_at        timestamptz NOT NULL DEFAULT now(),
    renewal_date       date NOT NULL,
    days_until_renewal integer NOT NULL,
    health_score       integer NOT NULL CHECK (health_score BETWEEN 0 AND 100),
    base_probability   numeric(4,3) NOT NULL CHECK (base_probability BETWEEN 0 AND 1),
    probability        numeric(4,3) NOT NULL CHECK (probability BETWEEN 0 AND 1),
    payment_overdue    boolean NOT NULL,
    open_escalation    boolean NOT NULL,
    current_arr        numeric(14,2) NOT NULL CHECK (current_arr >= 0),
    forecast_arr       numeric(14,2) NOT NULL CHECK (forecast_arr >= 0),
    band               text NOT NULL CHECK (band IN ('high', 'medium', 'at_risk')),
    forecast_by        text NOT NULL
);
CREATE INDEX renewal_forecasts_renewal_idx ON renewal_forecasts (renewal_id, forecast_at DESC);

CREATE TABLE renewal_reminders (
    contract_id  text NOT NULL REFERENCES contracts ON DELETE CASCADE,
    client_id    text NOT NULL REFERENCES accounts ON DELETE CASCADE,
    renewal_date date NOT NULL,
    days_before  integer NOT NULL CHECK (days_before IN (90, 60, 30, 14, 7)),
    remind_on    date NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    created_by   text NOT NULL,
    PRIMARY KEY (contract_id, renewal_date, days_before),
    CHECK (remind_on = renewal_date - days_before)
);

-- Renewal windows (active contracts by end date) and revenue periods (events by date).
CREATE INDEX contracts_active_end_idx ON contracts (end_date) WHERE status = 'active';
CREATE INDEX revenue_events_date_idx ON revenue_events (occurred_on) INCLUDE (client_id, kind, arr_delta);
