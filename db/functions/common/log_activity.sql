-- Records one create/update a tool made (who, what, old and new values); returns its id.
CREATE OR REPLACE FUNCTION csmcp.log_activity(p_client_id text, p_actor text, p_action text, p_entity text,
                                              p_entity_id text, p_old jsonb, p_new jsonb)
RETURNS bigint LANGUAGE sql AS $$
    INSERT INTO activity_log (client_id, actor, action, entity, entity_id, old_values, new_values)
    VALUES (p_client_id, coalesce(nullif(p_actor, ''), 'anonymous'), p_action, p_entity, p_entity_id, p_old, p_new)
    RETURNING activity_id
$$;
