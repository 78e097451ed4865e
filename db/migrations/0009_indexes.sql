-- 0009_indexes.sql - indexes for lookups by contract (payment component of the health model,
-- overview, seed) and by feature (feature adoption across accounts).
CREATE INDEX IF NOT EXISTS invoices_contract_idx ON invoices (contract_id);
CREATE INDEX IF NOT EXISTS usage_feature_daily_feature_idx ON usage_feature_daily (feature_id, day);
CREATE INDEX IF NOT EXISTS feature_adoption_feature_idx ON feature_adoption (feature_id, first_used_on);
CREATE INDEX IF NOT EXISTS renewals_client_idx ON renewals (client_id);
CREATE INDEX IF NOT EXISTS lifecycle_changed_idx ON lifecycle_transitions (changed_at);
