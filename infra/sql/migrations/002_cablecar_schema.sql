-- cablecar's objects live in their own schema `cablecar`, so that they can share a database with
-- an application that has its own `messages` or `channels` table.
--
-- The runner runs every migration with `search_path = cablecar`, so on a fresh database 001 already
-- created its tables there. A database migrated before this file (001 ran with the default
-- search_path) has them in `public`: they are moved, data, seq and indexes included. Either way the
-- functions are re-created under their new names with a fixed search_path (a function that resolved
-- `messages` through the caller's search_path would find the application's table).

DO $$
BEGIN
  IF to_regclass('cablecar.messages') IS NULL THEN
    -- The old layout: everything of 001 is in public. The trigger moves with its table.
    ALTER TABLE public.channels SET SCHEMA cablecar;
    ALTER TABLE public.messages SET SCHEMA cablecar;
    DROP TRIGGER messages_dispatch ON cablecar.messages;
    DROP FUNCTION public.cablecar_dispatch_trigger();
    DROP FUNCTION public.cablecar_dispatch(uuid);
    DROP FUNCTION public.cablecar_dispatch_event(uuid);
    DROP FUNCTION public.cablecar_message_json(cablecar.messages);

    PERFORM set_config('cablecar.moved_from_public', 'yes', true); -- read by the last block
  ELSE
    -- A fresh database: 001 created its functions in cablecar under their old names.
    DROP TRIGGER messages_dispatch ON cablecar.messages;
    DROP FUNCTION cablecar.cablecar_dispatch_trigger();
    DROP FUNCTION cablecar.cablecar_dispatch(uuid);
    DROP FUNCTION cablecar.cablecar_dispatch_event(uuid);
    DROP FUNCTION cablecar.cablecar_message_json(cablecar.messages);
  END IF;
END
$$;

-- The one shape of a message on the wire, used by history, replay and the dispatch event alike.
CREATE FUNCTION cablecar.message_json(m cablecar.messages) RETURNS json
LANGUAGE sql STABLE SET search_path = pg_catalog, cablecar, pg_temp AS $$
  SELECT json_build_object(
    'id', m.id,
    'channel', m.channel,
    'seq', m.seq,
    'data', m.data,
    'publishedAt', to_char(m.published_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
$$;

-- The event fan-out receives (functions/lib/protocol/dispatchEvent.ts); "v" is its schema version.
CREATE FUNCTION cablecar.dispatch_event(message_id uuid) RETURNS json
LANGUAGE sql STABLE SET search_path = pg_catalog, cablecar, pg_temp AS $$
  SELECT json_build_object('v', 1, 'message', cablecar.message_json(m)) FROM cablecar.messages m WHERE m.id = message_id
$$;

-- Replaced, in the same transaction, by the variant for where the database runs (infra/sql/dispatch/).
CREATE FUNCTION cablecar.dispatch(message_id uuid) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, cablecar, pg_temp AS $$
BEGIN
  RAISE EXCEPTION 'cablecar.dispatch has no variant installed; run the migrations';
END
$$;

CREATE FUNCTION cablecar.dispatch_trigger() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, cablecar, pg_temp AS $$
BEGIN
  PERFORM cablecar.dispatch(NEW.id);
  RETURN NULL;
END
$$;

-- Deferred to commit: a message is dispatched only once it is durable and visible to fan-out.
CREATE CONSTRAINT TRIGGER messages_dispatch
  AFTER INSERT ON cablecar.messages
  DEFERRABLE INITIALLY DEFERRED
  FOR EACH ROW EXECUTE FUNCTION cablecar.dispatch_trigger();

DO $$
BEGIN
  IF current_setting('cablecar.moved_from_public', true) = 'yes' THEN
    -- For one release, the version still serving (it queries `messages`, `channels` and
    -- `cablecar_message_json(m)` through the default search_path) keeps working on the moved tables:
    -- simple views are updatable, INSERT … ON CONFLICT included, and inserts through them fire the
    -- dispatch trigger of cablecar.messages. They exist only where public.messages was cablecar's
    -- own table; the migration of the release after this one drops them (README, "Mixed versions").
    CREATE VIEW public.channels AS SELECT * FROM cablecar.channels;
    CREATE VIEW public.messages AS SELECT * FROM cablecar.messages;
    CREATE FUNCTION public.cablecar_message_json(m public.messages) RETURNS json
    LANGUAGE sql STABLE SET search_path = pg_catalog, cablecar, pg_temp AS $fn$
      SELECT cablecar.message_json(ROW(m.id, m.channel, m.seq, m.data, m.published_at, m.idempotency_key, m.dispatched_at)::cablecar.messages)
    $fn$;
    -- A role named `cablecar` finds cablecar.messages itself first ("$user" leads the default
    -- search_path), so the old name must take that row type too.
    CREATE FUNCTION public.cablecar_message_json(m cablecar.messages) RETURNS json
    LANGUAGE sql STABLE SET search_path = pg_catalog, cablecar, pg_temp AS $fn$
      SELECT cablecar.message_json(m)
    $fn$;
  END IF;
END
$$;
