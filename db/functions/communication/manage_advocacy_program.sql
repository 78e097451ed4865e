-- manage_advocacy_program: advocates, their contributions and points (reference §3.8).
-- Points of a contribution = round(base points of its type x the multiplier of the advocate's tier
-- before it); award_points adds the given points as they are. The tier follows the total:
-- champion >= 5000, platinum >= 3000, gold >= 1500, silver >= 500, else bronze.
CREATE OR REPLACE FUNCTION csmcp.advocacy_base_points(p_type text) RETURNS integer
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_type WHEN 'case_study' THEN 500 WHEN 'reference' THEN 250 WHEN 'review' THEN 300
                       WHEN 'testimonial' THEN 150 WHEN 'speaking_engagement' THEN 1000 WHEN 'referral' THEN 400
                       ELSE 100 END
$$;
CREATE OR REPLACE FUNCTION csmcp.advocacy_multiplier(p_tier text) RETURNS numeric
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_tier WHEN 'silver' THEN 1.25 WHEN 'gold' THEN 1.5 WHEN 'platinum' THEN 1.75 WHEN 'champion' THEN 2.0
                       ELSE 1.0 END
$$;
CREATE OR REPLACE FUNCTION csmcp.advocacy_tier(p_points integer) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN p_points >= 5000 THEN 'champion' WHEN p_points >= 3000 THEN 'platinum'
                WHEN p_points >= 1500 THEN 'gold' WHEN p_points >= 500 THEN 'silver' ELSE 'bronze' END
$$;
CREATE OR REPLACE FUNCTION csmcp.advocacy_next(p_points integer) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN p_points >= 5000 THEN jsonb_build_object('tier', NULL, 'threshold', NULL, 'points_needed', 0)
                ELSE (SELECT jsonb_build_object('tier', t, 'threshold', th, 'points_needed', th - p_points)
                      FROM (VALUES ('silver', 500), ('gold', 1500), ('platinum', 3000), ('champion', 5000)) v(t, th)
                      WHERE th > p_points ORDER BY th LIMIT 1) END
$$;

CREATE OR REPLACE FUNCTION csmcp.advocate_json(a advocates) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'advocate_id', a.advocate_id, 'client_id', a.client_id, 'contact_name', a.contact_name,
        'contact_email', a.contact_email, 'contact_title', a.contact_title, 'tier', a.tier,
        'tier_multiplier', csmcp.advocacy_multiplier(a.tier), 'total_points', a.total_points,
        'next_tier', csmcp.advocacy_next(a.total_points), 'enrolled_at', a.enrolled_at, 'updated_at', a.updated_at,
        'contribution_count', (SELECT count(*) FROM advocate_contributions c WHERE c.advocate_id = a.advocate_id))
$$;

CREATE OR REPLACE FUNCTION csmcp.tool_manage_advocacy_program(args jsonb, principal text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_action text := csmcp.arg_text(args, 'action', NULL, ARRAY['enroll_advocate', 'get_advocate_profile', 'list_advocates',
                                                                'track_contribution', 'award_points', 'get_program_analytics']);
    v_client text := csmcp.arg_text(args, 'client_id', NULL);
    v_name text := nullif(btrim(csmcp.arg_text(args, 'contact_name', NULL)), '');
    v_email text := lower(csmcp.arg_text(args, 'contact_email', NULL));
    v_title text := nullif(btrim(csmcp.arg_text(args, 'contact_title', NULL)), '');
    v_tier text := csmcp.arg_text(args, 'tier', NULL);
    v_id text := csmcp.arg_text(args, 'advocate_id', NULL);
    v_type text := csmcp.arg_text(args, 'contribution_type', NULL);
    v_details text := csmcp.arg_text(args, 'contribution_details', NULL);
    v_points integer := csmcp.arg_int(args, 'points', NULL, 1, 100000);
    v_limit integer := csmcp.arg_int(args, 'limit', 50, 1, 1000);
    v_offset integer := csmcp.arg_int(args, 'offset', 0, 0, 1000000);
    acc accounts;
    a advocates;
    old_a advocates;
    ctb advocate_contributions;
    v_mult numeric;
    v_base integer;
    v_award integer;
    v_items jsonb;
    v_total integer;
    v_stats jsonb;
BEGIN
    IF v_action = 'enroll_advocate' THEN
        acc := csmcp.require_account(v_client);
        IF v_name IS NULL THEN PERFORM csmcp.invalid('contact_name: required for enroll_advocate'); END IF;
        IF v_email IS NULL THEN PERFORM csmcp.invalid('contact_email: required for enroll_advocate'); END IF;
        IF v_tier IS NOT NULL THEN
            PERFORM csmcp.invalid('tier: an advocate starts at bronze; the tier follows the total points');
        END IF;
        INSERT INTO advocates (advocate_id, client_id, contact_name, contact_email, contact_title)
        VALUES (csmcp.comm_id('advocate', right(v_client, 20)), v_client, v_name, v_email, v_title)
        ON CONFLICT (client_id, contact_email) DO NOTHING
        RETURNING * INTO a;
        IF NOT FOUND THEN
            SELECT * INTO a FROM advocates WHERE client_id = v_client AND contact_email = v_email;
            RAISE EXCEPTION '% is already enrolled for % as %', v_email, v_client, a.advocate_id USING ERRCODE = 'P0001';
        END IF;
        PERFORM csmcp.log_activity(v_client, principal, 'create', 'advocate', a.advocate_id, NULL, to_jsonb(a));
        RETURN jsonb_build_object('action', v_action, 'advocate', csmcp.advocate_json(a), 'contributions', '[]'::jsonb,
                                  'summary', format('Enrolled %s (%s) of %s as advocate %s at tier bronze',
                                                    v_name, v_email, acc.client_name, a.advocate_id));
    END IF;

    IF v_action IN ('get_advocate_profile', 'track_contribution', 'award_points') THEN
        IF v_id IS NULL THEN PERFORM csmcp.invalid('advocate_id: required for ' || v_action); END IF;
        IF v_action = 'get_advocate_profile' THEN
            SELECT * INTO a FROM advocates WHERE advocate_id = v_id;
        ELSE
            SELECT * INTO a FROM advocates WHERE advocate_id = v_id FOR UPDATE;
        END IF;
        IF NOT FOUND THEN RAISE EXCEPTION 'advocate % not found', v_id USING ERRCODE = 'P0002'; END IF;
    END IF;

    IF v_action IN ('track_contribution', 'award_points') THEN
        old_a := a;
        IF v_action = 'track_contribution' THEN
            IF v_type IS NULL THEN PERFORM csmcp.invalid('contribution_type: required for track_contribution'); END IF;
            IF v_points IS NOT NULL THEN
                PERFORM csmcp.invalid('points: only for award_points; a contribution''s points follow its type and the tier');
            END IF;
            v_base := csmcp.advocacy_base_points(v_type);
            v_mult := csmcp.advocacy_multiplier(a.tier);
            v_award := round(v_base * v_mult)::integer;
        ELSE
            IF v_points IS NULL THEN PERFORM csmcp.invalid('points: required for award_points (a positive integer)'); END IF;
            IF v_type IS NOT NULL THEN PERFORM csmcp.invalid('contribution_type: only for track_contribution'); END IF;
            v_type := 'points_award';
            v_base := v_points;
            v_mult := 1.0;
            v_award := v_points;
        END IF;
        UPDATE advocates SET total_points = total_points + v_award,
                             tier = csmcp.advocacy_tier(total_points + v_award), updated_at = now()
        WHERE advocate_id = a.advocate_id RETURNING * INTO a;
        INSERT INTO advocate_contributions (advocate_id, contribution_type, details, points, base_points, multiplier,
                                            tier_before, tier_after, recorded_by)
        VALUES (a.advocate_id, v_type, v_details, v_award, v_base, v_mult, old_a.tier, a.tier, principal)
        RETURNING * INTO ctb;
        PERFORM csmcp.log_activity(a.client_id, principal, 'update', 'advocate', a.advocate_id,
                                   jsonb_build_object('total_points', old_a.total_points, 'tier', old_a.tier),
                                   jsonb_build_object('total_points', a.total_points, 'tier', a.tier,
                                                      'contribution_id', ctb.contribution_id, 'points', v_award));
        RETURN jsonb_build_object(
            'action', v_action, 'advocate', csmcp.advocate_json(a),
            'contribution', jsonb_build_object('contribution_id', ctb.contribution_id, 'contribution_type', v_type,
                                               'details', v_details, 'base_points', v_base, 'multiplier', v_mult,
                                               'points', v_award, 'tier_before', old_a.tier, 'tier_after', a.tier,
                                               'occurred_at', ctb.occurred_at),
            'promoted', a.tier <> old_a.tier,
            'summary', format('%s: +%s points (%s) -> %s total, tier %s%s', a.advocate_id, v_award,
                              CASE WHEN v_action = 'award_points' THEN 'award' ELSE format('%s %s x %s', v_type, v_base, v_mult) END,
                              a.total_points, a.tier,
                              CASE WHEN a.tier <> old_a.tier THEN format(' (promoted from %s)', old_a.tier) ELSE '' END));
    END IF;

    IF v_action = 'get_advocate_profile' THEN
        SELECT coalesce(jsonb_agg(jsonb_build_object(
                   'contribution_id', c.contribution_id, 'contribution_type', c.contribution_type, 'details', c.details,
                   'base_points', c.base_points, 'multiplier', c.multiplier, 'points', c.points,
                   'tier_before', c.tier_before, 'tier_after', c.tier_after, 'occurred_at', c.occurred_at)
                   ORDER BY c.occurred_at DESC, c.contribution_id DESC), '[]')
          INTO v_items
          FROM (SELECT * FROM advocate_contributions c WHERE c.advocate_id = a.advocate_id
                ORDER BY c.occurred_at DESC, c.contribution_id DESC LIMIT v_limit OFFSET v_offset) c;
        RETURN jsonb_build_object('action', v_action, 'advocate', csmcp.advocate_json(a), 'contributions', v_items,
                                  'summary', format('%s (%s): %s points, tier %s, %s contribution(s)', a.contact_name,
                                                    a.advocate_id, a.total_points, a.tier,
                                                    (SELECT count(*) FROM advocate_contributions c WHERE c.advocate_id = a.advocate_id)));
    END IF;

    IF v_tier IS NOT NULL AND v_tier NOT IN ('bronze', 'silver', 'gold', 'platinum', 'champion') THEN
        PERFORM csmcp.invalid('tier: one of bronze, silver, gold, platinum, champion');
    END IF;
    IF v_client IS NOT NULL THEN acc := csmcp.require_account(v_client); END IF;

    IF v_action = 'list_advocates' THEN
        SELECT count(*) INTO v_total FROM advocates x
        WHERE (v_client IS NULL OR x.client_id = v_client) AND (v_tier IS NULL OR x.tier = v_tier);
        SELECT coalesce(jsonb_agg(csmcp.advocate_json(x) ORDER BY x.total_points DESC, x.advocate_id), '[]') INTO v_items
        FROM (SELECT * FROM advocates x
              WHERE (v_client IS NULL OR x.client_id = v_client) AND (v_tier IS NULL OR x.tier = v_tier)
              ORDER BY x.total_points DESC, x.advocate_id LIMIT v_limit OFFSET v_offset) x;
        RETURN jsonb_build_object('action', v_action, 'advocates', v_items, 'total_count', v_total,
                                  'returned_count', jsonb_array_length(v_items), 'limit', v_limit, 'offset', v_offset,
                                  'summary', format('%s advocate(s)%s%s', v_total,
                                                    coalesce(' of ' || v_client, ''), coalesce(' at tier ' || v_tier, '')));
    END IF;

    -- get_program_analytics (all advocates, or one account's)
    SELECT jsonb_build_object(
               'advocates', count(*),
               'total_points', coalesce(sum(x.total_points), 0),
               'by_tier', jsonb_build_object('bronze', count(*) FILTER (WHERE x.tier = 'bronze'),
                                             'silver', count(*) FILTER (WHERE x.tier = 'silver'),
                                             'gold', count(*) FILTER (WHERE x.tier = 'gold'),
                                             'platinum', count(*) FILTER (WHERE x.tier = 'platinum'),
                                             'champion', count(*) FILTER (WHERE x.tier = 'champion')))
      INTO v_stats FROM advocates x WHERE v_client IS NULL OR x.client_id = v_client;
    SELECT coalesce(jsonb_object_agg(t, jsonb_build_object('count', coalesce(n, 0), 'points', coalesce(p, 0))), '{}')
      INTO v_items
      FROM unnest(ARRAY['case_study', 'reference', 'review', 'testimonial', 'speaking_engagement', 'referral',
                        'points_award']) t
      LEFT JOIN (SELECT c.contribution_type, count(*) n, sum(c.points) p
                 FROM advocate_contributions c JOIN advocates x USING (advocate_id)
                 WHERE v_client IS NULL OR x.client_id = v_client GROUP BY 1) s ON s.contribution_type = t;
    RETURN jsonb_build_object(
        'action', v_action, 'client_id', v_client, 'program', v_stats, 'contributions_by_type', v_items,
        'top_advocates', (SELECT coalesce(jsonb_agg(jsonb_build_object('advocate_id', x.advocate_id, 'contact_name', x.contact_name,
                                                                       'client_id', x.client_id, 'tier', x.tier,
                                                                       'total_points', x.total_points)
                                                    ORDER BY x.total_points DESC, x.advocate_id), '[]')
                          FROM (SELECT * FROM advocates x WHERE v_client IS NULL OR x.client_id = v_client
                                ORDER BY x.total_points DESC, x.advocate_id LIMIT 5) x),
        'summary', format('%s advocate(s), %s points in total; champion %s, platinum %s, gold %s, silver %s, bronze %s',
                          v_stats ->> 'advocates', v_stats ->> 'total_points', v_stats #>> '{by_tier,champion}',
                          v_stats #>> '{by_tier,platinum}', v_stats #>> '{by_tier,gold}', v_stats #>> '{by_tier,silver}',
                          v_stats #>> '{by_tier,bronze}'));
END $$;
