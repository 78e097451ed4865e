-- 0158_feature_adoption_client_day.sql - adoption rows of an account by first-use day (issue 21):
-- analyze_product_usage benchmarks an account against the mean adopted features of its tier's
-- other accounts up to the period's end; with this index each peer's count is an index-only
-- range read (client_id, first_used_on <= end) instead of heap visits through the primary key.
CREATE INDEX feature_adoption_client_day_idx ON feature_adoption (client_id, first_used_on);
