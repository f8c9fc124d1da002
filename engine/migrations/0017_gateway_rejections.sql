-- Messages the gateway refused out of a request (one over the message size limit), each kept
-- for the user to see why: the rest of its batch was accepted, or the request answered 413.
-- Counted per minute in stats_minute as the source's `rejected` events.
CREATE TABLE gateway_rejections (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at  timestamptz NOT NULL,
    source_id    uuid NOT NULL REFERENCES sources (id) ON DELETE CASCADE,
    reason       text NOT NULL,
    bytes        integer NOT NULL,  -- the message's size as the SDK sent it
    head         text NOT NULL      -- its first kilobytes, as text
);
CREATE INDEX gateway_rejections_received ON gateway_rejections (received_at);
CREATE INDEX gateway_rejections_source ON gateway_rejections (source_id, received_at);
