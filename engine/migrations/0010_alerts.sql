-- Alerts: a rule per destination (failures above a share, or nothing delivered for a while
-- although events arrive), and every alert that fired, open until its condition clears.
CREATE TABLE alert_rules (
    destination_id   uuid PRIMARY KEY REFERENCES destinations (id) ON DELETE CASCADE,
    failure_percent  numeric CHECK (failure_percent > 0 AND failure_percent <= 100),
    window_minutes   integer NOT NULL DEFAULT 15 CHECK (window_minutes BETWEEN 1 AND 1440),
    silence_minutes  integer CHECK (silence_minutes BETWEEN 5 AND 10080),
    webhook_url      text
);

CREATE TABLE alerts (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    destination_id  uuid NOT NULL REFERENCES destinations (id) ON DELETE CASCADE,
    kind            text NOT NULL CHECK (kind IN ('failures', 'silence')),
    message         text NOT NULL,
    started_at      timestamptz NOT NULL DEFAULT now(),
    ended_at        timestamptz,
    notified        text  -- what became of the last webhook post: 'sent', or the error
);
CREATE UNIQUE INDEX alerts_open ON alerts (destination_id, kind) WHERE ended_at IS NULL;
CREATE INDEX alerts_recent ON alerts (destination_id, started_at);
