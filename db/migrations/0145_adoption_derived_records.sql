-- 0145_adoption_derived_records.sql - m3 of track_adoption_milestones without a probe per account
-- (issue 21): at 100,000 accounts the per-account index probe into usage_moments took ~9 s
-- (97K random reads of a 9M-entry index). adoption_derived now also keeps each account's
-- record days of daily active users: rec_days / rec_vals = the days whose active_users exceed
-- every earlier day's (the first usage day always), in day order, so rec_vals ascends strictly.
-- The first day with active_users >= k is rec_days[i] for the first i with rec_vals[i] >= k:
-- i = width_bucket(k - 1, rec_vals) + 1 (the number of records below k, plus one), null when
-- no record reaches k. Maintained with the other columns (db/functions/portfolio/usage_milestones.sql).
ALTER TABLE adoption_derived ADD COLUMN rec_days date[], ADD COLUMN rec_vals integer[];

UPDATE adoption_derived d SET rec_days = r.days, rec_vals = r.vals
FROM (SELECT client_id, array_agg(day ORDER BY day) AS days, array_agg(active_users ORDER BY day) AS vals
      FROM (SELECT client_id, day, active_users,
                   max(active_users) OVER (PARTITION BY client_id ORDER BY day ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS pm
            FROM usage_daily) u
      WHERE pm IS NULL OR active_users > pm
      GROUP BY 1) r
WHERE r.client_id = d.client_id;
-- accounts with usage rows but no m1/m2/m4..m6 (no events yet) had no row
INSERT INTO adoption_derived (client_id, rec_days, rec_vals)
SELECT client_id, array_agg(day ORDER BY day), array_agg(active_users ORDER BY day)
FROM (SELECT client_id, day, active_users,
             max(active_users) OVER (PARTITION BY client_id ORDER BY day ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS pm
      FROM usage_daily) u
WHERE (pm IS NULL OR active_users > pm) AND NOT EXISTS (SELECT 1 FROM adoption_derived d WHERE d.client_id = u.client_id)
GROUP BY 1;
ANALYZE adoption_derived;
-- the per-account probe's index (0144) is not read any more
DROP INDEX IF EXISTS usage_moments_max_idx;
