-- manage_account_hierarchy: set/clear an account's parent (cycles refused), list a parent's
-- children, and roll up a parent's descendants (ARR, seats, ARR-weighted effective health).
CREATE OR REPLACE FUNCTION csmcp.tool_manage_account_hierarchy(args jsonb, principal text)
-- no JIT: at 100,000 accounts the plans' costs pass jit_above_cost and compiling took longer than
-- the query (issue 21: 1.5 s of a hierarchy rollup that runs in 70 ms)
RETURNS jsonb LANGUAGE plpgsql SET jit = off AS $$
DECLARE
    v_action text := csmcp.arg_text(args, 'action', NULL, ARRAY['set_parent', 'clear_parent', 'children', 'rollup']);
    acc accounts := csmcp.require_account(csmcp.arg_text(args, 'client_id', NULL));
    v_parent_id text := csmcp.arg_text(args, 'parent_id', NULL);
    par accounts;
    v_old text;
    v_path text[];
    v_actor text := coalesce(nullif(principal, ''), 'anonymous');
    v_children jsonb;
    v_n integer; v_arr numeric; v_seats bigint; v_health numeric; v_desc integer;
    v_own health_scorecards;
BEGIN
    IF v_action = 'set_parent' AND v_parent_id IS NULL THEN
        PERFORM csmcp.invalid('parent_id: required for set_parent');
    END IF;
    IF v_action <> 'set_parent' AND v_parent_id IS NOT NULL THEN
        PERFORM csmcp.invalid('parent_id: only used with set_parent');
    END IF;
    IF v_action IN ('set_parent', 'clear_parent') THEN
        -- hierarchy writes are serialised: two concurrent set_parent calls cannot close a cycle
        PERFORM pg_advisory_xact_lock(hashtext('csmcp.account_parents'));
        SELECT parent_id INTO v_old FROM account_parents WHERE client_id = acc.client_id;
    END IF;
    IF v_action = 'set_parent' THEN
        par := csmcp.require_account(v_parent_id);
        IF par.client_id = acc.client_id THEN
            RAISE EXCEPTION 'account % cannot be its own parent', acc.client_id USING ERRCODE = 'P0001';
        END IF;
        IF v_old = par.client_id THEN
            RAISE EXCEPTION 'account % already has parent %', acc.client_id, par.client_id USING ERRCODE = 'P0001';
        END IF;
        -- the chain of ancestors of the new parent, the parent first
        WITH RECURSIVE up(id, depth) AS (
            SELECT par.client_id, 0
            UNION ALL
            SELECT p.parent_id, up.depth + 1 FROM up JOIN account_parents p ON p.client_id = up.id
             WHERE up.depth < 1000
        )
        SELECT array_agg(id ORDER BY depth) INTO v_path FROM up;
        IF acc.client_id = ANY (v_path) THEN
            RAISE EXCEPTION 'cycle refused: % is an ancestor of % (% -> %)', acc.client_id, par.client_id,
                  par.client_id, array_to_string(v_path[2:array_position(v_path, acc.client_id)], ' -> ')
                  USING ERRCODE = 'P0001';
        END IF;
        INSERT INTO account_parents (client_id, parent_id, set_by) VALUES (acc.client_id, par.client_id, v_actor)
        ON CONFLICT (client_id) DO UPDATE SET parent_id = EXCLUDED.parent_id, set_by = EXCLUDED.set_by, set_at = now();
        PERFORM csmcp.log_activity(acc.client_id, v_actor, 'set_parent', 'account_hierarchy', acc.client_id,
                                   jsonb_build_object('parent_id', v_old), jsonb_build_object('parent_id', par.client_id));
        RETURN jsonb_build_object('status', 'success', 'action', v_action, 'client_id', acc.client_id,
            'parent_id', par.client_id, 'previous_parent_id', v_old,
            'summary', format('%s is now a child of %s%s', acc.client_id, par.client_id,
                              coalesce(' (was ' || v_old || ')', '')));
    ELSIF v_action = 'clear_parent' THEN
        IF v_old IS NULL THEN
            RAISE EXCEPTION 'account % has no parent', acc.client_id USING ERRCODE = 'P0001';
        END IF;
        DELETE FROM account_parents WHERE client_id = acc.client_id;
        PERFORM csmcp.log_activity(acc.client_id, v_actor, 'clear_parent', 'account_hierarchy', acc.client_id,
                                   jsonb_build_object('parent_id', v_old), jsonb_build_object('parent_id', NULL));
        RETURN jsonb_build_object('status', 'success', 'action', v_action, 'client_id', acc.client_id,
            'parent_id', NULL, 'previous_parent_id', v_old,
            'summary', format('%s no longer has a parent (was %s)', acc.client_id, v_old));
    END IF;
    -- children / rollup
    -- the effective scores by one hash join over the few active overrides (scorecards/_lib.sql),
    -- not a function call per child (issue 21: hundreds of children per parent at 100,000 accounts)
    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'client_id', a.client_id, 'client_name', a.client_name,
               'arr', coalesce(c.contract_value, 0), 'licensed_seats', c.licensed_seats,
               'effective_health_score', coalesce(ov.score, a.health_score),
               'child_count', (SELECT count(*) FROM account_parents g WHERE g.parent_id = a.client_id))
             ORDER BY a.client_id), '[]'::jsonb), count(*)
      INTO v_children, v_n
      FROM account_parents p JOIN accounts a ON a.client_id = p.client_id
      LEFT JOIN contracts c ON c.client_id = a.client_id AND c.status = 'active'
      LEFT JOIN csmcp.active_health_overrides() ov ON ov.client_id = a.client_id
     WHERE p.parent_id = acc.client_id;
    IF v_action = 'children' THEN
        RETURN jsonb_build_object('status', 'success', 'action', v_action, 'client_id', acc.client_id,
            'parent_id', (SELECT parent_id FROM account_parents WHERE client_id = acc.client_id),
            'children', v_children, 'total', v_n,
            'summary', format('%s has %s child account(s)', acc.client_id, v_n));
    END IF;
    IF v_n = 0 THEN
        RAISE EXCEPTION 'account % has no child accounts to roll up', acc.client_id USING ERRCODE = 'P0001';
    END IF;
    WITH RECURSIVE down(id, depth) AS (
        SELECT p.client_id, 1 FROM account_parents p WHERE p.parent_id = acc.client_id
        UNION ALL
        SELECT p.client_id, d.depth + 1 FROM down d JOIN account_parents p ON p.parent_id = d.id WHERE d.depth < 1000
    ), x AS (
        -- each descendant's account and active contract by key (the recursive CTE is estimated at
        -- tens of thousands of rows: hash joins read all of contracts for a few hundred ids)
        SELECT d.id, coalesce(c.contract_value, 0) AS arr, coalesce(c.licensed_seats, 0) AS seats,
               coalesce(ov.score, a.health_score) AS eff
          FROM down d
          LEFT JOIN LATERAL (SELECT y.health_score FROM accounts y WHERE y.client_id = d.id OFFSET 0) a ON true
          LEFT JOIN LATERAL (SELECT k.contract_value, k.licensed_seats FROM contracts k
                              WHERE k.client_id = d.id AND k.status = 'active' OFFSET 0) c ON true
          LEFT JOIN csmcp.active_health_overrides() ov ON ov.client_id = d.id
    )
    SELECT count(*), sum(arr), sum(seats),
           CASE WHEN sum(arr) > 0 THEN round(sum(arr * eff) / sum(arr), 1) ELSE round(avg(eff), 1) END
      INTO v_desc, v_arr, v_seats, v_health FROM x;
    -- a parent scored by a scorecard configured for parents (criteria.hierarchy_role = parent)
    -- rolls up to its own effective score; the children's mean is still reported
    v_own := csmcp.resolve_scorecard(acc.client_id);
    IF v_own.criteria ->> 'hierarchy_role' IS NULL THEN v_own := NULL; END IF;
    RETURN jsonb_build_object('status', 'success', 'action', v_action, 'client_id', acc.client_id,
        'parent_id', (SELECT parent_id FROM account_parents WHERE client_id = acc.client_id),
        'children', v_children, 'total', v_n,
        'rollup', jsonb_build_object('descendants', v_desc, 'arr', v_arr, 'licensed_seats', v_seats,
                                     'health_score', CASE WHEN v_own.scorecard_id IS NOT NULL
                                                          THEN csmcp.effective_health_score(acc.client_id) ELSE v_health END,
                                     'health_method', CASE WHEN v_own.scorecard_id IS NOT NULL THEN 'own_scorecard'
                                                           WHEN v_arr > 0 THEN 'arr_weighted_mean' ELSE 'mean' END,
                                     'children_health_score', v_health,
                                     'scorecard_id', v_own.scorecard_id,
                                     'own_effective_health_score', csmcp.effective_health_score(acc.client_id)),
        'summary', format('%s: %s descendant account(s), ARR %s, %s seats, health %s', acc.client_id, v_desc, v_arr,
                          v_seats, CASE WHEN v_own.scorecard_id IS NOT NULL
                                        THEN format('%s (its own scorecard %s; descendants %s)',
                                                    csmcp.effective_health_score(acc.client_id), v_own.scorecard_id, v_health)
                                        WHEN v_arr > 0 THEN v_health || ' (ARR-weighted)'
                                        ELSE v_health || ' (mean: no ARR)' END));
END $$;
