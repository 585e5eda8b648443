-- Local dispatch: NOTIFY carries only the id (the payload cap is 8000 bytes); the bridge
-- (infra/local/dispatchBridge.ts) reads cablecar_dispatch_event(id) and invokes fanout, standing in
-- for the aws_lambda extension.
CREATE OR REPLACE FUNCTION cablecar_dispatch(message_id uuid) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('cablecar_dispatch', message_id::text);
END
$$;
