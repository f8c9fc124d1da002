-- How long deliveries took, from the gateway's receipt of an event to the destination's
-- acceptance: per minute and destination, a count per latency bucket (see engine.pipeline.
-- stats: LATENCY_BUCKETS), from which the Stats page reads the median and the 95th percentile.
CREATE TABLE latency_minute (
    minute          timestamptz NOT NULL,
    destination_id  uuid NOT NULL,
    bucket          smallint NOT NULL,
    events          bigint NOT NULL,
    PRIMARY KEY (minute, destination_id, bucket)
);
