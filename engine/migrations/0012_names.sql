-- Events received per minute, source, call type and name (a track call's event, a page or
-- screen call's name; '' for calls without one, and for the rarer names of a busy minute):
-- what the Stats page's top names read.
CREATE TABLE names_minute (
    minute     timestamptz NOT NULL,
    source_id  uuid NOT NULL,
    type       text NOT NULL,
    name       text NOT NULL,
    events     bigint NOT NULL,
    PRIMARY KEY (minute, source_id, type, name)
);
