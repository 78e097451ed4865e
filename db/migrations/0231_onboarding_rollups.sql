-- 0231_onboarding_rollups.sql - summaries the onboarding tools keep current in the writing
-- transaction, so that the portfolio reads stay within their latency budget at 10,000 accounts:
--   * onboarding_plans.ttv_days / ttv_reached: the account's time to value measured when the
--     plan was completed (update_onboarding_progress, seed), read by optimize_onboarding_process;
--   * onboarding_ttv_benchmarks: per product tier, the distribution of days from plan start to
--     M3 completion, refreshed when an M3 milestone is completed, read by optimize_time_to_value.
ALTER TABLE onboarding_plans
    ADD COLUMN ttv_days    integer CHECK (ttv_days >= 0),
    ADD COLUMN ttv_reached boolean;

CREATE TABLE onboarding_ttv_benchmarks (
    product_tier text PRIMARY KEY CHECK (product_tier IN ('starter', 'standard', 'professional', 'enterprise')),
    plans        integer NOT NULL CHECK (plans >= 0),
    median_days  numeric(7,1),
    p25_days     numeric(7,1),
    p75_days     numeric(7,1),
    refreshed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX onboarding_milestones_m3_done_idx ON onboarding_milestones (plan_id) INCLUDE (completed_on)
    WHERE template_code = 'M3' AND status = 'completed';

-- Existing completed plans get their snapshot now (the function exists when this database had
-- the onboarding functions applied before; a fresh database has no plans yet).
DO $$
BEGIN
    IF to_regprocedure('csmcp.onb_ttv(text)') IS NOT NULL THEN
        UPDATE onboarding_plans p SET ttv_days = (x ->> 'ttv_days')::integer, ttv_reached = (x ->> 'reached')::boolean
        FROM (SELECT client_id, csmcp.onb_ttv(client_id) AS x
              FROM (SELECT DISTINCT client_id FROM onboarding_plans WHERE status = 'completed') c) t
        WHERE p.client_id = t.client_id AND p.status = 'completed';
    END IF;
END $$;
