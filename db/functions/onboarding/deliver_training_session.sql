-- deliver_training_session: records a training session of a catalogue module for an account
-- (or, with session_id, adds results to one recorded before) and each attendee's attendance,
-- assessment score, rating and engagement; the session's rates come from its attendance rows.
CREATE OR REPLACE FUNCTION csmcp.tool_deliver_training_session(args jsonb, principal text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    acc accounts := csmcp.require_account(csmcp.arg_text(args, 'client_id', NULL));
    v_mod_id text := csmcp.arg_text(args, 'training_module_id', NULL);
    v_sid text := csmcp.arg_text(args, 'session_id', NULL);
    v_format text := csmcp.arg_text(args, 'session_format', 'live_webinar',
                                    ARRAY['live_webinar', 'self_paced', 'one_on_one', 'workshop', 'video', 'documentation']);
    v_dur integer := csmcp.arg_int(args, 'duration_minutes', 90, 15, 480);
    v_rec boolean := csmcp.arg_bool(args, 'recording_enabled', true);
    v_date_txt text := csmcp.arg_text(args, 'session_date', NULL);
    v_emails jsonb := coalesce(nullif(args -> 'attendee_emails', 'null'::jsonb), '[]');
    v_att jsonb := coalesce(nullif(args -> 'attendees', 'null'::jsonb), '[]');
    v_at timestamptz;
    md training_modules;
    s training_sessions;
    is_new boolean := v_sid IS NULL;
    x jsonb;
    e text;
    seen text[] := '{}';
    old_rows jsonb;
    new_rows jsonb;
    mt record;
    recs jsonb := '[]';
    v_eff text;
BEGIN
    IF v_mod_id IS NULL OR v_mod_id !~ '^[A-Za-z0-9_.:-]{1,100}$' THEN
        PERFORM csmcp.invalid('training_module_id must be a module id from the catalogue (letters, digits, _ . : -)');
    END IF;
    SELECT * INTO md FROM training_modules WHERE module_id = v_mod_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'training module % not found in the catalogue', v_mod_id USING ERRCODE = 'P0002';
    END IF;
    IF jsonb_typeof(v_emails) <> 'array' OR jsonb_typeof(v_att) <> 'array' THEN
        PERFORM csmcp.invalid('attendee_emails and attendees must be lists');
    END IF;
    IF jsonb_array_length(v_emails) + jsonb_array_length(v_att) > 500 THEN
        PERFORM csmcp.invalid('at most 500 attendees per call');
    END IF;
    IF v_date_txt IS NOT NULL THEN
        IF v_date_txt !~ '^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2})?Z?)?$' THEN
            PERFORM csmcp.invalid('session_date must be YYYY-MM-DD HH:MM (UTC)');
        END IF;
        BEGIN
            v_at := (replace(rtrim(v_date_txt, 'Z'), 'T', ' '))::timestamp AT TIME ZONE 'UTC';
        EXCEPTION WHEN others THEN
            PERFORM csmcp.invalid('session_date is not a valid date and time: ' || v_date_txt);
        END;
        IF v_at < now() - interval '2 years' OR v_at > now() + interval '2 years' THEN
            PERFORM csmcp.invalid('session_date must be within two years of now');
        END IF;
    END IF;

    IF is_new THEN
        INSERT INTO training_sessions (session_id, client_id, module_id, session_format, scheduled_at, duration_minutes,
                                       recording_enabled, status)
        VALUES ('train_session_' || nextval('training_session_seq'), acc.client_id, md.module_id, v_format,
                coalesce(v_at, date_trunc('minute', now())), v_dur, v_rec,
                CASE WHEN coalesce(v_at, now()) > now() THEN 'scheduled' ELSE 'completed' END)
        RETURNING * INTO s;
    ELSE
        IF v_sid !~ '^train_session_[0-9]{1,18}$' THEN PERFORM csmcp.invalid('session_id must look like train_session_<n>'); END IF;
        SELECT * INTO s FROM training_sessions WHERE session_id = v_sid AND client_id = acc.client_id FOR UPDATE;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'training session % not found for client %', v_sid, acc.client_id USING ERRCODE = 'P0002';
        END IF;
        IF s.module_id <> md.module_id THEN
            PERFORM csmcp.invalid(format('training_module_id: session %s is a session of module %s', s.session_id, s.module_id));
        END IF;
        IF s.status = 'cancelled' THEN
            RAISE EXCEPTION 'training session % is cancelled: no attendance can be recorded', s.session_id USING ERRCODE = 'P0001';
        END IF;
        IF v_at IS NOT NULL AND v_at <> s.scheduled_at THEN
            PERFORM csmcp.invalid(format('session_date: session %s is scheduled at %s', s.session_id,
                                         to_char(s.scheduled_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI')));
        END IF;
        IF s.status = 'scheduled' AND s.scheduled_at <= now() THEN
            UPDATE training_sessions SET status = 'completed' WHERE session_id = s.session_id RETURNING * INTO s;
        END IF;
    END IF;

    SELECT coalesce(jsonb_agg(to_jsonb(a) ORDER BY email), '[]') INTO old_rows
    FROM training_attendance a WHERE session_id = s.session_id;

    -- Results first: each entry of attendees; then invitations without results.
    FOR x IN SELECT value FROM jsonb_array_elements(v_att) LOOP
        IF jsonb_typeof(x) <> 'object' OR jsonb_typeof(x -> 'email') IS DISTINCT FROM 'string' THEN
            PERFORM csmcp.invalid('attendees entries must be objects with an email');
        END IF;
        e := lower(btrim(x ->> 'email'));
        IF NOT csmcp.onb_email_ok(e) THEN PERFORM csmcp.invalid('attendees: not a valid email address: ' || (x ->> 'email')); END IF;
        IF e = ANY (seen) THEN PERFORM csmcp.invalid('attendees: ' || e || ' is listed twice'); END IF;
        seen := seen || e;
        IF s.status = 'scheduled' THEN
            RAISE EXCEPTION 'training session % is scheduled for %: results can be recorded once it has taken place',
                s.session_id, to_char(s.scheduled_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') USING ERRCODE = 'P0001';
        END IF;
        DECLARE
            v_attended boolean := csmcp.arg_bool(x, 'attended', true);
            v_score numeric := csmcp.arg_num(x, 'assessment_score', NULL, 0, 1);
            v_rating numeric := csmcp.arg_num(x, 'rating', NULL, 1, 5);
            v_eng numeric := csmcp.arg_num(x, 'engagement', NULL, 0, 1);
        BEGIN
            IF NOT v_attended AND (v_score IS NOT NULL OR v_rating IS NOT NULL OR v_eng IS NOT NULL) THEN
                PERFORM csmcp.invalid('attendees: ' || e || ' did not attend, so has no score, rating or engagement');
            END IF;
            IF v_score <> round(v_score, 3) OR v_eng <> round(v_eng, 3) OR v_rating <> round(v_rating, 1) THEN
                PERFORM csmcp.invalid('attendees: ' || e || ': assessment_score and engagement have at most 3 decimals, rating 1');
            END IF;
            INSERT INTO training_attendance (session_id, email, attended, score, passed, rating, engagement, recorded_at)
            VALUES (s.session_id, e, v_attended, v_score, CASE WHEN v_score IS NOT NULL THEN v_score >= md.passing_score END,
                    v_rating, v_eng, now())
            ON CONFLICT (session_id, email) DO UPDATE
            SET attended = EXCLUDED.attended, score = EXCLUDED.score, passed = EXCLUDED.passed, rating = EXCLUDED.rating,
                engagement = EXCLUDED.engagement, recorded_at = now();
        END;
    END LOOP;
    FOR x IN SELECT value FROM jsonb_array_elements(v_emails) LOOP
        IF jsonb_typeof(x) <> 'string' OR NOT csmcp.onb_email_ok(lower(btrim(x #>> '{}'))) THEN
            PERFORM csmcp.invalid('attendee_emails: not a valid email address: ' || (x #>> '{}'));
        END IF;
        INSERT INTO training_attendance (session_id, email) VALUES (s.session_id, lower(btrim(x #>> '{}')))
        ON CONFLICT (session_id, email) DO NOTHING;
    END LOOP;

    SELECT coalesce(jsonb_agg(to_jsonb(a) ORDER BY email), '[]') INTO new_rows
    FROM training_attendance a WHERE session_id = s.session_id;

    SELECT count(*) AS invited, count(*) FILTER (WHERE attended) AS attended,
           count(score) AS assessed, count(*) FILTER (WHERE passed) AS passed,
           round(avg(score), 3) AS avg_score, round(avg(rating), 2) AS avg_rating, round(avg(engagement), 3) AS avg_eng
    INTO mt FROM training_attendance WHERE session_id = s.session_id;

    IF s.status = 'completed' THEN
        IF csmcp.onb_rate(mt.attended, mt.invited) < 0.8 THEN
            recs := recs || to_jsonb(format('Attendance %s is below 0.8: send the recording%s and reschedule for the %s who missed it',
                                            csmcp.onb_rate(mt.attended, mt.invited),
                                            CASE WHEN s.recording_enabled THEN '' ELSE ' (none was made: enable recording next time)' END,
                                            mt.invited - mt.attended));
        END IF;
        IF csmcp.onb_rate(mt.passed, mt.assessed) < 0.85 THEN
            recs := recs || to_jsonb(format('Pass rate %s is below 0.85: offer a review session to the %s attendees below the passing score %s',
                                            csmcp.onb_rate(mt.passed, mt.assessed), mt.assessed - mt.passed, md.passing_score));
        END IF;
        IF mt.avg_eng < 0.7 THEN
            recs := recs || to_jsonb(format('Engagement %s is below 0.7: add hands-on exercises or split into smaller groups', mt.avg_eng));
        END IF;
        IF mt.avg_rating < 4.0 THEN
            recs := recs || to_jsonb(format('Mean rating %s is below 4.0: review the attendees'' feedback on content and pace', mt.avg_rating));
        END IF;
    END IF;
    v_eff := CASE WHEN mt.avg_eng IS NULL THEN NULL WHEN mt.avg_eng > 0.8 THEN 'high' WHEN mt.avg_eng >= 0.7 THEN 'medium' ELSE 'low' END;

    PERFORM csmcp.log_activity(acc.client_id, principal, 'deliver_training_session', 'training_session', s.session_id,
        CASE WHEN is_new THEN NULL ELSE jsonb_build_object('attendance', old_rows) END,
        to_jsonb(s) || jsonb_build_object('attendance', new_rows));

    RETURN jsonb_build_object(
        'status', CASE WHEN is_new THEN 'recorded' ELSE 'updated' END,
        'summary', CASE WHEN s.status = 'completed' THEN
                       format('%s session %s (%s) for %s: %s of %s attended, %s of %s assessed passed (passing score %s), mean rating %s.',
                              md.name, s.session_id, to_char(s.scheduled_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'), acc.client_name,
                              mt.attended, mt.invited, mt.passed, mt.assessed, md.passing_score, coalesce(mt.avg_rating::text, 'none'))
                   ELSE format('%s session %s scheduled for %s UTC for %s with %s invitees.', md.name, s.session_id,
                               to_char(s.scheduled_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'), acc.client_name, mt.invited) END,
        'training_session', jsonb_build_object(
            'session_id', s.session_id, 'client_id', acc.client_id, 'module_id', s.module_id, 'session_format', s.session_format,
            'session_date', to_char(s.scheduled_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
            'duration_minutes', s.duration_minutes, 'recording_enabled', s.recording_enabled, 'status', s.status),
        'training_module', jsonb_build_object(
            'module_id', md.module_id, 'name', md.name, 'description', md.description, 'format', md.format,
            'certification_level', md.certification_level, 'duration_minutes', md.duration_minutes,
            'passing_score', md.passing_score),
        'attendees', (SELECT coalesce(jsonb_agg(jsonb_build_object('email', email, 'attended', attended, 'assessment_score', score,
                                                                   'passed', passed, 'rating', rating, 'engagement', engagement)
                                                ORDER BY email), '[]')
                      FROM training_attendance WHERE session_id = s.session_id),
        'session_metrics', jsonb_build_object(
            'invited', mt.invited, 'attended', mt.attended, 'assessed', mt.assessed, 'passed', mt.passed,
            'attendance_rate', CASE WHEN s.status = 'completed' THEN csmcp.onb_rate(mt.attended, mt.invited) END,
            'completion_rate', csmcp.onb_rate(mt.assessed, mt.attended),
            'pass_rate', csmcp.onb_rate(mt.passed, mt.assessed),
            'average_score', mt.avg_score, 'average_rating', mt.avg_rating, 'average_engagement', mt.avg_eng,
            'effectiveness', v_eff),
        'recommendations', recs);
END $$;
