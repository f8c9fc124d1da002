-- Jobs waiting for their next try are listed (the Failed page) through their latest `retry`
-- attempt, as aborted ones are through `job_attempts_aborted`.
CREATE INDEX job_attempts_retrying ON job_attempts (destination_id, at) WHERE state = 'retry';
