-- Every running gateway, worker and web process notes here that it is alive, so that the
-- control plane can say what runs (on every host sharing this database) and what stopped.
CREATE TABLE heartbeats (
    host        text NOT NULL,
    pid         integer NOT NULL,
    role        text NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT now(),
    seen_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (host, pid, role)
);
