-- A built-in alert no rule sets: a host's HTTPS certificate close to expiring. It belongs to a
-- host rather than a destination, so an alert has either a destination or (a certificate's)
-- a host, and a host has one open certificate alert at a time.
ALTER TABLE alerts
    ALTER COLUMN destination_id DROP NOT NULL,
    ADD COLUMN host text,
    DROP CONSTRAINT alerts_kind_check,
    ADD CONSTRAINT alerts_kind_check CHECK (kind IN ('failures', 'silence', 'certificate')),
    ADD CONSTRAINT alerts_subject CHECK (
        CASE WHEN kind = 'certificate' THEN destination_id IS NULL AND host IS NOT NULL
             ELSE destination_id IS NOT NULL AND host IS NULL END);
CREATE UNIQUE INDEX alerts_open_certificate ON alerts (host)
    WHERE ended_at IS NULL AND kind = 'certificate';
