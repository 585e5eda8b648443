-- The AWS sweep (functions/lib/dispatch/dispatchSweep.ts) looks for messages whose fan-out never
-- recorded its completion. It used to read every message of its window (6 h) at every run (every
-- 5 minutes) from here and from DynamoDB, about 72 times each, although nearly all had completed by
-- the first check: its work grew with the traffic, not with what was left to check. It now notes
-- here what it found complete, and reads only the rest: at each run, the messages that entered its
-- window since the last one, and the few still unfinished.
--
-- Additive, for the release that brings it (docs/releases.md, "Mixed versions"): a nullable column
-- without a default is added without rewriting the table, nothing version 1 runs reads or writes
-- it, and version 1's sweep keeps reading its whole window as before. Every message already stored
-- starts unconfirmed, so the new sweep checks those of its window too (its first runs read as much
-- as the old one did, confirming as they go, and the backlog shrinks run after run).
--
-- IF NOT EXISTS on both: on a big table an operator may create them beforehand without blocking
-- publishes (CREATE INDEX CONCURRENTLY cannot run in the migration's transaction), and this file
-- then finds them (docs/releases.md).
ALTER TABLE cablecar.messages ADD COLUMN IF NOT EXISTS fanout_confirmed_at timestamptz;

COMMENT ON COLUMN cablecar.messages.fanout_confirmed_at IS
  'When the AWS sweep found this message''s fan-out recorded complete (DynamoDB DISPATCH#<id>, and every shard''s when split); NULL: not known complete, checked by the sweep while in its window. Not dispatched_at, which says the message was handed to fan-out (locally: by the bridge, once fanout answered).';

-- The sweep's pages, in the order and cursor it pages by: (published_at, channel, seq) of the
-- unconfirmed messages only. A confirmed message leaves the index, so a run reads what is left to
-- check, however many messages its window holds. Rows that stay unconfirmed outside the window
-- (those stored before this migration; locally every row, as only the AWS sweep confirms) stay in
-- it until retention prunes them, but cost the sweep nothing: its range starts at the window.
--
-- A concurrent build that failed leaves an invalid index of that name, which IF NOT EXISTS would
-- accept and the planner never uses: it is built again here instead.
DO $$
BEGIN
  IF EXISTS (SELECT FROM pg_index WHERE indexrelid = to_regclass('cablecar.messages_fanout_unconfirmed') AND NOT indisvalid) THEN
    DROP INDEX cablecar.messages_fanout_unconfirmed;
  END IF;
END
$$;
CREATE INDEX IF NOT EXISTS messages_fanout_unconfirmed ON cablecar.messages (published_at, channel, seq)
  WHERE fanout_confirmed_at IS NULL;

-- No grant: the functions, the sweep included, connect as the role that owns schema cablecar
-- (docs/deploy.md, step 2), which may update its own table; the publisher role of 003 gets nothing
-- here, so an application cannot hide a message from the sweep.

-- Where 002 moved a version-1 database, version 1's history reads through
-- public.cablecar_message_json(public.messages), which rebuilt a cablecar.messages row from the
-- view's columns: with a column more, that row no longer casts. It now reads the message itself
-- (the view's rows are the table's), so a later added column cannot break it again.
DO $$
BEGIN
  IF EXISTS (
    SELECT FROM pg_proc p JOIN pg_type t ON t.oid = p.proargtypes[0]
    WHERE p.pronamespace = 'public'::regnamespace AND p.proname = 'cablecar_message_json'
      AND t.typnamespace = 'public'::regnamespace AND t.typname = 'messages'
  ) THEN
    CREATE OR REPLACE FUNCTION public.cablecar_message_json(m public.messages) RETURNS json
    LANGUAGE sql STABLE SET search_path = pg_catalog, cablecar, pg_temp AS $fn$
      SELECT cablecar.message_json(stored) FROM cablecar.messages stored WHERE stored.id = m.id
    $fn$;
  END IF;
END
$$;
