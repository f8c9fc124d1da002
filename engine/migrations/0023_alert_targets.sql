-- Alerts reach Slack and email as well as a webhook; each notification's outcome is kept per
-- target, so the Alerts page can say which target took it. Workspace-wide settings (the SMTP
-- server alerts are mailed through) get a table. The audit log keeps each change's values
-- before and after it (secrets masked by the writer), and is filtered by who and when.
ALTER TABLE alert_rules
    ADD COLUMN slack_url text,
    ADD COLUMN email_to  text[] NOT NULL DEFAULT '{}';

CREATE TABLE alert_notices (
    alert_id  bigint NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    status    text NOT NULL CHECK (status IN ('firing', 'resolved')),
    target    text NOT NULL CHECK (target IN ('webhook', 'slack', 'email')),
    outcome   text NOT NULL,  -- 'sent', or why not
    at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (alert_id, status, target)
);

CREATE TABLE settings (
    name   text PRIMARY KEY,  -- e.g. 'smtp'
    value  jsonb NOT NULL
);

ALTER TABLE audit_log
    ADD COLUMN before jsonb,  -- the changed values as they were (secrets masked)
    ADD COLUMN after  jsonb;  -- ... and as they are now
CREATE INDEX audit_log_actor ON audit_log (actor, id DESC);
