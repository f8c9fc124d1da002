-- The workspace: sources, destinations, transformations (versioned) and connections.

CREATE TABLE sources (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL UNIQUE,
    write_key   text NOT NULL UNIQUE,
    enabled     boolean NOT NULL DEFAULT true,
    -- events per second accepted by each gateway process; NULL means unlimited
    rate_limit  integer CHECK (rate_limit > 0),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE destinations (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL UNIQUE,
    type        text NOT NULL,
    config      jsonb NOT NULL DEFAULT '{}',
    enabled     boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE transformations (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Saving new code appends a version; connections always run the newest one.
CREATE TABLE transformation_versions (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    transformation_id  uuid NOT NULL REFERENCES transformations (id) ON DELETE CASCADE,
    code               text NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX transformation_versions_latest
    ON transformation_versions (transformation_id, id DESC);

CREATE TABLE connections (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    source_id          uuid NOT NULL REFERENCES sources (id) ON DELETE CASCADE,
    destination_id     uuid NOT NULL REFERENCES destinations (id) ON DELETE CASCADE,
    transformation_id  uuid REFERENCES transformations (id) ON DELETE SET NULL,
    enabled            boolean NOT NULL DEFAULT true,
    created_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (source_id, destination_id)
);
