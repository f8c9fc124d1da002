-- Which worker process works which partition of each stage (processing, delivery): a lease the
-- holder renews every few seconds, free for another worker once it expires (its holder died or
-- lost the database). `epoch` grows at every change of holder. A worker checks its leases in
-- the transaction that commits its work, so one that lost a lease commits nothing for it.
CREATE TABLE leases (
    stage       text NOT NULL CHECK (stage IN ('process', 'deliver')),
    partition   smallint NOT NULL,
    holder      text,
    epoch       bigint NOT NULL DEFAULT 0,
    expires_at  timestamptz NOT NULL DEFAULT '-infinity',
    PRIMARY KEY (stage, partition)
);
INSERT INTO leases (stage, partition)
SELECT stage, partition
FROM unnest(ARRAY['process', 'deliver']) AS stage, generate_series(0, 63) AS partition;

-- The workers taking part in a stage, seen every few seconds: each takes a fair share.
CREATE TABLE lease_holders (
    stage    text NOT NULL,
    holder   text NOT NULL,
    seen_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (stage, holder)
);
