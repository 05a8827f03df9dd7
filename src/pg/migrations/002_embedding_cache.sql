-- The shared embedding cache tier (src/pg/pg_cache_store.cpp).
-- UNLOGGED: a cache needs no WAL; a crash empties it, which costs only recomputation.
-- No index on last_access: hit flushes update it, and without an index those updates stay HOT;
-- eviction scans the table once per interval instead.
CREATE UNLOGGED TABLE sluice.embedding_cache (
  key           bytea PRIMARY KEY CHECK (length(key) = 32),
  model_version text NOT NULL,
  -- Little-endian float32: 4 bytes per dimension, copied as is on both ends.
  vector        bytea NOT NULL CHECK (length(vector) % 4 = 0),
  created_at    timestamptz NOT NULL DEFAULT now(),
  last_access   timestamptz NOT NULL DEFAULT now(),
  hits          bigint NOT NULL DEFAULT 0
) WITH (fillfactor = 90);

-- Float bytes do not compress: skip the attempt, keep large vectors out of line uncompressed.
ALTER TABLE sluice.embedding_cache ALTER COLUMN vector SET STORAGE EXTERNAL;
