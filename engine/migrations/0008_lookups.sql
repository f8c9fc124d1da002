-- Lookups for the control plane's Failed and Events pages.

-- Jobs waiting for their next try are listed through their latest `retry` attempt, as aborted
-- ones are through `job_attempts_aborted`.
CREATE INDEX job_attempts_retrying ON job_attempts (destination_id, at) WHERE state = 'retry';

-- Failed jobs are those aborted and not replayed or discarded since: the few rows of a replay
-- or a discard, found without probing every attempt.
CREATE INDEX job_attempts_settled_again ON job_attempts (job_id)
    WHERE state IN ('replayed', 'discarded');

-- What became of an event: the jobs made from it (a file bundle is found by its first event
-- here, by its members through the destination's jobs of that day).
CREATE INDEX jobs_ingest ON jobs (ingest_id);
