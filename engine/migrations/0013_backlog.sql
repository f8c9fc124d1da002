-- What each delivering worker holds for each destination, published every few seconds: jobs
-- and events waiting (retrying ones among them), when the oldest was received, and how many
-- jobs it has not read yet. The Stats and home pages add up the rows of the live workers.
CREATE TABLE backlogs (
    host            text NOT NULL,
    pid             integer NOT NULL,
    destination_id  uuid NOT NULL,
    jobs            bigint NOT NULL,
    events          bigint NOT NULL,
    retrying        bigint NOT NULL,
    oldest_at       timestamptz,
    unread          bigint NOT NULL,  -- jobs beyond what the worker holds in memory (capped)
    seen_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (host, pid, destination_id)
);
