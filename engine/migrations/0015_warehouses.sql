-- Warehouse destinations. Their events are staged as files on the data dir of the host whose
-- worker routed them, and loaded into the warehouse on the destination's schedule by that
-- host's worker (engine/warehouses/).

-- A load of a source's staged files into its schema: what it holds, how it went. A failed
-- load keeps its files and is tried again at `next_attempt_at`.
CREATE TABLE warehouse_uploads (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    destination_id   uuid NOT NULL REFERENCES destinations (id) ON DELETE CASCADE,
    source_id        uuid NOT NULL,
    node             text NOT NULL,  -- the host whose data dir holds the staged files
    namespace        text NOT NULL,
    files            text[] NOT NULL,
    events           bigint NOT NULL,
    first_event_at   timestamptz,  -- the oldest receivedAt in it
    status           text NOT NULL DEFAULT 'waiting'
                     CHECK (status IN ('waiting', 'loading', 'loaded', 'failed')),
    attempts         integer NOT NULL DEFAULT 0,
    error            text,
    tables           jsonb NOT NULL DEFAULT '{}',  -- table → rows loaded
    discards         bigint NOT NULL DEFAULT 0,
    created_at       timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    finished_at      timestamptz,
    next_attempt_at  timestamptz
);
CREATE INDEX warehouse_uploads_latest ON warehouse_uploads (destination_id, id DESC);
CREATE INDEX warehouse_uploads_open ON warehouse_uploads (node, destination_id)
    WHERE status <> 'loaded';

-- "Sync now" (the UI, `sluice warehouse sync`): load what is staged without waiting for the
-- schedule. The worker answers every request older than the load it starts.
CREATE TABLE warehouse_syncs (
    destination_id  uuid PRIMARY KEY REFERENCES destinations (id) ON DELETE CASCADE,
    requested_at    timestamptz NOT NULL DEFAULT now()
);

-- Each warehouse's tables and columns (name → type), as its last load saw them.
CREATE TABLE warehouse_schemas (
    destination_id  uuid NOT NULL REFERENCES destinations (id) ON DELETE CASCADE,
    namespace       text NOT NULL,
    table_name      text NOT NULL,
    columns         jsonb NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (destination_id, namespace, table_name)
);

-- What each host has staged and not loaded yet (refreshed by its worker every few seconds):
-- the warehouse's lag is the age of the oldest event here.
CREATE TABLE warehouse_staged (
    destination_id   uuid NOT NULL REFERENCES destinations (id) ON DELETE CASCADE,
    source_id        uuid NOT NULL,
    node             text NOT NULL,
    files            integer NOT NULL,
    events           bigint NOT NULL,
    oldest_event_at  timestamptz,
    seen_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (destination_id, source_id, node)
);
