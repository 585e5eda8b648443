-- Local dispatch: NOTIFY carries only the id (the payload cap is 8000 bytes); the bridge
-- (infra/local/dispatchBridge.ts) reads cablecar.dispatch_event(id) and invokes fanout, standing in
-- for the aws_lambda extension.
CREATE OR REPLACE FUNCTION cablecar.dispatch(message_id uuid) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, cablecar, pg_temp AS $$
BEGIN
  PERFORM pg_notify('cablecar_dispatch', message_id::text);
END
$$;
