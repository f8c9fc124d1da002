-- A destination's earlier settings, kept while jobs made under them may remain: their stored
-- requests hold the secrets of those settings (a key since replaced), which what is shown of
-- them (the failed list, the events page) must mask too. Written by the trigger below whenever
-- a destination's config changes; forgotten by housekeeping once no such job is left.
CREATE TABLE destination_settings_retired (
    destination_id uuid NOT NULL REFERENCES destinations (id) ON DELETE CASCADE,
    config         jsonb NOT NULL,
    retired_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX destination_settings_retired_destination ON destination_settings_retired (destination_id);

CREATE FUNCTION sluice_retire_settings() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Settings retired again (A, B, then A again) are kept once, as retired last.
    DELETE FROM destination_settings_retired WHERE destination_id = OLD.id AND config = OLD.config;
    INSERT INTO destination_settings_retired (destination_id, config) VALUES (OLD.id, OLD.config);
    RETURN NULL;
END
$$;

CREATE TRIGGER destination_settings_retired AFTER UPDATE OF config ON destinations
FOR EACH ROW WHEN (OLD.config IS DISTINCT FROM NEW.config)
EXECUTE FUNCTION sluice_retire_settings();
