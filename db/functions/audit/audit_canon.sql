-- Canonical text of a row: every field as "<octet length>:<value>", so no choice of field
-- contents can make two different rows hash alike. csmcpctl audit verify recomputes it in C.
CREATE OR REPLACE FUNCTION csmcp.audit_canon(p_id bigint, p_us bigint, p_principal text, p_method text,
                                  p_tool text, p_args text, p_outcome text, p_latency integer,
                                  p_detail text, p_prev text)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT string_agg(octet_length(f)::text || ':' || f, '' ORDER BY n)
      FROM unnest(ARRAY[p_id::text, p_us::text, p_principal, p_method, coalesce(p_tool, ''),
                        p_args, p_outcome, p_latency::text, coalesce(p_detail, ''), p_prev])
           WITH ORDINALITY AS t(f, n)
$$;
