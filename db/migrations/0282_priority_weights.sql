-- 0282: the configurable weights of prioritize_portfolio (issue 24): one row; an operator changes
-- them with UPDATE scorecard_priority_weights SET ... (docs/tools.md states the formula).
CREATE TABLE scorecard_priority_weights (
    singleton        boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    renewal_90d      numeric(5,3) NOT NULL DEFAULT 1.0 CHECK (renewal_90d BETWEEN 0 AND 10),
    critical_ticket  numeric(5,3) NOT NULL DEFAULT 0.5 CHECK (critical_ticket BETWEEN 0 AND 10),
    overdue_invoice  numeric(5,3) NOT NULL DEFAULT 1.0 CHECK (overdue_invoice BETWEEN 0 AND 10),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
INSERT INTO scorecard_priority_weights DEFAULT VALUES;
