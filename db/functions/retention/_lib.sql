-- db/functions/retention/_lib.sql - helpers shared by the retention & risk tools (issue 13) and
-- by the monitor process, which evaluates the stored trigger rules of automate_retention_campaigns:
--
--   csmcp.retention_trigger_matches(rule_id)         accounts a stored rule matches now
--   csmcp.retention_launch_campaign(...)             creates a campaign (targets, actions, log)
--   csmcp.retention_rule_run(rule_id, actor)         one evaluation of a rule: matches, launches,
--                                                    last_evaluated_at / last_match_count
--
-- The rules these implement are stated in the tools' JSON "rules" (docs/tools.md); keep both in step.

-- SLA state of anything with a resolution target (escalations; the ticket rule of
-- reference §3.7): while running, elapsed > target -> breached, > 0.8 x target -> at_risk,
-- else on_track; once stopped, elapsed <= target -> met, else breached.
CREATE OR REPLACE FUNCTION csmcp.retention_sla_state(p_started timestamptz, p_stopped timestamptz, p_target_hours numeric,
                                                     p_now timestamptz DEFAULT now())
RETURNS text LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN p_stopped IS NOT NULL THEN
            CASE WHEN p_stopped - p_started <= make_interval(secs => p_target_hours * 3600) THEN 'met' ELSE 'breached' END
        WHEN p_now - p_started > make_interval(secs => p_target_hours * 3600) THEN 'breached'
        WHEN p_now - p_started > make_interval(secs => p_target_hours * 3600 * 0.8) THEN 'at_risk'
        ELSE 'on_track' END
$$;

-- score_risk_factors: level and churn probability from the overall risk score (0-100).
CREATE OR REPLACE FUNCTION csmcp.retention_risk_level(p_overall numeric) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN p_overall >= 75 THEN 'critical' WHEN p_overall >= 50 THEN 'high' WHEN p_overall >= 25 THEN 'medium' ELSE 'low' END
$$;
CREATE OR REPLACE FUNCTION csmcp.retention_risk_probability(p_overall numeric) RETURNS numeric
LANGUAGE sql IMMUTABLE AS $$ SELECT round(greatest(0.05, least(0.95, p_overall / 100)), 2) $$;

CREATE OR REPLACE FUNCTION csmcp.escalation_sla_hours(p_severity text) RETURNS integer
LANGUAGE sql IMMUTABLE AS $$ SELECT CASE WHEN p_severity = 'critical' THEN 4 ELSE 24 END $$;

CREATE OR REPLACE FUNCTION csmcp.escalation_json(e escalations) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'escalation_id', e.escalation_id, 'client_id', e.client_id, 'severity', e.severity, 'status', e.status,
        'summary', e.summary, 'description', e.description, 'assigned_to', e.assigned_to,
        'sla_resolution_hours', e.sla_hours, 'opened_at', e.opened_at, 'updated_at', e.updated_at,
        'resolved_at', e.resolved_at, 'closed_at', e.closed_at, 'resolution', e.resolution, 'created_by', e.created_by,
        'sla', jsonb_build_object(
            'target_hours', e.sla_hours,
            'due_at', e.opened_at + make_interval(hours => e.sla_hours),
            'elapsed_hours', round(extract(epoch FROM coalesce(e.resolved_at, now()) - e.opened_at) / 3600, 2),
            'state', csmcp.retention_sla_state(e.opened_at, e.resolved_at, e.sla_hours)))
$$;

-- Scheduled actions of a campaign by intervention level (days after launch).
CREATE OR REPLACE FUNCTION csmcp.retention_action_plan(p_level text)
RETURNS TABLE (seq integer, action text, offset_days integer) LANGUAGE sql IMMUTABLE AS $$
    SELECT row_number() OVER (ORDER BY x.d, x.a)::integer, x.a, x.d
    FROM (VALUES ('escalation', 1, ARRAY['aggressive']),
                 ('executive_outreach', 2, ARRAY['standard', 'aggressive']),
                 ('value_review', 7, ARRAY['light', 'standard', 'aggressive']),
                 ('success_planning', 14, ARRAY['light', 'standard', 'aggressive'])) x(a, d, levels)
    WHERE p_level = ANY (x.levels)
$$;

-- A campaign with its target, actions and measured outcome (health change since launch).
CREATE OR REPLACE FUNCTION csmcp.retention_campaign_json(p_campaign_id text) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'campaign_id', c.campaign_id, 'name', c.name, 'client_id', c.client_id, 'client_name', a.client_name,
        'campaign_type', c.campaign_type, 'intervention_level', c.intervention_level, 'status', c.status,
        'owner', c.owner, 'rule_id', c.rule_id, 'created_by', c.created_by, 'launched_at', c.created_at,
        'updated_at', c.updated_at, 'completed_at', c.completed_at,
        'targets', jsonb_build_object('health_score_at_launch', t.health_at_start,
                                      'target_health_score', c.target_health_score, 'target_date', c.target_date),
        'actions', coalesce((SELECT jsonb_agg(jsonb_build_object('action_id', x.action_id, 'seq', x.seq, 'action', x.action,
                                                                 'owner', x.owner, 'due_at', x.due_at, 'done_at', x.done_at,
                                                                 'done_by', x.done_by, 'notes', x.notes,
                                                                 'status', CASE WHEN x.done_at IS NOT NULL THEN 'done'
                                                                                WHEN x.due_at < now() THEN 'overdue' ELSE 'scheduled' END)
                                              ORDER BY x.seq, x.action_id)
                             FROM campaign_actions x WHERE x.campaign_id = c.campaign_id), '[]'),
        'outcome', jsonb_build_object(
            'health_score_at_launch', t.health_at_start,
            'health_score_now', coalesce(c.final_health_score, a.health_score),
            'health_change', coalesce(c.final_health_score, a.health_score) - t.health_at_start,
            'actions_done', (SELECT count(*) FROM campaign_actions x WHERE x.campaign_id = c.campaign_id AND x.done_at IS NOT NULL),
            'actions_total', (SELECT count(*) FROM campaign_actions x WHERE x.campaign_id = c.campaign_id),
            'status', CASE WHEN coalesce(c.final_health_score, a.health_score) >= c.target_health_score THEN 'target_reached'
                           WHEN c.status = 'completed' OR csmcp.today() > c.target_date THEN 'target_missed'
                           ELSE 'in_progress' END))
    FROM retention_campaigns c
    JOIN campaign_targets t ON t.campaign_id = c.campaign_id AND t.client_id = c.client_id
    JOIN accounts a ON a.client_id = c.client_id
    WHERE c.campaign_id = p_campaign_id
$$;

-- Creates a campaign for one account: target = health at launch + 20 (at most 100) by launch
-- + 30 days; actions per csmcp.retention_action_plan. Refuses a second active campaign of the
-- same type for the account (serialised per account by an advisory lock). Returns the id.
CREATE OR REPLACE FUNCTION csmcp.retention_launch_campaign(p_client_id text, p_type text, p_level text, p_owner text,
                                                           p_name text, p_rule_id text, p_actor text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    acc accounts := csmcp.require_account(p_client_id);
    v_id text;
    v_other text;
    v_now timestamptz := now();
    v_owner text := coalesce(nullif(btrim(p_owner), ''), acc.csm_assigned);
BEGIN
    IF acc.lifecycle_stage = 'churned' THEN
        RAISE EXCEPTION 'account % has churned; a retention campaign needs a live account (use analyze_churn_postmortem)', acc.client_id
            USING ERRCODE = '22023';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('csmcp.retention_campaign:' || acc.client_id));
    SELECT campaign_id INTO v_other FROM retention_campaigns
    WHERE client_id = acc.client_id AND campaign_type = p_type AND status IN ('active', 'paused') LIMIT 1;
    IF v_other IS NOT NULL THEN
        RAISE EXCEPTION 'account % already has an active % campaign (%); complete it before launching another', acc.client_id, p_type, v_other
            USING ERRCODE = '22023';
    END IF;
    v_id := 'ret_' || nextval('retention_campaign_seq');
    INSERT INTO retention_campaigns (campaign_id, name, campaign_type, intervention_level, trigger_type, threshold, status, created_by,
                                     created_at, client_id, owner, rule_id, target_health_score, target_date, updated_at)
    SELECT v_id, coalesce(nullif(btrim(p_name), ''), initcap(replace(p_type, '_', ' ')) || ' - ' || acc.client_name), p_type, p_level,
           coalesce(r.trigger_type, 'manual'), r.threshold, 'active', coalesce(nullif(p_actor, ''), 'anonymous'), v_now, acc.client_id,
           v_owner, p_rule_id, least(100, acc.health_score + 20), csmcp.today() + 30, v_now
    FROM (SELECT 1) one LEFT JOIN retention_trigger_rules r ON r.rule_id = p_rule_id;
    INSERT INTO campaign_targets (campaign_id, client_id, status, health_at_start, added_at)
    VALUES (v_id, acc.client_id, 'targeted', acc.health_score, v_now);
    INSERT INTO campaign_actions (campaign_id, client_id, action, due_at, seq, owner)
    SELECT v_id, acc.client_id, p.action, v_now + make_interval(days => p.offset_days), p.seq, v_owner
    FROM csmcp.retention_action_plan(p_level) p;
    PERFORM csmcp.log_activity(acc.client_id, p_actor, 'launch_retention_campaign', 'retention_campaign', v_id, NULL,
                               csmcp.retention_campaign_json(v_id));
    RETURN v_id;
END $$;

-- Accounts a trigger definition matches now (live accounts only: lifecycle stage <> churned).
--   health_score  : current health score < threshold; value = the score
--   usage_decline : sum of daily active users over the last L days (today inclusive) fell by
--                   >= threshold % against the L days before (which must be > 0);
--                   value = decline in %, 1 decimal
--   nps_detractor : an NPS response with score <= threshold in the last L days (responded_at >
--                   now - L days); value = the lowest such score
--   renewal_risk  : the active contract ends within 90 days (0..90 from today) and health
--                   score < threshold; value = the score
CREATE OR REPLACE FUNCTION csmcp.retention_trigger_eval(p_type text, p_threshold numeric, p_lookback integer)
-- no JIT (the monitor calls this directly): at 100,000 accounts compiling took longer than the query
RETURNS TABLE (client_id text, trigger_value numeric, detail jsonb) LANGUAGE plpgsql STABLE SET jit = off AS $$
DECLARE t date := csmcp.today();
BEGIN
    IF p_type = 'health_score' THEN
        RETURN QUERY SELECT a.client_id, a.health_score::numeric, jsonb_build_object('health_score', a.health_score)
        FROM accounts a WHERE a.lifecycle_stage <> 'churned' AND a.health_score < p_threshold ORDER BY a.health_score, a.client_id;
    ELSIF p_type = 'usage_decline' THEN
        RETURN QUERY
        SELECT u.client_id, round((u.prev - u.recent)::numeric * 100 / u.prev, 1),
               jsonb_build_object('active_user_days_recent', u.recent, 'active_user_days_previous', u.prev, 'window_days', p_lookback)
        -- from the running totals (usage_cum, migration 0140): three index lookups per live
        -- account instead of a scan of 2 x L days of usage_daily; same sums, exactly
        -- (the rows of exactly those days hash-joined, index usage_cum_day_idx of 0141; an account
        -- without a row on such a day falls back to its last row before it)
        FROM (SELECT c.client_id, c.c0 - c.c1 AS recent, c.c1 - c.c2 AS prev
              FROM (SELECT a.client_id,
                           coalesce(d0.cum_users, (SELECT x.cum_users FROM usage_cum x WHERE x.client_id = a.client_id AND x.day <= t
                                                   ORDER BY x.day DESC LIMIT 1), 0) AS c0,
                           coalesce(d1.cum_users, (SELECT x.cum_users FROM usage_cum x WHERE x.client_id = a.client_id
                                                   AND x.day <= t - p_lookback ORDER BY x.day DESC LIMIT 1), 0) AS c1,
                           coalesce(d2.cum_users, (SELECT x.cum_users FROM usage_cum x WHERE x.client_id = a.client_id
                                                   AND x.day <= t - 2 * p_lookback ORDER BY x.day DESC LIMIT 1), 0) AS c2
                    FROM accounts a
                    LEFT JOIN usage_cum d0 ON d0.day = t AND d0.client_id = a.client_id
                    LEFT JOIN usage_cum d1 ON d1.day = t - p_lookback AND d1.client_id = a.client_id
                    LEFT JOIN usage_cum d2 ON d2.day = t - 2 * p_lookback AND d2.client_id = a.client_id
                    WHERE a.lifecycle_stage <> 'churned') c) u
        WHERE u.prev > 0 AND (u.prev - u.recent)::numeric * 100 / u.prev >= p_threshold
        ORDER BY 2 DESC, 1;
    ELSIF p_type = 'nps_detractor' THEN
        RETURN QUERY
        SELECT n.client_id, min(n.score)::numeric,
               jsonb_build_object('responses', count(*), 'latest_response_at', max(n.responded_at))
        FROM nps_responses n JOIN accounts a ON a.client_id = n.client_id AND a.lifecycle_stage <> 'churned'
        WHERE n.responded_at > now() - make_interval(days => p_lookback) AND n.score <= p_threshold
        GROUP BY n.client_id ORDER BY 2, 1;
    ELSIF p_type = 'renewal_risk' THEN
        RETURN QUERY
        SELECT a.client_id, a.health_score::numeric,
               jsonb_build_object('health_score', a.health_score, 'renewal_date', c.end_date, 'days_until_renewal', c.end_date - t,
                                  'arr', c.contract_value)
        FROM accounts a JOIN contracts c ON c.client_id = a.client_id AND c.status = 'active'
        WHERE a.lifecycle_stage <> 'churned' AND c.end_date BETWEEN t AND t + 90 AND a.health_score < p_threshold
        ORDER BY c.end_date, a.client_id;
    ELSE
        RAISE EXCEPTION 'unknown trigger_type %', p_type USING ERRCODE = '22023';
    END IF;
END $$;

-- The accounts a stored rule matches right now (the dry run of automate_retention_campaigns;
-- the monitor process calls it, or retention_rule_run below, for each active rule).
CREATE OR REPLACE FUNCTION csmcp.retention_trigger_matches(p_rule_id text)
RETURNS TABLE (client_id text, trigger_value numeric, detail jsonb) LANGUAGE plpgsql STABLE AS $$
DECLARE r retention_trigger_rules;
BEGIN
    SELECT * INTO r FROM retention_trigger_rules WHERE rule_id = p_rule_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'retention trigger rule % not found', p_rule_id USING ERRCODE = 'P0002';
    END IF;
    RETURN QUERY SELECT * FROM csmcp.retention_trigger_eval(r.trigger_type, r.threshold, r.lookback_days);
END $$;

-- One evaluation of a rule by the monitor process: for each match, launch the rule's campaign
-- unless the account already has an active/paused campaign of that type or a campaign of this
-- rule launched within cooldown_days; then stamp last_evaluated_at/last_match_count. Returns
-- {rule_id, matched, launched: [campaign ids], skipped: [{client_id, reason}]}.
CREATE OR REPLACE FUNCTION csmcp.retention_rule_run(p_rule_id text, p_actor text DEFAULT 'monitor:retention')
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    r retention_trigger_rules;
    m record;
    launched jsonb := '[]';
    skipped jsonb := '[]';
    n integer := 0;
    v_other text;
BEGIN
    SELECT * INTO r FROM retention_trigger_rules WHERE rule_id = p_rule_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'retention trigger rule % not found', p_rule_id USING ERRCODE = 'P0002';
    END IF;
    IF r.status <> 'active' THEN
        RAISE EXCEPTION 'retention trigger rule % is %; only active rules run', p_rule_id, r.status USING ERRCODE = '22023';
    END IF;
    FOR m IN SELECT * FROM csmcp.retention_trigger_eval(r.trigger_type, r.threshold, r.lookback_days) LOOP
        n := n + 1;
        SELECT c.campaign_id INTO v_other FROM retention_campaigns c
        WHERE c.client_id = m.client_id
          AND ((c.campaign_type = r.campaign_type AND c.status IN ('active', 'paused'))
               OR (c.rule_id = r.rule_id AND c.created_at > now() - make_interval(days => r.cooldown_days)))
        LIMIT 1;
        IF v_other IS NOT NULL THEN
            skipped := skipped || jsonb_build_object('client_id', m.client_id, 'reason', 'campaign ' || v_other || ' is active or within the cooldown');
        ELSE
            launched := launched || to_jsonb(csmcp.retention_launch_campaign(m.client_id, r.campaign_type, r.intervention_level,
                                                                             NULL, NULL, r.rule_id, p_actor));
        END IF;
    END LOOP;
    UPDATE retention_trigger_rules SET last_evaluated_at = now(), last_match_count = n WHERE rule_id = p_rule_id;
    RETURN jsonb_build_object('rule_id', p_rule_id, 'matched', n, 'launched', launched, 'skipped', skipped);
END $$;

-- NPS / CSAT / CES over (p_from, p_to] for one account (p_client_id) or all (NULL).
--   NPS = % promoters (9-10) - % detractors (0-6), 1 decimal; CSAT = mean of csat scores (1-5),
--   CES = mean of ces scores (1-7), 2 decimals; null when there is no response.
-- (retention_satisfaction_scratch: the former SQL, from the responses; retention_satisfaction
-- below answers the same for the portfolio from the per-day counts.)
CREATE OR REPLACE FUNCTION csmcp.retention_satisfaction_scratch(p_client_id text, p_from timestamptz, p_to timestamptz)
RETURNS jsonb LANGUAGE sql STABLE AS $$
    -- (UNION ALL rather than "p_client_id IS NULL OR client_id = p_client_id": one branch is
    -- cut by a one-time filter, the other uses the (client_id, responded_at) index.)
    WITH nr AS (
        SELECT score FROM nps_responses WHERE p_client_id IS NULL AND responded_at > p_from AND responded_at <= p_to
        UNION ALL
        SELECT score FROM nps_responses WHERE client_id = p_client_id AND responded_at > p_from AND responded_at <= p_to
    ), cr AS (
        SELECT survey_type, score FROM csat_responses WHERE p_client_id IS NULL AND responded_at > p_from AND responded_at <= p_to
        UNION ALL
        SELECT survey_type, score FROM csat_responses WHERE client_id = p_client_id AND responded_at > p_from AND responded_at <= p_to
    ), n AS (
        SELECT count(*) AS total, count(*) FILTER (WHERE score >= 9) AS prom, count(*) FILTER (WHERE score BETWEEN 7 AND 8) AS pas,
               count(*) FILTER (WHERE score <= 6) AS detr
        FROM nr
    ), c AS (
        SELECT count(*) FILTER (WHERE survey_type = 'csat') AS csat_n, avg(score) FILTER (WHERE survey_type = 'csat') AS csat,
               count(*) FILTER (WHERE survey_type = 'ces') AS ces_n, avg(score) FILTER (WHERE survey_type = 'ces') AS ces
        FROM cr
    )
    SELECT jsonb_build_object(
        'from', p_from, 'to', p_to,
        'nps', CASE WHEN n.total > 0 THEN round((n.prom - n.detr)::numeric * 100 / n.total, 1) END,
        'nps_responses', n.total, 'promoters', n.prom, 'passives', n.pas, 'detractors', n.detr,
        'promoters_pct', CASE WHEN n.total > 0 THEN round(n.prom::numeric * 100 / n.total, 1) END,
        'passives_pct', CASE WHEN n.total > 0 THEN round(n.pas::numeric * 100 / n.total, 1) END,
        'detractors_pct', CASE WHEN n.total > 0 THEN round(n.detr::numeric * 100 / n.total, 1) END,
        'csat', round(c.csat, 2), 'csat_responses', c.csat_n,
        'ces', round(c.ces, 2), 'ces_responses', c.ces_n)
    FROM n, c
$$;

-- Issue 21 (session 7, helper valuex): the portfolio's figures of (p_from, p_to] from the per-UTC-day
-- counts nps_daily and csat_daily (migration 0156, kept in the writing transaction by triggers on
-- the responses; portfolio/nps_daily.sql, csat_daily.sql) for the whole days strictly inside the
-- period, and from the responses themselves for the two partial days at its ends (an index range
-- each): ~10 ms instead of ~130 ms per period at 100,000 accounts. One account, a period shorter
-- than 2 days and a bulk seed (the day tables are rebuilt at its end) read the responses
-- (retention_satisfaction_scratch). The same figures: the counts and sums are exact, and the mean
-- is the sum over the count as avg() computes it (numeric division of the integer sum by the count).
CREATE OR REPLACE FUNCTION csmcp.retention_satisfaction(p_client_id text, p_from timestamptz, p_to timestamptz)
RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    d0 date := (p_from AT TIME ZONE 'UTC')::date;
    d1 date := (p_to AT TIME ZONE 'UTC')::date;
    b0 timestamptz := (d0 + 1)::timestamp AT TIME ZONE 'UTC';   -- start of the first whole day
    b1 timestamptz := d1::timestamp AT TIME ZONE 'UTC';         -- start of p_to's day (after the last whole one)
    n record;
    c record;
BEGIN
    IF p_client_id IS NOT NULL OR d1 - d0 < 2 OR p_from IS NULL OR p_to IS NULL OR csmcp.portfolio_bulk() THEN
        RETURN csmcp.retention_satisfaction_scratch(p_client_id, p_from, p_to);
    END IF;
    SELECT sum(x.total) AS total, sum(x.prom) AS prom, sum(x.detr) AS detr INTO n FROM (
        SELECT sum(d.responses) AS total, sum(d.promoters) AS prom, sum(d.detractors) AS detr
          FROM nps_daily d WHERE d.day > d0 AND d.day < d1
        UNION ALL
        SELECT count(*), count(*) FILTER (WHERE r.score >= 9), count(*) FILTER (WHERE r.score <= 6)
          FROM nps_responses r WHERE (r.responded_at > p_from AND r.responded_at < b0) OR (r.responded_at >= b1 AND r.responded_at <= p_to)) x;
    SELECT coalesce(sum(x.n) FILTER (WHERE x.t = 'csat'), 0) AS csat_n, sum(x.s) FILTER (WHERE x.t = 'csat') AS csat_s,
           coalesce(sum(x.n) FILTER (WHERE x.t = 'ces'), 0) AS ces_n, sum(x.s) FILTER (WHERE x.t = 'ces') AS ces_s
      INTO c FROM (
        SELECT d.survey_type AS t, d.responses AS n, d.score_sum AS s FROM csat_daily d WHERE d.day > d0 AND d.day < d1
        UNION ALL
        SELECT r.survey_type, count(*), sum(r.score) FROM csat_responses r
         WHERE (r.responded_at > p_from AND r.responded_at < b0) OR (r.responded_at >= b1 AND r.responded_at <= p_to)
         GROUP BY 1) x;
    n.total := coalesce(n.total, 0); n.prom := coalesce(n.prom, 0); n.detr := coalesce(n.detr, 0);
    RETURN jsonb_build_object(
        'from', p_from, 'to', p_to,
        'nps', CASE WHEN n.total > 0 THEN round((n.prom - n.detr)::numeric * 100 / n.total, 1) END,
        'nps_responses', n.total, 'promoters', n.prom, 'passives', n.total - n.prom - n.detr, 'detractors', n.detr,
        'promoters_pct', CASE WHEN n.total > 0 THEN round(n.prom::numeric * 100 / n.total, 1) END,
        'passives_pct', CASE WHEN n.total > 0 THEN round((n.total - n.prom - n.detr)::numeric * 100 / n.total, 1) END,
        'detractors_pct', CASE WHEN n.total > 0 THEN round(n.detr::numeric * 100 / n.total, 1) END,
        'csat', round(CASE WHEN c.csat_n > 0 THEN c.csat_s::numeric / c.csat_n::numeric END, 2), 'csat_responses', c.csat_n,
        'ces', round(CASE WHEN c.ces_n > 0 THEN c.ces_s::numeric / c.ces_n::numeric END, 2), 'ces_responses', c.ces_n);
END $$;
