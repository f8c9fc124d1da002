-- Writing router jobs: the processor's output, and the replay of failed jobs.

-- name: copy_jobs
COPY jobs (destination_id, source_id, partition, user_key, ingest_tx, ingest_id, received_at,
           message_id, event_type, event_name, request, events, member_txs, member_ids)
FROM STDIN

-- name: insert_failed_job
WITH job AS (
    INSERT INTO jobs (destination_id, source_id, partition, user_key, ingest_tx, ingest_id,
                      received_at, message_id, event_type, event_name, request)
    VALUES (%(destination_id)s, %(source_id)s, %(partition)s, %(user_key)s,
            %(ingest_tx)s::text::xid8, %(ingest_id)s,
            %(received_at)s, %(message_id)s, %(event_type)s, %(event_name)s, %(request)s)
    RETURNING id, created_at, destination_id
)
INSERT INTO job_attempts (job_id, job_created_at, destination_id, attempt, state, error)
SELECT id, created_at, destination_id, 1, 'aborted', %(error)s FROM job

-- name: notify_jobs
SELECT pg_notify('sluice_jobs', '')
