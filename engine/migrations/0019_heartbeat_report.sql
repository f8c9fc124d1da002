-- What a process reports about itself with each heartbeat (engine/heartbeats.py): a gateway,
-- the events waiting in its host's spool. Shown on the overview and by `sluice status`.
ALTER TABLE heartbeats ADD COLUMN report jsonb NOT NULL DEFAULT '{}';
