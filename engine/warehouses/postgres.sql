-- The PostgreSQL warehouse (engine/warehouses/postgres.py). `{slots}` are identifiers.

-- name: tables
SELECT c.table_name, c.column_name, c.data_type
FROM information_schema.columns c
JOIN information_schema.tables t USING (table_schema, table_name)
WHERE c.table_schema = %(namespace)s AND t.table_type = 'BASE TABLE'
ORDER BY c.table_name, c.ordinal_position

-- name: create_schema
CREATE SCHEMA IF NOT EXISTS {schema}

-- name: create_table
CREATE TABLE IF NOT EXISTS {schema}.{table} ({columns})

-- name: create_index
CREATE INDEX IF NOT EXISTS {index} ON {schema}.{table} ({column})

-- name: add_column
ALTER TABLE {schema}.{table} ADD COLUMN IF NOT EXISTS {column} {type}

-- name: staging_table
CREATE TEMPORARY TABLE {staging} (LIKE {schema}.{table}) ON COMMIT DROP

-- name: copy
COPY {staging} ({columns}) FROM STDIN

-- name: drop_staging
-- (Dropped at the commit anyway; said for warehouses whose temporary tables outlive it. Only
-- the session's own: a table of that name elsewhere on the search path is not touched.)
DROP TABLE IF EXISTS pg_temp.{staging}

-- name: drop_merged
DROP TABLE IF EXISTS pg_temp.{merged}

-- name: delete_loaded
-- Rows of the ids being loaded go first: a row loaded again (a retried load, an event sent
-- twice) replaces the one before instead of doubling it.
DELETE FROM {schema}.{table} t USING {staging} s WHERE t.{id} = s.{id}

-- name: insert_latest
-- One row per id: the last received. (`{stamped}`: the columns, then the load time's;
-- `{stamps}`: the load time for each of those.)
INSERT INTO {schema}.{table} ({stamped})
SELECT DISTINCT ON ({id}) {columns}{stamps} FROM {staging}
ORDER BY {id}, {received_at} DESC NULLS LAST

-- name: insert_all
INSERT INTO {schema}.{table} ({stamped}) SELECT {columns}{stamps} FROM {staging}

-- name: insert_new
-- Rows without an id (discards, identity merge rules) are loaded once: only those the table
-- does not have yet. (`{same}`: each key column the same.)
INSERT INTO {schema}.{table} ({stamped})
SELECT {columns}{stamps} FROM (SELECT DISTINCT {columns} FROM {staging}) s
WHERE NOT EXISTS (SELECT 1 FROM {schema}.{table} t WHERE {same})

-- name: merge_users
-- A user's row holds, per column, the latest value that is not null: across the row the
-- warehouse has and the new ones, by received_at.
CREATE TEMPORARY TABLE {merged} ON COMMIT DROP AS
SELECT {id}, {latest}
FROM (
    SELECT {columns} FROM {schema}.{table} WHERE {id} IN (SELECT {id} FROM {staging})
    UNION ALL
    SELECT {columns} FROM {staging}
) u
GROUP BY {id}

-- name: replace_users
DELETE FROM {schema}.{table} WHERE {id} IN (SELECT {id} FROM {merged})

-- name: insert_users
INSERT INTO {schema}.{table} ({stamped}) SELECT {columns}{stamps} FROM {merged}
