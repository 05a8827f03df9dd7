-- Workers claim only the models they serve. With one model the claim walks this index in claim
-- order and stops after n rows it can lock, as the unfiltered claim does with jobs_claim_idx.
CREATE INDEX jobs_claim_model_idx ON sluice.jobs (model, priority DESC, id)
  WHERE status = 'pending';
