-- What each of the pipeline's stage processes says while it falls further behind (1 for the
-- processor, for the routers the share of the time they wait for a CPU: engine/pressure.py),
-- every half second, read by the gateways on the same host, which pace their answers while it
-- is high. Unlogged: it says what is true now, and nothing of it is worth a WAL record or
-- surviving a crash.
CREATE UNLOGGED TABLE pipeline_pressure (
    host   text NOT NULL,
    pid    integer NOT NULL,
    stage  text NOT NULL,
    level  real NOT NULL CHECK (level BETWEEN 0 AND 1),
    at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (host, pid, stage)
);
