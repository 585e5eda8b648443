-- Bounded history: each channel keeps its messages for a maximum age and/or a maximum count (the
-- defaults are settings of the caller of cablecar.prune; a channel may override either), and remembers up to
-- which seq it was pruned, so that a client asking for older messages is told, not silently skipped.
ALTER TABLE cablecar.channels
  ADD COLUMN pruned_through bigint NOT NULL DEFAULT 0,
  -- NULL: the default passed to cablecar.prune. Set to override for one channel.
  ADD COLUMN retention_max_age interval,
  ADD COLUMN retention_max_count bigint CHECK (retention_max_count >= 1);

-- Pruning by age and the AWS sweep (messages published in a time window) read by publication time.
CREATE INDEX messages_published_at ON cablecar.messages (published_at);

-- Prunes every channel once; returns the number of messages deleted. A message is never pruned
-- before it was dispatched (the sweep still needs it). NULL defaults mean "no limit of that kind".
CREATE FUNCTION cablecar.prune(default_max_age interval, default_max_count bigint) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, cablecar, pg_temp AS $$
DECLARE
  c record;
  cutoff bigint;
  by_age bigint;
  first_undispatched bigint;
  deleted bigint := 0;
  n bigint;
BEGIN
  FOR c IN SELECT name, last_seq, pruned_through,
                  coalesce(retention_max_age, default_max_age) AS max_age,
                  coalesce(retention_max_count, default_max_count) AS max_count
             FROM cablecar.channels WHERE last_seq > pruned_through
  LOOP
    cutoff := CASE WHEN c.max_count IS NULL THEN 0 ELSE c.last_seq - c.max_count END;
    IF c.max_age IS NOT NULL THEN
      SELECT max(seq) INTO by_age FROM cablecar.messages
       WHERE channel = c.name AND seq > c.pruned_through AND published_at < clock_timestamp() - c.max_age;
      cutoff := greatest(cutoff, coalesce(by_age, 0));
    END IF;
    SELECT min(seq) INTO first_undispatched FROM cablecar.messages WHERE channel = c.name AND dispatched_at IS NULL;
    IF first_undispatched IS NOT NULL THEN
      cutoff := least(cutoff, first_undispatched - 1);
    END IF;
    IF cutoff > c.pruned_through THEN
      DELETE FROM cablecar.messages WHERE channel = c.name AND seq <= cutoff;
      GET DIAGNOSTICS n = ROW_COUNT;
      deleted := deleted + n;
      UPDATE cablecar.channels SET pruned_through = cutoff WHERE name = c.name AND pruned_through < cutoff;
    END IF;
  END LOOP;
  RETURN deleted;
END
$$;

-- Like everything in cablecar (003): run by cablecar's own role (the retention function, the local
-- stack), not by PUBLIC.
REVOKE EXECUTE ON FUNCTION cablecar.prune(interval, bigint) FROM PUBLIC;
