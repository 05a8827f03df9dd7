-- The durable job queue. One row per job; workers claim batches with FOR UPDATE SKIP LOCKED
-- (see src/pg/pg_job_queue.cpp) and never hold a transaction open while they compute.

-- A job's input: a non-empty JSON array of strings. A function so that the CHECK below also
-- guards plain-SQL inserts.
CREATE FUNCTION sluice.is_input_array(input jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT AS $$
  SELECT CASE
    WHEN jsonb_typeof(input) <> 'array' THEN false
    ELSE jsonb_array_length(input) > 0
         AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements(input) AS e(v)
                         WHERE jsonb_typeof(e.v) <> 'string')
  END
$$;

CREATE TABLE sluice.jobs (
  id               bigserial PRIMARY KEY,
  model            text NOT NULL CHECK (model <> ''),
  input            jsonb NOT NULL CHECK (sluice.is_input_array(input)),
  status           text NOT NULL DEFAULT 'pending' CHECK (status IN
                     ('pending', 'processing', 'completed', 'failed', 'dead', 'cancelled')),
  -- Higher runs first; FIFO (by id) within one priority.
  priority         integer NOT NULL DEFAULT 0,
  attempt          integer NOT NULL DEFAULT 0,
  max_attempts     integer NOT NULL DEFAULT 3 CHECK (max_attempts >= 1),
  run_after        timestamptz NOT NULL DEFAULT now(),
  lease_expires_at timestamptz,
  worker_id        text,
  error            text,
  -- One vector per input, concatenated: little-endian float32, result_dim floats each.
  result           bytea,
  result_dim       integer,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  completed_at     timestamptz
);

-- The claim walks this index in order and stops after n rows it can lock.
CREATE INDEX jobs_claim_idx ON sluice.jobs (priority DESC, id) WHERE status = 'pending';
CREATE INDEX jobs_lease_idx ON sluice.jobs (lease_expires_at) WHERE status = 'processing';
CREATE INDEX jobs_finished_idx ON sluice.jobs (completed_at)
  WHERE status IN ('completed', 'cancelled');

-- Any insert, including a plain-SQL one, wakes idle workers (once per statement).
CREATE FUNCTION sluice.notify_jobs_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('sluice_jobs', '');
  RETURN NULL;
END
$$;
CREATE TRIGGER jobs_inserted AFTER INSERT ON sluice.jobs
  FOR EACH STATEMENT EXECUTE FUNCTION sluice.notify_jobs_inserted();

-- A job reaching a final state tells whoever waits for it (payload: the job id).
CREATE FUNCTION sluice.notify_job_finished() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('sluice_job_finished', NEW.id::text);
  RETURN NULL;
END
$$;
CREATE TRIGGER jobs_finished AFTER UPDATE OF status ON sluice.jobs
  FOR EACH ROW
  WHEN (NEW.status IN ('completed', 'failed', 'dead', 'cancelled')
        AND OLD.status IS DISTINCT FROM NEW.status)
  EXECUTE FUNCTION sluice.notify_job_finished();
