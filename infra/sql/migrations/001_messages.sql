-- Channels and their messages: PostgreSQL is the source of truth for every message a client can ask for.

CREATE TABLE channels (
  name       text PRIMARY KEY,
  -- The newest seq handed out; bumped in the publishing transaction, so seq has no gaps.
  last_seq   bigint NOT NULL DEFAULT 0,
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE messages (
  id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  channel         text NOT NULL REFERENCES channels (name),
  seq             bigint NOT NULL,
  -- json, not jsonb: the payload is delivered exactly as it was published (key order included).
  data            json NOT NULL,
  published_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
  idempotency_key text,
  -- Set once the message was handed to fan-out; rows left NULL are dispatched again at bridge start.
  dispatched_at   timestamptz,
  UNIQUE (channel, seq),
  UNIQUE (channel, idempotency_key)
);

CREATE INDEX messages_undispatched ON messages (channel, seq) WHERE dispatched_at IS NULL;

-- The one shape of a message on the wire, used by history, replay and the dispatch event alike.
CREATE FUNCTION cablecar_message_json(m messages) RETURNS json
LANGUAGE sql STABLE AS $$
  SELECT json_build_object(
    'id', m.id,
    'channel', m.channel,
    'seq', m.seq,
    'data', m.data,
    'publishedAt', to_char(m.published_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
$$;

-- The event fan-out receives (functions/lib/dispatchEvent.ts); "v" is its schema version.
CREATE FUNCTION cablecar_dispatch_event(message_id uuid) RETURNS json
LANGUAGE sql STABLE AS $$
  SELECT json_build_object('v', 1, 'message', cablecar_message_json(m)) FROM messages m WHERE m.id = message_id
$$;

-- Replaced at every migration run by the variant for where the database runs (infra/sql/dispatch/).
CREATE FUNCTION cablecar_dispatch(message_id uuid) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'cablecar_dispatch has no variant installed; run the migrations';
END
$$;

CREATE FUNCTION cablecar_dispatch_trigger() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM cablecar_dispatch(NEW.id);
  RETURN NULL;
END
$$;

-- Deferred to commit: a message is dispatched only once it is durable and visible to fan-out.
CREATE CONSTRAINT TRIGGER messages_dispatch
  AFTER INSERT ON messages
  DEFERRABLE INITIALLY DEFERRED
  FOR EACH ROW EXECUTE FUNCTION cablecar_dispatch_trigger();
