-- 0288: manage_health_scorecards reports per version how many stored scores it produced
-- (scores_stored); without this index that counted every stored score per scorecard.
CREATE INDEX health_scores_scorecard_idx ON health_scores (scorecard_id, scorecard_version) WHERE scorecard_id IS NOT NULL;
