-- Who saved each transformation version, as the audit log names them: a person's email,
-- `token <name>` (the config API) or `cli`. Unknown (NULL) for versions saved before this was
-- kept, and for those a backup restores.
ALTER TABLE transformation_versions ADD COLUMN saved_by text;
