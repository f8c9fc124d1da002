-- A batch destination's (S3) job may carry several events: one job per source, partition and
-- processor batch, so that a file costs a row per bundle rather than one per event. The
-- members, in order, are kept for a replay; a job of one event leaves them NULL.
ALTER TABLE jobs
    ADD COLUMN events     integer NOT NULL DEFAULT 1,  -- no CHECK: that would scan every job
    ADD COLUMN member_txs xid8[],
    ADD COLUMN member_ids bigint[];
