-- name: older_readers
-- Is a worker running (heard from lately) that does not say it reads `ingest_events`: one of a
-- version before it, which reads `ingest_log` alone?
SELECT EXISTS (
    SELECT 1 FROM heartbeats
    WHERE role LIKE 'worker%%' AND seen_at > now() - %(alive)s::interval
      AND NOT report ? %(mark)s)
