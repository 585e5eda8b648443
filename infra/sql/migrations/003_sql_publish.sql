-- Publishing from SQL: cablecar.publish() is the one publishing path (the HTTP publish calls it
-- too), callable inside any transaction of the database; cablecar.broadcast_changes() turns a
-- table's row changes into messages. A message exists, and is dispatched at commit, if and only if
-- the transaction that published it commits.
--
-- Refusals are errors with their own SQLSTATE (class CC, "cablecar"), which messageStore maps to
-- the HTTP API's codes:
--   CC001 invalid channel name                             → 400 invalid_channel
--   CC002 the frame a subscriber would receive is > 128 KB → 413 payload_too_large
--   CC003 idempotency key reused with different data       → 422 idempotency_key_reused
--   CC004 idempotency key empty or over 200 characters     → 400 invalid_body
--   CC005 broadcast_changes used wrongly (no channel template, a placeholder naming no column,
--         not an AFTER … FOR EACH ROW trigger)
--   22004 (null_value_not_allowed) data is SQL NULL (JSON null is 'null'::json)

-- Channel names: the rule of CHANNEL_NAME_PATTERN in functions/lib/protocol/protocol.ts
-- (test/unit/sqlPublish.test.ts checks that both accept the same names).
CREATE FUNCTION cablecar.is_channel_name(name text) RETURNS boolean
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, cablecar, pg_temp AS $$
  SELECT name IS NOT NULL AND name ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$'
$$;

-- The size of the frame fan-out sends for this message, with seq, id and timestamp at their widest:
-- the arithmetic of outboundFrameBytes in functions/lib/protocol/protocol.ts (the test checks that
-- both agree). Only for valid channel names, which need no escaping in JSON. `data` is counted as
-- written; fan-out re-serialises it, which never makes JSON longer except for numbers written in
-- exponent form (1e20 goes out as 100000000000000000000).
CREATE FUNCTION cablecar.frame_bytes(channel text, data json) RETURNS integer
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, cablecar, pg_temp AS $$
  SELECT octet_length('{"type":"message","channel":"","seq":9007199254740991,"id":"00000000-0000-0000-0000-000000000000","data":,"publishedAt":"2000-01-01T00:00:00.000Z"}')
       + octet_length(channel) + octet_length(data::text)
$$;

-- API Gateway's cap on one WebSocket message (MAX_OUTBOUND_FRAME_BYTES).
CREATE FUNCTION cablecar.max_frame_bytes() RETURNS integer
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, cablecar, pg_temp AS $$ SELECT 131072 $$;

-- The message already published with this key on this channel, if any. The same data (as JSON
-- values: key order and spacing aside) is a retry and gets the first message; other data is refused.
CREATE FUNCTION cablecar.published_with_key(channel text, data json, idempotency_key text)
RETURNS TABLE(id uuid, seq bigint)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, cablecar, pg_temp AS $$
DECLARE
  earlier record;
  same boolean;
BEGIN
  SELECT m.id, m.seq, m.data INTO earlier
  FROM cablecar.messages m WHERE m.channel = published_with_key.channel AND m.idempotency_key = published_with_key.idempotency_key;
  IF NOT FOUND THEN
    RETURN;
  END IF;
  same := earlier.data::text = data::text;
  IF NOT same THEN
    BEGIN
      same := earlier.data::jsonb = data::jsonb;
    EXCEPTION WHEN OTHERS THEN
      same := false; -- not representable as jsonb (\u0000): only the identical text counts as the same
    END;
  END IF;
  IF NOT same THEN
    RAISE EXCEPTION 'idempotency key "%" was already used on channel "%" with different data (message seq %)',
      idempotency_key, channel, earlier.seq
      USING ERRCODE = 'CC003', HINT = 'Use a new key for a new message; a retry must send the same data.';
  END IF;
  id := earlier.id;
  seq := earlier.seq;
  RETURN NEXT;
END
$$;

CREATE FUNCTION cablecar.publish(channel text, data json, idempotency_key text DEFAULT NULL)
RETURNS TABLE(id uuid, seq bigint)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, cablecar, pg_temp AS $$
DECLARE
  frame integer;
  next_seq bigint;
BEGIN
  IF NOT cablecar.is_channel_name(channel) THEN
    RAISE EXCEPTION 'invalid channel name %: channel must be 1-128 characters of letters, digits, "_", "-", ".", ":", starting with a letter or digit',
      coalesce(to_json(left(channel, 200))::text, 'NULL')
      USING ERRCODE = 'CC001';
  END IF;
  IF data IS NULL THEN
    RAISE EXCEPTION 'data must not be SQL NULL (publish the JSON value null as ''null''::json)' USING ERRCODE = '22004';
  END IF;
  IF idempotency_key IS NOT NULL AND length(idempotency_key) NOT BETWEEN 1 AND 200 THEN
    RAISE EXCEPTION 'idempotency key must be 1-200 characters' USING ERRCODE = 'CC004';
  END IF;
  frame := cablecar.frame_bytes(channel, data);
  IF frame > cablecar.max_frame_bytes() THEN
    RAISE EXCEPTION 'the message frame would be % bytes; WebSocket messages are limited to % bytes', frame, cablecar.max_frame_bytes()
      USING ERRCODE = 'CC002';
  END IF;

  -- The channel's row lock serialises its publishers until this transaction ends: seq is taken in
  -- commit order, a rollback (of the transaction or a savepoint) gives its seq back, so seq has no
  -- gaps and no duplicates.
  INSERT INTO cablecar.channels AS c (name, last_seq) VALUES (channel, 0) ON CONFLICT (name) DO NOTHING;
  PERFORM FROM cablecar.channels c WHERE c.name = publish.channel FOR UPDATE;

  IF idempotency_key IS NOT NULL THEN
    -- Looked up under the lock, so a publisher with the same key that committed while this one
    -- waited is seen, and two cannot both store.
    RETURN QUERY SELECT * FROM cablecar.published_with_key(channel, data, idempotency_key);
    IF FOUND THEN
      RETURN;
    END IF;
  END IF;

  UPDATE cablecar.channels c SET last_seq = c.last_seq + 1 WHERE c.name = publish.channel RETURNING c.last_seq INTO next_seq;
  RETURN QUERY
    INSERT INTO cablecar.messages AS m (channel, seq, data, idempotency_key)
    VALUES (publish.channel, next_seq, publish.data, publish.idempotency_key)
    RETURNING m.id, m.seq;
END
$$;

-- A row as a JSON object in column order, without the excluded columns (and, given `only_columns`, with
-- only those). Compact, like the frames: the size counted is the size sent.
CREATE FUNCTION cablecar.row_json(r json, excluded text[], only_columns text[] DEFAULT NULL) RETURNS json
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, cablecar, pg_temp AS $$
  SELECT CASE WHEN r IS NULL THEN NULL ELSE
    coalesce('{' || string_agg(to_json(e.key)::text || ':' || e.value::text, ',' ORDER BY e.n) || '}', '{}')::json END
  FROM json_each(r) WITH ORDINALITY AS e(key, value, n)
  WHERE e.key <> ALL(coalesce(excluded, '{}')) AND (only_columns IS NULL OR e.key = ANY(only_columns))
$$;

-- The channel a row goes to: the template with each {column} replaced by the row's value; NULL
-- when a value is NULL.
CREATE FUNCTION cablecar.channel_for_row(template text, r json) RETURNS text
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, cablecar, pg_temp AS $$
DECLARE
  placeholder text;
  result text := template;
BEGIN
  FOR placeholder IN SELECT DISTINCT m[1] FROM regexp_matches(template, '\{([^{}]*)\}', 'g') AS m LOOP
    result := replace(result, '{' || placeholder || '}', r ->> placeholder);
  END LOOP;
  RETURN result;
END
$$;

-- Trigger function for any table:
--   CREATE TRIGGER orders_broadcast AFTER INSERT OR UPDATE OR DELETE ON orders
--     FOR EACH ROW EXECUTE FUNCTION cablecar.broadcast_changes('orders:{customer_id}', 'card_number');
-- publishes {"op","schema","table","record","old_record"} (record NULL for DELETE, old_record NULL
-- for INSERT) to the channel filled in from the row (the new row; an UPDATE that changes the
-- channel also tells the old channel). Arguments after the template name columns left out.
-- A change whose frame would exceed 128 KB is published with only the primary-key columns and
-- "truncated": true (read the row yourself); a change whose channel is not a valid name (a NULL or
-- a value with characters channel names cannot hold) is skipped with a WARNING. Neither fails the
-- application's transaction; a misconfigured trigger (CC005) does, at its first row.
CREATE FUNCTION cablecar.broadcast_changes() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, cablecar, pg_temp AS $$
DECLARE
  template text := TG_ARGV[0];
  excluded text[] := coalesce(TG_ARGV[1:TG_NARGS - 1], '{}');
  table_name text := format('%I.%I', TG_TABLE_SCHEMA, TG_TABLE_NAME);
  new_row json := CASE WHEN TG_OP <> 'DELETE' THEN to_json(NEW) END;
  old_row json := CASE WHEN TG_OP <> 'INSERT' THEN to_json(OLD) END;
  placeholder text;
  key_columns text[];
  head text;
  payload json;
  target text;
  targets text[];
BEGIN
  IF TG_WHEN <> 'AFTER' OR TG_LEVEL <> 'ROW' OR TG_OP NOT IN ('INSERT', 'UPDATE', 'DELETE') THEN
    RAISE EXCEPTION 'cablecar.broadcast_changes must be an AFTER INSERT OR UPDATE OR DELETE … FOR EACH ROW trigger (on %)', table_name
      USING ERRCODE = 'CC005';
  END IF;
  IF template IS NULL OR template = '' THEN
    RAISE EXCEPTION 'cablecar.broadcast_changes needs a channel template as its first argument, e.g. ''orders:{customer_id}'' (trigger % on %)',
      TG_NAME, table_name USING ERRCODE = 'CC005';
  END IF;
  FOR placeholder IN SELECT DISTINCT m[1] FROM regexp_matches(template, '\{([^{}]*)\}', 'g') AS m LOOP
    IF NOT EXISTS (SELECT FROM pg_attribute WHERE attrelid = TG_RELID AND attname = placeholder AND attnum > 0 AND NOT attisdropped) THEN
      RAISE EXCEPTION 'cablecar.broadcast_changes: the channel template % names column "%", which % does not have (trigger %)',
        quote_literal(template), placeholder, table_name, TG_NAME USING ERRCODE = 'CC005';
    END IF;
  END LOOP;

  targets := ARRAY[cablecar.channel_for_row(template, coalesce(new_row, old_row))];
  IF TG_OP = 'UPDATE' THEN
    target := cablecar.channel_for_row(template, old_row);
    IF target IS DISTINCT FROM targets[1] THEN
      targets := targets || target;
    END IF;
  END IF;

  head := '{"op":' || to_json(TG_OP::text) || ',"schema":' || to_json(TG_TABLE_SCHEMA::text) || ',"table":' || to_json(TG_TABLE_NAME::text);
  payload := (head || ',"record":' || coalesce(cablecar.row_json(new_row, excluded)::text, 'null')
                   || ',"old_record":' || coalesce(cablecar.row_json(old_row, excluded)::text, 'null') || '}')::json;

  FOREACH target IN ARRAY targets LOOP
    IF NOT cablecar.is_channel_name(target) THEN
      RAISE WARNING 'cablecar.broadcast_changes: % on % not published: the channel % (from template %) is not a valid channel name',
        TG_OP, table_name, coalesce(to_json(left(target, 200))::text, 'NULL (a placeholder column is NULL)'), quote_literal(template);
      CONTINUE;
    END IF;
    IF cablecar.frame_bytes(target, payload) > cablecar.max_frame_bytes() THEN
      SELECT array_agg(a.attname::text ORDER BY array_position(i.indkey::int2[], a.attnum)) INTO key_columns
      FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
      WHERE i.indrelid = TG_RELID AND i.indisprimary;
      payload := (head || ',"record":' || coalesce(cablecar.row_json(new_row, excluded, coalesce(key_columns, '{}'))::text, 'null')
                       || ',"old_record":' || coalesce(cablecar.row_json(old_row, excluded, coalesce(key_columns, '{}'))::text, 'null')
                       || ',"truncated":true}')::json;
      IF cablecar.frame_bytes(target, payload) > cablecar.max_frame_bytes() THEN
        RAISE WARNING 'cablecar.broadcast_changes: % on % not published: even its primary key is over the 128 KB frame cap', TG_OP, table_name;
        CONTINUE;
      END IF;
    END IF;
    PERFORM cablecar.publish(target, payload);
  END LOOP;
  RETURN NULL;
END
$$;

-- Grants: the role `cablecar_publisher` may call publish and use broadcast_changes in triggers,
-- and nothing else; those two run with their owner's rights (SECURITY DEFINER, fixed search_path).
-- Grant it to the application's login role: GRANT cablecar_publisher TO my_app;
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'cablecar_publisher') THEN
    CREATE ROLE cablecar_publisher NOLOGIN;
  END IF;
END
$$;
REVOKE ALL ON SCHEMA cablecar FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA cablecar FROM PUBLIC;
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA cablecar FROM PUBLIC;
-- Functions added later by the migrations (run by the same owner) start closed too.
ALTER DEFAULT PRIVILEGES IN SCHEMA cablecar REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
GRANT USAGE ON SCHEMA cablecar TO cablecar_publisher;
GRANT EXECUTE ON FUNCTION cablecar.publish(text, json, text), cablecar.broadcast_changes() TO cablecar_publisher;
