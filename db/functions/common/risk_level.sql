-- Risk level from a health score (documented in docs/tools-preamble.md).
CREATE OR REPLACE FUNCTION csmcp.risk_level(score integer) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN score >= 80 THEN 'low' WHEN score >= 65 THEN 'medium' WHEN score >= 50 THEN 'high' ELSE 'critical' END
$$;
