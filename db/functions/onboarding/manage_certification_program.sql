-- manage_certification_program: list | create | issue | revoke | track over the account's
-- certification programs (required modules per level) and certifications (history kept).
-- Required modules of a level: the account's program for that level when one was created,
-- otherwise every catalogue module of that level.
CREATE OR REPLACE FUNCTION csmcp.onb_required_modules(p_client_id text, p_level text)
RETURNS TABLE (module_id text, name text, passing_score numeric, source text)
LANGUAGE sql STABLE AS $$
    SELECT m.module_id, m.name, m.passing_score, 'program'
    FROM certification_program_modules pm JOIN training_modules m USING (module_id)
    WHERE pm.client_id = p_client_id AND pm.level = p_level
    UNION ALL
    SELECT m.module_id, m.name, m.passing_score, 'catalogue'
    FROM training_modules m
    WHERE m.certification_level = p_level
      AND NOT EXISTS (SELECT 1 FROM certification_programs cp WHERE cp.client_id = p_client_id AND cp.level = p_level)
$$;

CREATE OR REPLACE FUNCTION csmcp.onb_cert_json(c certifications) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object('certification_id', c.certification_id, 'user_email', c.user_email, 'level', c.level,
                              'status', CASE WHEN c.revoked_at IS NULL THEN 'active' ELSE 'revoked' END,
                              'issued_at', c.issued_at, 'issued_by', c.issued_by, 'revoked_at', c.revoked_at,
                              'revoked_by', c.revoked_by, 'revoke_reason', c.revoke_reason, 'evidence', c.evidence)
$$;

CREATE OR REPLACE FUNCTION csmcp.tool_manage_certification_program(args jsonb, principal text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    levels text[] := ARRAY['basic', 'intermediate', 'advanced', 'expert'];
    acc accounts := csmcp.require_account(csmcp.arg_text(args, 'client_id', NULL));
    v_action text := csmcp.arg_text(args, 'action', 'list', ARRAY['list', 'create', 'issue', 'revoke', 'track']);
    v_level text := csmcp.arg_text(args, 'certification_level', NULL, levels);
    v_email text := lower(btrim(csmcp.arg_text(args, 'user_email', NULL)));
    v_cert_id text := csmcp.arg_text(args, 'certification_id', NULL);
    v_reason text := nullif(btrim(csmcp.arg_text(args, 'reason', NULL)), '');
    v_mods jsonb := args -> 'module_ids';
    v_limit integer := csmcp.arg_int(args, 'limit', 50, 1, 1000);
    v_mod_list text[];
    missing text;
    c certifications;
    c_new certifications;
    ev jsonb;
    n_req integer;
    failing text;
    v_id text;
    n integer := 1;
    r record;
    trained integer;
    certified integer;
    v_rate numeric;
    recs jsonb := '[]';
BEGIN
    IF v_email IS NOT NULL AND NOT csmcp.onb_email_ok(v_email) THEN
        PERFORM csmcp.invalid('user_email is not a valid email address');
    END IF;
    IF v_cert_id IS NOT NULL AND (v_cert_id !~ '^cert_(basic|intermediate|advanced|expert)_[a-z0-9_]+$' OR length(v_cert_id) > 300) THEN
        PERFORM csmcp.invalid('certification_id must look like cert_<level>_<user>_<n>');
    END IF;

    IF v_action = 'create' THEN
        IF v_level IS NULL THEN PERFORM csmcp.invalid('certification_level is required for action create'); END IF;
        IF v_mods IS NULL OR v_mods = 'null'::jsonb THEN
            SELECT array_agg(module_id ORDER BY module_id) INTO v_mod_list FROM training_modules WHERE certification_level = v_level;
            IF v_mod_list IS NULL THEN
                PERFORM csmcp.invalid(format('module_ids: the catalogue has no %s module; list the modules this level requires', v_level));
            END IF;
        ELSE
            IF jsonb_typeof(v_mods) <> 'array' OR jsonb_array_length(v_mods) = 0 THEN
                PERFORM csmcp.invalid('module_ids must be a non-empty list of module ids');
            END IF;
            SELECT array_agg(DISTINCT m ORDER BY m) INTO v_mod_list FROM jsonb_array_elements_text(v_mods) m;
            SELECT string_agg(m, ', ' ORDER BY m) INTO missing FROM unnest(v_mod_list) m
            WHERE NOT EXISTS (SELECT 1 FROM training_modules t WHERE t.module_id = m);
            IF missing IS NOT NULL THEN
                RAISE EXCEPTION 'training module(s) not found in the catalogue: %', missing USING ERRCODE = 'P0002';
            END IF;
        END IF;
        BEGIN
            INSERT INTO certification_programs (client_id, level, created_by)
            VALUES (acc.client_id, v_level, coalesce(nullif(principal, ''), 'anonymous'));
        EXCEPTION WHEN unique_violation THEN
            RAISE EXCEPTION 'client % already has a % certification program (modules: %)', acc.client_id, v_level,
                (SELECT string_agg(module_id, ', ' ORDER BY module_id) FROM certification_program_modules
                 WHERE client_id = acc.client_id AND level = v_level) USING ERRCODE = 'P0001';
        END;
        INSERT INTO certification_program_modules (client_id, level, module_id)
        SELECT acc.client_id, v_level, m FROM unnest(v_mod_list) m;
        PERFORM csmcp.log_activity(acc.client_id, principal, 'manage_certification_program.create', 'certification_program',
                                   acc.client_id || '/' || v_level, NULL,
                                   jsonb_build_object('level', v_level, 'module_ids', to_jsonb(v_mod_list)));
        RETURN jsonb_build_object(
            'action', 'create', 'status', 'created', 'client_id', acc.client_id,
            'summary', format('%s certification program for %s: %s required module(s) (%s).', initcap(v_level), acc.client_name,
                              cardinality(v_mod_list), array_to_string(v_mod_list, ', ')),
            'result', jsonb_build_object('level', v_level, 'required_modules',
                (SELECT jsonb_agg(jsonb_build_object('module_id', module_id, 'name', name, 'passing_score', passing_score) ORDER BY module_id)
                 FROM csmcp.onb_required_modules(acc.client_id, v_level))));

    ELSIF v_action = 'issue' THEN
        IF v_level IS NULL OR v_email IS NULL THEN
            PERFORM csmcp.invalid('certification_level and user_email are required for action issue');
        END IF;
        SELECT count(*),
               jsonb_agg(jsonb_build_object('module_id', rm.module_id, 'name', rm.name, 'passing_score', rm.passing_score,
                                            'best_score', b.best_score, 'passed', coalesce(b.passed, false), 'session_id', b.session_id)
                         ORDER BY rm.module_id),
               string_agg(CASE WHEN NOT coalesce(b.passed, false)
                               THEN rm.module_id || CASE WHEN b.best_score IS NULL THEN ' (no assessed attendance)'
                                                         ELSE ' (best score ' || b.best_score || ' < ' || rm.passing_score || ')' END END,
                          ', ' ORDER BY rm.module_id)
        INTO n_req, ev, failing
        FROM csmcp.onb_required_modules(acc.client_id, v_level) rm
        LEFT JOIN LATERAL csmcp.onb_best_score(acc.client_id, v_email, rm.module_id) b ON true;
        IF n_req = 0 THEN
            PERFORM csmcp.invalid(format('certification_level: no module is required for %s (the catalogue has none and no program was created)', v_level));
        END IF;
        IF failing IS NOT NULL THEN
            RAISE EXCEPTION '% has not passed every % module: %', v_email, v_level, failing USING ERRCODE = 'P0001';
        END IF;
        v_id := 'cert_' || v_level || '_' || regexp_replace(v_email, '[^a-z0-9]+', '_', 'g') || '_' || extract(epoch FROM now())::bigint;
        WHILE EXISTS (SELECT 1 FROM certifications WHERE certification_id = v_id || CASE WHEN n > 1 THEN '_' || n ELSE '' END) LOOP
            n := n + 1;
        END LOOP;
        IF n > 1 THEN v_id := v_id || '_' || n; END IF;
        BEGIN
            INSERT INTO certifications (certification_id, client_id, user_email, level, issued_by, evidence)
            VALUES (v_id, acc.client_id, v_email, v_level, coalesce(nullif(principal, ''), 'anonymous'), ev)
            RETURNING * INTO c_new;
        EXCEPTION WHEN unique_violation THEN
            SELECT * INTO c FROM certifications
            WHERE client_id = acc.client_id AND lower(user_email) = v_email AND level = v_level AND revoked_at IS NULL;
            RAISE EXCEPTION '% already holds an active % certification (%), issued %', v_email, v_level,
                coalesce(c.certification_id, 'issued concurrently'), coalesce(to_char(c.issued_at AT TIME ZONE 'UTC', 'YYYY-MM-DD'), 'just now')
                USING ERRCODE = 'P0001';
        END;
        PERFORM csmcp.log_activity(acc.client_id, principal, 'manage_certification_program.issue', 'certification', v_id,
                                   NULL, csmcp.onb_cert_json(c_new));
        RETURN jsonb_build_object(
            'action', 'issue', 'status', 'issued', 'client_id', acc.client_id,
            'summary', format('%s certification %s issued to %s: passed all %s required module(s).', initcap(v_level), v_id, v_email, n_req),
            'result', csmcp.onb_cert_json(c_new));

    ELSIF v_action = 'revoke' THEN
        IF v_cert_id IS NOT NULL THEN
            SELECT * INTO c FROM certifications WHERE certification_id = v_cert_id AND client_id = acc.client_id FOR UPDATE;
            IF NOT FOUND THEN
                RAISE EXCEPTION 'certification % not found for client %', v_cert_id, acc.client_id USING ERRCODE = 'P0002';
            END IF;
        ELSIF v_level IS NOT NULL AND v_email IS NOT NULL THEN
            SELECT * INTO c FROM certifications
            WHERE client_id = acc.client_id AND lower(user_email) = v_email AND level = v_level AND revoked_at IS NULL FOR UPDATE;
            IF NOT FOUND THEN
                RAISE EXCEPTION 'no active % certification for % at client %', v_level, v_email, acc.client_id USING ERRCODE = 'P0002';
            END IF;
        ELSE
            PERFORM csmcp.invalid('revoke needs certification_id, or certification_level and user_email');
        END IF;
        IF c.revoked_at IS NOT NULL THEN
            RAISE EXCEPTION 'certification % was already revoked on %', c.certification_id,
                to_char(c.revoked_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') USING ERRCODE = 'P0001';
        END IF;
        UPDATE certifications SET revoked_at = greatest(now(), issued_at), revoked_by = coalesce(nullif(principal, ''), 'anonymous'),
                                  revoke_reason = v_reason
        WHERE certification_id = c.certification_id RETURNING * INTO c_new;
        PERFORM csmcp.log_activity(acc.client_id, principal, 'manage_certification_program.revoke', 'certification',
                                   c.certification_id, csmcp.onb_cert_json(c), csmcp.onb_cert_json(c_new));
        RETURN jsonb_build_object(
            'action', 'revoke', 'status', 'revoked', 'client_id', acc.client_id,
            'summary', format('Certification %s (%s, %s) revoked; it stays in the history.', c.certification_id, c.level, c.user_email),
            'result', csmcp.onb_cert_json(c_new));

    ELSIF v_action = 'track' THEN
        -- trained = distinct attendees (attended) of the account's sessions; certified = distinct
        -- users with at least one active certification.
        SELECT count(DISTINCT lower(a.email)) INTO trained
        FROM training_sessions s JOIN training_attendance a USING (session_id)
        WHERE s.client_id = acc.client_id AND a.attended;
        SELECT count(DISTINCT lower(user_email)) INTO certified
        FROM certifications WHERE client_id = acc.client_id AND revoked_at IS NULL;
        v_rate := csmcp.onb_rate(certified, trained);
        IF v_rate < 0.5 THEN
            recs := recs || to_jsonb(format('Certification rate %s is below 0.5: invite the %s trained but uncertified users to finish their level',
                                            v_rate, trained - certified));
        ELSIF v_rate > 0.8 THEN
            recs := recs || to_jsonb(format('Certification rate %s is above 0.8: offer the next level to certified users', v_rate));
        END IF;
        RETURN jsonb_build_object(
            'action', 'track', 'status', 'ok', 'client_id', acc.client_id,
            'summary', CASE WHEN trained = 0 THEN format('%s: no trained users yet, so no certification rate.', acc.client_name)
                            ELSE format('%s: %s of %s trained users certified (rate %s).', acc.client_name, certified, trained, v_rate) END,
            'result', jsonb_build_object(
                'trained_users', trained, 'certified_users', certified, 'certification_rate', v_rate,
                'by_level', (SELECT jsonb_agg(jsonb_build_object(
                                 'level', l,
                                 'active', (SELECT count(*) FROM certifications WHERE client_id = acc.client_id AND level = l AND revoked_at IS NULL),
                                 'revoked', (SELECT count(*) FROM certifications WHERE client_id = acc.client_id AND level = l AND revoked_at IS NOT NULL),
                                 'required_modules', (SELECT count(*) FROM csmcp.onb_required_modules(acc.client_id, l)))
                                 ORDER BY o)
                             FROM unnest(levels) WITH ORDINALITY u(l, o))),
            'recommendations', recs);

    ELSE -- list
        RETURN jsonb_build_object(
            'action', 'list', 'status', 'ok', 'client_id', acc.client_id,
            'summary', format('%s: %s active and %s revoked certification(s); %s level program(s) defined.', acc.client_name,
                              (SELECT count(*) FROM certifications WHERE client_id = acc.client_id AND revoked_at IS NULL),
                              (SELECT count(*) FROM certifications WHERE client_id = acc.client_id AND revoked_at IS NOT NULL),
                              (SELECT count(*) FROM certification_programs WHERE client_id = acc.client_id)),
            'result', jsonb_build_object(
                'programs', (SELECT jsonb_agg(jsonb_build_object(
                                 'level', l,
                                 'source', coalesce((SELECT min(source) FROM csmcp.onb_required_modules(acc.client_id, l)), 'none'),
                                 'required_modules', (SELECT coalesce(jsonb_agg(module_id ORDER BY module_id), '[]')
                                                      FROM csmcp.onb_required_modules(acc.client_id, l))) ORDER BY o)
                             FROM unnest(levels) WITH ORDINALITY u(l, o)
                             WHERE v_level IS NULL OR l = v_level),
                'total_certifications', (SELECT count(*) FROM certifications c1
                                         WHERE c1.client_id = acc.client_id AND (v_level IS NULL OR c1.level = v_level)
                                           AND (v_email IS NULL OR lower(c1.user_email) = v_email)),
                'limit', v_limit,
                'certifications', (SELECT coalesce(jsonb_agg(csmcp.onb_cert_json(c1) ORDER BY c1.issued_at DESC, c1.certification_id), '[]')
                                   FROM (SELECT * FROM certifications c0
                                         WHERE c0.client_id = acc.client_id AND (v_level IS NULL OR c0.level = v_level)
                                           AND (v_email IS NULL OR lower(c0.user_email) = v_email)
                                         ORDER BY c0.issued_at DESC, c0.certification_id LIMIT v_limit) c1)));
    END IF;
END $$;
