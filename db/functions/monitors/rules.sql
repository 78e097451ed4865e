-- monitors/rules.sql - the rule of each of the seven monitors (docs/monitors.md has each rule,
-- its parameters and an example alert). csmcp.mon_eval_<monitor>(params) returns the conditions
-- that hold now; the engine (_lib.sql) turns them into alerts. csmcp.mon_side_<monitor>(params,
-- actor), when defined, is the monitor's side work in the same transaction (stored trigger rules).
-- Severity per condition is stated with each rule; "live" accounts are those not churned.

-- churn_risk_monitor: the effective health score (an active manual override, else the computed
-- score; issue 24) < health_score_threshold → kind critical_risk (severity
-- critical) when alert_on_critical and the risk level is critical (score < 50), else at_risk
-- (high). Plus the onboarding automation trigger health_score_change registered with this
-- monitor: for an in_progress/delayed plan whose account's last two health calculations differ by
-- >= 10 points → onboarding_health_change (high on a drop, low on a rise), subject the plan.
CREATE OR REPLACE FUNCTION csmcp.mon_eval_churn_risk_monitor(p jsonb)
RETURNS TABLE (kind text, subject text, client_id text, severity text, message text, detail jsonb)
LANGUAGE sql STABLE AS $$
    WITH prm AS (
        SELECT (csmcp.mon_p(p, 'churn_risk_monitor', 'health_score_threshold'))::text::integer AS t,
               (csmcp.mon_p(p, 'churn_risk_monitor', 'alert_on_critical'))::text::boolean AS crit
    )
    SELECT CASE WHEN prm.crit AND csmcp.risk_level(e.hs) = 'critical' THEN 'critical_risk' ELSE 'at_risk' END,
           a.client_id, a.client_id,
           CASE WHEN prm.crit AND csmcp.risk_level(e.hs) = 'critical' THEN 'critical' ELSE 'high' END,
           format('%s (%s): health score %s is below %s%s', a.client_name, a.client_id, e.hs, prm.t,
                  CASE WHEN prm.crit AND csmcp.risk_level(e.hs) = 'critical' THEN ' (critical churn risk)' ELSE '' END),
           jsonb_build_object('health_score', e.hs, 'threshold', prm.t, 'risk_level', csmcp.risk_level(e.hs),
                              'health_trend', a.health_trend)
    FROM accounts a LEFT JOIN csmcp.active_health_overrides() ov ON ov.client_id = a.client_id
         CROSS JOIN LATERAL (SELECT coalesce(ov.score, a.health_score) AS hs) e, prm
    WHERE csmcp.mon_live(a) AND e.hs < prm.t
    UNION ALL
    SELECT 'onboarding_health_change', pl.plan_id, pl.client_id,
           CASE WHEN h.cur < h.prev THEN 'high' ELSE 'low' END,
           format('Onboarding plan %s (%s): health score changed from %s to %s', pl.plan_id, pl.client_id, h.prev, h.cur),
           jsonb_build_object('plan_id', pl.plan_id, 'previous_score', h.prev, 'current_score', h.cur, 'change', h.cur - h.prev,
                              'trigger', 'health_score_change')
    FROM onboarding_automation_triggers tr
    JOIN onboarding_plans pl ON pl.plan_id = tr.plan_id AND pl.status IN ('in_progress', 'delayed')
    CROSS JOIN LATERAL (
        SELECT max(s.overall_score) FILTER (WHERE s.rn = 1) AS cur, max(s.overall_score) FILTER (WHERE s.rn = 2) AS prev
        FROM (SELECT hs.overall_score, row_number() OVER (ORDER BY hs.calculated_at DESC, hs.score_id DESC) AS rn
              FROM health_scores hs WHERE hs.client_id = pl.client_id ORDER BY hs.calculated_at DESC, hs.score_id DESC LIMIT 2) s
    ) h
    WHERE tr.trigger_type = 'health_score_change' AND tr.monitor = 'churn_risk_monitor'
      AND h.prev IS NOT NULL AND abs(h.cur - h.prev) >= 10
$$;

-- Side work of churn_risk_monitor: every due retention trigger rule (status active and
-- last_evaluated_at NULL or <= now - check_interval_hours) runs once through
-- csmcp.retention_rule_run (retention's contract); each launched campaign queues one Slack
-- notification (alert_csm) in the outbox. (Communication workflows are evaluated by the
-- communication tick, csmcp.comm_tick, every monitor tick: communication/tick.sql.)
CREATE OR REPLACE FUNCTION csmcp.mon_side_churn_risk_monitor(p jsonb, p_actor text) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    rr record;
    out jsonb;
    runs jsonb := '[]';
    c text;
BEGIN
    FOR rr IN SELECT rule_id FROM retention_trigger_rules
              WHERE status = 'active' AND (last_evaluated_at IS NULL
                                           OR last_evaluated_at <= now() - make_interval(hours => check_interval_hours))
              ORDER BY rule_id FOR UPDATE SKIP LOCKED LOOP
        out := csmcp.retention_rule_run(rr.rule_id, p_actor);
        FOR c IN SELECT jsonb_array_elements_text(out->'launched') LOOP
            PERFORM csmcp.outbox_enqueue('slack',
                jsonb_build_object('text', format('Retention rule %s launched campaign %s', rr.rule_id, c),
                                   'rule_id', rr.rule_id, 'campaign_id', c, 'action', 'alert_csm'),
                'campaign:' || c || ':alert_csm', p_actor, NULL, c);
        END LOOP;
        runs := runs || jsonb_build_object('rule_id', rr.rule_id, 'matched', out->'matched',
                                           'launched', out->'launched', 'skipped', jsonb_array_length(out->'skipped'));
    END LOOP;
    RETURN jsonb_build_object('retention_rules_run', runs);
END $$;

-- usage_drop_alerts: W = check_window_days, T = drop_threshold_percent. Mean daily active users
-- over the W UTC days ending today (cur) and the W days before (prev), days without usage = 0;
-- prev > 0 and (prev - cur) / prev * 100 >= T → usage_drop (high when the drop >= 50 %, else
-- medium); the drop is reported to 1 decimal.
CREATE OR REPLACE FUNCTION csmcp.mon_eval_usage_drop_alerts(p jsonb)
RETURNS TABLE (kind text, subject text, client_id text, severity text, message text, detail jsonb)
LANGUAGE sql STABLE AS $$
    WITH prm AS (
        SELECT (csmcp.mon_p(p, 'usage_drop_alerts', 'drop_threshold_percent'))::text::numeric AS t,
               (csmcp.mon_p(p, 'usage_drop_alerts', 'check_window_days'))::text::integer AS w, csmcp.today() AS d
    ), u AS (
        SELECT ud.client_id,
               sum(ud.active_users) FILTER (WHERE ud.day > prm.d - prm.w)::numeric / prm.w AS cur,
               sum(ud.active_users) FILTER (WHERE ud.day <= prm.d - prm.w)::numeric / prm.w AS prev
        FROM usage_daily ud, prm
        WHERE ud.day > prm.d - 2 * prm.w AND ud.day <= prm.d
        GROUP BY ud.client_id, prm.d, prm.w
    )
    SELECT 'usage_drop', a.client_id, a.client_id,
           CASE WHEN (u.prev - coalesce(u.cur, 0)) * 100 / u.prev >= 50 THEN 'high' ELSE 'medium' END,
           format('%s (%s): mean daily active users fell %s%% (%s -> %s) over the last %s days', a.client_name, a.client_id,
                  round((u.prev - coalesce(u.cur, 0)) * 100 / u.prev, 1), round(u.prev, 2), round(coalesce(u.cur, 0), 2), prm.w),
           jsonb_build_object('previous_mean_dau', round(u.prev, 2), 'current_mean_dau', round(coalesce(u.cur, 0), 2),
                              'drop_percent', round((u.prev - coalesce(u.cur, 0)) * 100 / u.prev, 1),
                              'threshold_percent', prm.t, 'window_days', prm.w)
    FROM u JOIN accounts a ON a.client_id = u.client_id, prm
    WHERE csmcp.mon_live(a) AND u.prev > 0 AND (u.prev - coalesce(u.cur, 0)) * 100 / u.prev >= prm.t
$$;

-- onboarding_progress: D = days_stuck_threshold, C = completion_threshold_percent, plans in
-- progress or delayed of live accounts.
--   milestone_overdue (subject the milestone): not completed/skipped, due_date <= today - D
--     (high when >= 2D days late, else medium);
--   behind_plan (subject the plan): today >= start + (target - start) / 2 (whole days) and
--     completed milestones / all milestones * 100 < C (medium);
-- and the automation triggers registered with this monitor (onboarding_automation_triggers):
--   task_overdue → onboarding_task_overdue per open task with due_date < today (medium);
--   blocker_identified → onboarding_blocker per blocked milestone or task (high);
--   milestone_completion → onboarding_milestone_completed per milestone completed on or after
--     the trigger's registration date (low);
--   integration_success → onboarding_integration_success when M3 (seq 3) is completed (low);
--   usage_milestone_reached → onboarding_usage_milestone when daily active users reached 50 % of
--     the active contract's licensed seats on a day since the plan started (low).
-- (training_completion is evaluated by deliver_training_session when results are recorded.)
CREATE OR REPLACE FUNCTION csmcp.mon_eval_onboarding_progress(p jsonb)
RETURNS TABLE (kind text, subject text, client_id text, severity text, message text, detail jsonb)
LANGUAGE sql STABLE AS $$
    WITH prm AS (
        SELECT (csmcp.mon_p(p, 'onboarding_progress', 'days_stuck_threshold'))::text::integer AS d,
               (csmcp.mon_p(p, 'onboarding_progress', 'completion_threshold_percent'))::text::numeric AS c,
               csmcp.today() AS t
    ), pl AS (
        SELECT pl.* FROM onboarding_plans pl JOIN accounts a ON a.client_id = pl.client_id
        WHERE pl.status IN ('in_progress', 'delayed') AND csmcp.mon_live(a)
    ), trg AS (
        SELECT tr.plan_id, tr.trigger_type, tr.registered_at FROM onboarding_automation_triggers tr
        WHERE tr.monitor = 'onboarding_progress' AND tr.plan_id IN (SELECT plan_id FROM pl)
    )
    SELECT 'milestone_overdue', m.milestone_id, pl.client_id,
           CASE WHEN prm.t - m.due_date >= 2 * prm.d THEN 'high' ELSE 'medium' END,
           format('Onboarding plan %s (%s): milestone %s "%s" is %s days past its due date %s', pl.plan_id, pl.client_id,
                  m.milestone_id, m.name, prm.t - m.due_date, m.due_date),
           jsonb_build_object('plan_id', pl.plan_id, 'milestone_id', m.milestone_id, 'due_date', m.due_date,
                              'days_overdue', prm.t - m.due_date, 'status', m.status)
    FROM pl JOIN onboarding_milestones m ON m.plan_id = pl.plan_id, prm
    WHERE m.status NOT IN ('completed', 'skipped') AND m.due_date IS NOT NULL AND prm.t - m.due_date >= prm.d
    UNION ALL
    SELECT 'behind_plan', pl.plan_id, pl.client_id, 'medium',
           format('Onboarding plan %s (%s): %s%% of milestones completed at or past the midpoint %s (threshold %s%%)',
                  pl.plan_id, pl.client_id, round(s.done * 100.0 / s.total, 1), pl.start_date + (pl.target_date - pl.start_date) / 2, prm.c),
           jsonb_build_object('plan_id', pl.plan_id, 'completion_percent', round(s.done * 100.0 / s.total, 1),
                              'midpoint', pl.start_date + (pl.target_date - pl.start_date) / 2, 'threshold_percent', prm.c)
    FROM pl CROSS JOIN prm
    CROSS JOIN LATERAL (SELECT count(*) AS total, count(*) FILTER (WHERE m.status = 'completed') AS done
                        FROM onboarding_milestones m WHERE m.plan_id = pl.plan_id) s
    WHERE s.total > 0 AND prm.t >= pl.start_date + (pl.target_date - pl.start_date) / 2
      AND s.done * 100.0 / s.total < prm.c
    UNION ALL
    SELECT 'onboarding_task_overdue', 'task:' || k.task_id, pl.client_id, 'medium',
           format('Onboarding plan %s (%s): task "%s" is past its due date %s', pl.plan_id, pl.client_id, k.title, k.due_date),
           jsonb_build_object('plan_id', pl.plan_id, 'task_id', k.task_id, 'milestone_id', m.milestone_id, 'due_date', k.due_date,
                              'trigger', 'task_overdue')
    FROM trg JOIN pl ON pl.plan_id = trg.plan_id JOIN onboarding_milestones m ON m.plan_id = pl.plan_id
    JOIN onboarding_tasks k ON k.milestone_id = m.milestone_id, prm
    WHERE trg.trigger_type = 'task_overdue' AND k.status = 'open' AND k.due_date < prm.t
    UNION ALL
    SELECT 'onboarding_blocker', b.subj, pl.client_id, 'high',
           format('Onboarding plan %s (%s): %s is blocked', pl.plan_id, pl.client_id, b.what),
           jsonb_build_object('plan_id', pl.plan_id, 'blocked', b.subj, 'trigger', 'blocker_identified')
    FROM trg JOIN pl ON pl.plan_id = trg.plan_id
    CROSS JOIN LATERAL (
        SELECT 'milestone:' || m.milestone_id AS subj, format('milestone %s "%s"', m.milestone_id, m.name) AS what
        FROM onboarding_milestones m WHERE m.plan_id = pl.plan_id AND m.status = 'blocked'
        UNION ALL
        SELECT 'task:' || k.task_id, format('task %s "%s"', k.task_id, k.title)
        FROM onboarding_milestones m JOIN onboarding_tasks k ON k.milestone_id = m.milestone_id
        WHERE m.plan_id = pl.plan_id AND k.status = 'blocked'
    ) b
    WHERE trg.trigger_type = 'blocker_identified'
    UNION ALL
    SELECT 'onboarding_milestone_completed', m.milestone_id, pl.client_id, 'low',
           format('Onboarding plan %s (%s): milestone %s "%s" completed on %s', pl.plan_id, pl.client_id, m.milestone_id,
                  m.name, m.completed_on),
           jsonb_build_object('plan_id', pl.plan_id, 'milestone_id', m.milestone_id, 'completed_on', m.completed_on,
                              'trigger', 'milestone_completion')
    FROM trg JOIN pl ON pl.plan_id = trg.plan_id JOIN onboarding_milestones m ON m.plan_id = pl.plan_id
    WHERE trg.trigger_type = 'milestone_completion' AND m.status = 'completed'
      AND m.completed_on >= (trg.registered_at AT TIME ZONE 'UTC')::date
    UNION ALL
    SELECT 'onboarding_integration_success', pl.plan_id, pl.client_id, 'low',
           format('Onboarding plan %s (%s): integration milestone %s completed on %s', pl.plan_id, pl.client_id,
                  m.milestone_id, m.completed_on),
           jsonb_build_object('plan_id', pl.plan_id, 'milestone_id', m.milestone_id, 'completed_on', m.completed_on,
                              'trigger', 'integration_success')
    FROM trg JOIN pl ON pl.plan_id = trg.plan_id JOIN onboarding_milestones m ON m.plan_id = pl.plan_id AND m.seq = 3
    WHERE trg.trigger_type = 'integration_success' AND m.status = 'completed'
    UNION ALL
    SELECT 'onboarding_usage_milestone', pl.plan_id, pl.client_id, 'low',
           format('Onboarding plan %s (%s): daily active users reached %s of %s licensed seats on %s', pl.plan_id,
                  pl.client_id, u.active_users, c.licensed_seats, u.day),
           jsonb_build_object('plan_id', pl.plan_id, 'day', u.day, 'active_users', u.active_users,
                              'licensed_seats', c.licensed_seats, 'trigger', 'usage_milestone_reached')
    FROM trg JOIN pl ON pl.plan_id = trg.plan_id
    JOIN contracts c ON c.client_id = pl.client_id AND c.status = 'active' AND c.licensed_seats IS NOT NULL
    CROSS JOIN LATERAL (SELECT ud.day, ud.active_users FROM usage_daily ud
                        WHERE ud.client_id = pl.client_id AND ud.day >= pl.start_date
                          AND ud.active_users * 2 >= c.licensed_seats
                        ORDER BY ud.day LIMIT 1) u
    WHERE trg.trigger_type = 'usage_milestone_reached'
$$;

-- nps_csat_monitor: N = nps_alert_threshold, S = csat_alert_threshold, L = lookback_days. For
-- each live account, its latest NPS response of the last L days with score <= N → nps_detractor
-- (high when the score <= 3, else medium); its latest CSAT response (survey_type csat) of the
-- last L days with score <= S → low_csat (high when 1, else medium). A newer better response
-- resolves the alert.
CREATE OR REPLACE FUNCTION csmcp.mon_eval_nps_csat_monitor(p jsonb)
RETURNS TABLE (kind text, subject text, client_id text, severity text, message text, detail jsonb)
LANGUAGE sql STABLE AS $$
    WITH prm AS (
        SELECT (csmcp.mon_p(p, 'nps_csat_monitor', 'nps_alert_threshold'))::text::integer AS n,
               (csmcp.mon_p(p, 'nps_csat_monitor', 'csat_alert_threshold'))::text::integer AS s,
               (csmcp.mon_p(p, 'nps_csat_monitor', 'lookback_days'))::text::integer AS l
    ), nps AS (
        SELECT DISTINCT ON (r.client_id) r.client_id, r.response_id, r.score, r.responded_at
        FROM nps_responses r, prm WHERE r.responded_at > now() - make_interval(days => prm.l)
        ORDER BY r.client_id, r.responded_at DESC, r.response_id DESC
    ), csat AS (
        SELECT DISTINCT ON (r.client_id) r.client_id, r.response_id, r.score, r.responded_at
        FROM csat_responses r, prm WHERE r.survey_type = 'csat' AND r.responded_at > now() - make_interval(days => prm.l)
        ORDER BY r.client_id, r.responded_at DESC, r.response_id DESC
    )
    SELECT 'nps_detractor', a.client_id, a.client_id, CASE WHEN x.score <= 3 THEN 'high' ELSE 'medium' END,
           format('%s (%s): latest NPS response %s scored %s (detractor threshold %s)', a.client_name, a.client_id,
                  x.response_id, x.score, prm.n),
           jsonb_build_object('response_id', x.response_id, 'score', x.score, 'responded_at', x.responded_at, 'threshold', prm.n)
    FROM nps x JOIN accounts a ON a.client_id = x.client_id, prm
    WHERE csmcp.mon_live(a) AND x.score <= prm.n
    UNION ALL
    SELECT 'low_csat', a.client_id, a.client_id, CASE WHEN x.score = 1 THEN 'high' ELSE 'medium' END,
           format('%s (%s): latest CSAT response %s scored %s of 5 (threshold %s)', a.client_name, a.client_id,
                  x.response_id, x.score, prm.s),
           jsonb_build_object('response_id', x.response_id, 'score', x.score, 'responded_at', x.responded_at, 'threshold', prm.s)
    FROM csat x JOIN accounts a ON a.client_id = x.client_id, prm
    WHERE csmcp.mon_live(a) AND x.score <= prm.s
$$;

-- support_sla_tracker: open tickets (not resolved or closed) under the support SLA rule
-- (csmcp.sup_ticket_sla_state: a running clock is breached when elapsed > target).
--   sla_breached when the ticket's SLA state is breached and sla_breach_alert (critical for
--   P0/P1, else high);
--   sla_breaching otherwise when a running clock (first response while unanswered, resolution)
--   is due within hours_until_breach hours (high for P0/P1, else medium).
CREATE OR REPLACE FUNCTION csmcp.mon_eval_support_sla_tracker(p jsonb)
RETURNS TABLE (kind text, subject text, client_id text, severity text, message text, detail jsonb)
LANGUAGE sql STABLE AS $$
    WITH prm AS (
        SELECT (csmcp.mon_p(p, 'support_sla_tracker', 'sla_breach_alert'))::text::boolean AS b,
               (csmcp.mon_p(p, 'support_sla_tracker', 'hours_until_breach'))::text::numeric AS h, now() AS ts
    ), tk AS (
        SELECT t.*, csmcp.sup_ticket_sla_state(t, prm.ts) AS state,
               least(CASE WHEN t.first_response_at IS NULL THEN t.created_at + make_interval(mins => t.sla_first_response_minutes) END,
                     t.created_at + make_interval(mins => t.sla_resolution_minutes)) AS next_due
        FROM support_tickets t, prm WHERE t.status NOT IN ('resolved', 'closed')
    )
    SELECT CASE WHEN tk.state = 'breached' THEN 'sla_breached' ELSE 'sla_breaching' END, tk.ticket_id, tk.client_id,
           CASE WHEN tk.priority IN ('P0', 'P1') THEN CASE WHEN tk.state = 'breached' THEN 'critical' ELSE 'high' END
                ELSE CASE WHEN tk.state = 'breached' THEN 'high' ELSE 'medium' END END,
           CASE WHEN tk.state = 'breached' THEN format('Ticket %s (%s, %s): SLA breached', tk.ticket_id, tk.priority, tk.client_id)
                ELSE format('Ticket %s (%s, %s): SLA due at %s, within %s h', tk.ticket_id, tk.priority, tk.client_id,
                            to_char(tk.next_due AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), prm.h) END,
           jsonb_build_object('ticket_id', tk.ticket_id, 'priority', tk.priority, 'status', tk.status, 'sla_state', tk.state,
                              'next_due_at', tk.next_due)
    FROM tk, prm
    WHERE (tk.state = 'breached' AND prm.b)
       OR (tk.state <> 'breached' AND tk.next_due > prm.ts AND tk.next_due <= prm.ts + make_interval(secs => prm.h * 3600))
$$;

-- upsell_detector: U = usage_threshold_percent, H = health_score_min. Utilisation = mean daily
-- active users over the 30 UTC days ending today / licensed seats of the active contract
-- (csmcp.exp_utilisation, the expansion rule); live accounts with utilisation * 100 >= U and
-- health_score >= H → upsell_candidate (low).
CREATE OR REPLACE FUNCTION csmcp.mon_eval_upsell_detector(p jsonb)
RETURNS TABLE (kind text, subject text, client_id text, severity text, message text, detail jsonb)
LANGUAGE sql STABLE AS $$
    WITH prm AS (
        SELECT (csmcp.mon_p(p, 'upsell_detector', 'usage_threshold_percent'))::text::numeric AS u,
               (csmcp.mon_p(p, 'upsell_detector', 'health_score_min'))::text::integer AS h
    )
    SELECT 'upsell_candidate', a.client_id, a.client_id, 'low',
           format('%s (%s): %s%% of %s licensed seats in use, health score %s', a.client_name, a.client_id,
                  round(x.utilisation * 100, 1), x.seats, a.health_score),
           jsonb_build_object('utilisation_percent', round(x.utilisation * 100, 1), 'licensed_seats', x.seats,
                              'mean_daily_active_users', round(x.avg_dau, 2), 'health_score', a.health_score,
                              'contract_id', x.contract_id, 'arr', x.arr)
    FROM csmcp.exp_utilisation(NULL, csmcp.today()) x JOIN accounts a ON a.client_id = x.client_id, prm
    WHERE csmcp.mon_live(a) AND x.utilisation * 100 >= prm.u AND a.health_score >= prm.h
$$;

-- retention_analyzer: cohort = quarter (YYYY-Qn) of an account's first contract start. An account
-- is in the measured population once first_start + 12 months <= today; it is retained unless it is
-- churned (status or lifecycle stage churned) with its churn date (first lifecycle transition to
-- churned, else its updated_at) before first_start + 12 months. Cohorts with >= cohort_size_min
-- measured accounts and retained / measured < retention_rate_threshold → low_retention, subject
-- cohort:YYYY-Qn, no account (high when the rate is more than 0.10 below the threshold, else
-- medium); the rate is reported to 3 decimals.
CREATE OR REPLACE FUNCTION csmcp.mon_eval_retention_analyzer(p jsonb)
RETURNS TABLE (kind text, subject text, client_id text, severity text, message text, detail jsonb)
LANGUAGE sql STABLE AS $$
    WITH prm AS (
        SELECT (csmcp.mon_p(p, 'retention_analyzer', 'cohort_size_min'))::text::integer AS n,
               (csmcp.mon_p(p, 'retention_analyzer', 'retention_rate_threshold'))::text::numeric AS r, csmcp.today() AS t
    ), f AS (
        SELECT a.client_id, min(c.start_date) AS first_start,
               CASE WHEN a.status = 'churned' OR a.lifecycle_stage = 'churned' THEN
                    coalesce((SELECT min(lt.changed_at) FROM lifecycle_transitions lt
                              WHERE lt.client_id = a.client_id AND lt.to_stage = 'churned'), a.updated_at)::date END AS churned_on
        FROM accounts a JOIN contracts c ON c.client_id = a.client_id
        GROUP BY a.client_id
    ), k AS (
        SELECT to_char(f.first_start, 'YYYY-"Q"Q') AS cohort, count(*) AS measured,
               count(*) FILTER (WHERE f.churned_on IS NULL OR f.churned_on >= (f.first_start + interval '12 months')::date) AS retained
        FROM f, prm WHERE (f.first_start + interval '12 months')::date <= prm.t
        GROUP BY 1
    )
    SELECT 'low_retention', 'cohort:' || k.cohort, NULL::text,
           CASE WHEN k.retained::numeric / k.measured < prm.r - 0.10 THEN 'high' ELSE 'medium' END,
           format('Cohort %s: 12-month logo retention %s (%s of %s accounts) is below %s', k.cohort,
                  round(k.retained::numeric / k.measured, 3), k.retained, k.measured, prm.r),
           jsonb_build_object('cohort', k.cohort, 'accounts', k.measured, 'retained', k.retained,
                              'retention_rate', round(k.retained::numeric / k.measured, 3), 'threshold', prm.r)
    FROM k, prm
    WHERE k.measured >= prm.n AND k.retained::numeric / k.measured < prm.r
$$;
