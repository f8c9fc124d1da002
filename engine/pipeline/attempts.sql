-- name: copy_attempts
COPY job_attempts (job_id, job_created_at, destination_id, attempt, state, status_code, error,
                   response, next_retry_at) FROM STDIN

-- name: save_positions
INSERT INTO router_positions (destination_id, partition, tx, id)
SELECT d, p, t::xid8, i
FROM unnest(%(destinations)s::uuid[], %(partitions)s::smallint[], %(txs)s::text[],
            %(ids)s::bigint[]) AS x(d, p, t, i)
ON CONFLICT (destination_id, partition) DO UPDATE SET tx = EXCLUDED.tx, id = EXCLUDED.id
    WHERE (router_positions.tx, router_positions.id) < (EXCLUDED.tx, EXCLUDED.id)
