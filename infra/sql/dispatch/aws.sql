-- AWS dispatch (RDS PostgreSQL 12.6+ / Aurora 11.9+ with an IAM role for the Lambda feature): an
-- asynchronous invocation of the fanout function's `live` alias carries the whole message (up to 1 MB).
-- :fanout_function and :region are filled in by the migration runner.
CREATE EXTENSION IF NOT EXISTS aws_lambda CASCADE;

CREATE OR REPLACE FUNCTION cablecar.dispatch(message_id uuid) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, cablecar, pg_temp AS $$
BEGIN
  PERFORM aws_lambda.invoke(
    :fanout_function,
    cablecar.dispatch_event(message_id),
    :region,
    'Event',
    qualifier => 'live');
  UPDATE cablecar.messages SET dispatched_at = clock_timestamp() WHERE id = message_id;
END
$$;
