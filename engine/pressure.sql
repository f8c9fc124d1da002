-- The pipeline's pressure (engine/pressure.py): what the stage processes say, what the
-- gateways read.

-- name: say
INSERT INTO pipeline_pressure (host, pid, stage, level)
VALUES (%(host)s, %(pid)s, %(stage)s, %(level)s)
ON CONFLICT (host, pid, stage) DO UPDATE SET level = EXCLUDED.level, at = now()

-- name: gone
DELETE FROM pipeline_pressure WHERE host = %(host)s AND pid = %(pid)s AND stage = %(stage)s

-- name: on_host
-- The highest level said lately on a host (a process that died without a word is ignored
-- once its last words are older than `fresh`; they are deleted after a day).
SELECT coalesce(max(level), 0) FROM pipeline_pressure
WHERE host = %(host)s AND at > now() - %(fresh)s::interval

-- name: forget
DELETE FROM pipeline_pressure WHERE at < now() - interval '1 day'
