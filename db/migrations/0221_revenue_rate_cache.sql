-- 0221_revenue_rate_cache.sql - the portfolio churn rate of a day, computed once.
--
-- optimize_customer_lifetime_value divides by the portfolio's annual churn rate, which needs
-- every revenue event (one aggregate per account). One computation per day and state of the
-- events is kept here; a row is valid while the event count and the highest event id are the
-- ones it was computed from (any insert or delete of an event changes one of them).
CREATE TABLE revenue_rate_cache (
    as_of        date PRIMARY KEY,
    n_events     bigint NOT NULL,
    max_event_id bigint NOT NULL,
    starting_arr numeric NOT NULL,
    churned_arr  numeric NOT NULL,
    computed_at  timestamptz NOT NULL DEFAULT now()
);
