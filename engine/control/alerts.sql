-- name: rules
SELECT destination_id, failure_percent::float8, window_minutes, silence_minutes, webhook_url,
       slack_url, email_to
FROM alert_rules

-- name: rule
SELECT destination_id, failure_percent::float8, window_minutes, silence_minutes, webhook_url,
       slack_url, email_to
FROM alert_rules WHERE destination_id = %(destination)s

-- name: save
INSERT INTO alert_rules (destination_id, failure_percent, window_minutes, silence_minutes,
                         webhook_url, slack_url, email_to)
VALUES (%(destination_id)s, %(failure_percent)s, %(window_minutes)s, %(silence_minutes)s,
        %(webhook_url)s, %(slack_url)s, %(email_to)s)
ON CONFLICT (destination_id) DO UPDATE SET
    failure_percent = EXCLUDED.failure_percent, window_minutes = EXCLUDED.window_minutes,
    silence_minutes = EXCLUDED.silence_minutes, webhook_url = EXCLUDED.webhook_url,
    slack_url = EXCLUDED.slack_url, email_to = EXCLUDED.email_to
WHERE (alert_rules.failure_percent, alert_rules.window_minutes, alert_rules.silence_minutes,
       alert_rules.webhook_url, alert_rules.slack_url, alert_rules.email_to)
      IS DISTINCT FROM (EXCLUDED.failure_percent, EXCLUDED.window_minutes,
                        EXCLUDED.silence_minutes, EXCLUDED.webhook_url, EXCLUDED.slack_url,
                        EXCLUDED.email_to)

-- name: remove
DELETE FROM alert_rules WHERE destination_id = %(destination)s

-- name: lock
-- One evaluation at a time, whichever host runs it.
SELECT pg_advisory_xact_lock(hashtext('sluice: alerts'))

-- name: measures
-- Per rule of an enabled destination: its deliveries and failures over the rule's window; its
-- deliveries over the silence span, and the events it was due then: those its connected
-- sources received (up to two minutes ago: the newest may not be delivered yet) less those
-- its filters or a transformation left out.
SELECT r.destination_id, d.name,
       coalesce(sum(s.events) FILTER (WHERE s.destination_id = r.destination_id
           AND s.outcome = 'delivered' AND s.minute >= now() - w.span), 0) AS delivered,
       coalesce(sum(s.events) FILTER (WHERE s.destination_id = r.destination_id
           AND s.outcome = 'aborted' AND s.minute >= now() - w.span), 0) AS failed,
       coalesce(sum(s.events) FILTER (WHERE s.destination_id = r.destination_id
           AND s.outcome = 'delivered' AND s.minute >= now() - w.quiet), 0) AS delivered_lately,
       coalesce(sum(s.events) FILTER (WHERE s.destination_id = '00000000-0000-0000-0000-000000000000'
           AND s.outcome = 'received' AND s.minute >= now() - w.quiet
           AND s.minute < now() - interval '2 minutes'
           AND s.source_id IN (SELECT c.source_id FROM connections c
                               WHERE c.destination_id = r.destination_id AND c.enabled)), 0)
     - coalesce(sum(s.events) FILTER (WHERE s.destination_id = r.destination_id
           AND s.outcome IN ('filtered', 'dropped') AND s.minute >= now() - w.quiet
           AND s.minute < now() - interval '2 minutes'), 0) AS due_lately
FROM alert_rules r
JOIN destinations d ON d.id = r.destination_id AND d.enabled
CROSS JOIN LATERAL (
    SELECT make_interval(mins => r.window_minutes) AS span,
           make_interval(mins => coalesce(r.silence_minutes, 0)) AS quiet
) w
LEFT JOIN stats_minute s
       ON s.minute >= now() - greatest(w.span, w.quiet)
      AND (s.destination_id = r.destination_id
           OR s.destination_id = '00000000-0000-0000-0000-000000000000')
GROUP BY r.destination_id, d.name

-- name: open
INSERT INTO alerts (destination_id, kind, message)
VALUES (%(destination)s, %(kind)s, %(message)s)
ON CONFLICT (destination_id, kind) WHERE ended_at IS NULL DO NOTHING
RETURNING id, destination_id, kind, message, started_at, ended_at, notified, host

-- name: close
-- Open alerts of rules whose condition has cleared (not among those still holding).
UPDATE alerts SET ended_at = now()
WHERE ended_at IS NULL AND destination_id IS NOT NULL
  AND (destination_id, kind) NOT IN (
      SELECT * FROM unnest(%(destinations)s::uuid[], %(kinds)s::text[]))
RETURNING id, destination_id, kind, message, started_at, ended_at, notified, host

-- name: open_certificate
INSERT INTO alerts (kind, host, message)
VALUES ('certificate', %(host)s, %(message)s)
ON CONFLICT (host) WHERE ended_at IS NULL AND kind = 'certificate' DO NOTHING
RETURNING id, destination_id, kind, message, started_at, ended_at, notified, host

-- name: close_certificates
-- Open certificate alerts of hosts whose certificate is no longer close to expiring.
UPDATE alerts SET ended_at = now()
WHERE ended_at IS NULL AND kind = 'certificate' AND host <> ALL (%(hosts)s::text[])
RETURNING id, destination_id, kind, message, started_at, ended_at, notified, host

-- name: every_target
-- Where a certificate's alert goes: every target any rule names, each once.
SELECT coalesce(array_agg(DISTINCT webhook_url) FILTER (WHERE webhook_url IS NOT NULL),
                '{}') AS webhooks,
       coalesce(array_agg(DISTINCT slack_url) FILTER (WHERE slack_url IS NOT NULL),
                '{}') AS slacks,
       coalesce((SELECT array_agg(DISTINCT address) FROM alert_rules, unnest(email_to) address),
                '{}') AS emails
FROM alert_rules

-- name: notified
UPDATE alerts SET notified = %(notified)s WHERE id = %(id)s

-- name: notice
INSERT INTO alert_notices (alert_id, status, target, outcome)
VALUES (%(id)s, %(status)s, %(target)s, %(outcome)s)
ON CONFLICT (alert_id, status, target) DO UPDATE SET outcome = EXCLUDED.outcome, at = now()

-- name: overview
SELECT r.destination_id, d.name AS destination, d.enabled, r.failure_percent::float8,
       r.window_minutes, r.silence_minutes, r.webhook_url IS NOT NULL AS webhook,
       r.slack_url IS NOT NULL AS slack, cardinality(r.email_to) AS emails,
       (SELECT min(a.started_at) FROM alerts a
        WHERE a.destination_id = r.destination_id AND a.ended_at IS NULL) AS firing_since
FROM alert_rules r JOIN destinations d ON d.id = r.destination_id
ORDER BY d.name

-- name: recent
SELECT a.id, a.destination_id, coalesce(d.name, '') AS destination, a.host, a.kind,
       a.message, a.started_at, a.ended_at, a.notified,
       coalesce((SELECT json_agg(json_build_object('status', n.status, 'target', n.target,
                                                   'outcome', n.outcome)
                                 ORDER BY n.status, n.target)
                 FROM alert_notices n WHERE n.alert_id = a.id), '[]') AS notices
FROM alerts a LEFT JOIN destinations d ON d.id = a.destination_id
WHERE %(before)s::bigint IS NULL OR a.id < %(before)s::bigint
ORDER BY a.id DESC
LIMIT %(limit)s

-- name: active
-- (a certificate's alert has no destination)
SELECT a.id, a.destination_id, coalesce(d.name, '') AS destination, a.host, a.kind, a.message,
       a.started_at, a.ended_at, a.notified
FROM alerts a LEFT JOIN destinations d ON d.id = a.destination_id
WHERE a.ended_at IS NULL
ORDER BY a.started_at

-- name: history
SELECT a.id, a.destination_id, d.name AS destination, a.kind, a.message, a.started_at,
       a.ended_at, a.notified
FROM alerts a JOIN destinations d ON d.id = a.destination_id
WHERE a.destination_id = %(destination)s
ORDER BY a.started_at DESC
LIMIT %(limit)s
