-- The Redshift warehouse (engine/warehouses/redshift.py): only what Redshift says otherwise
-- than PostgreSQL (postgres.sql has the rest). `{slots}` are identifiers and literals.

-- name: create_table
-- Rows of one id on one slice, sorted by time (RudderStack's keys).
CREATE TABLE IF NOT EXISTS {schema}.{table} ({columns}) {distribution} SORTKEY({sort})

-- name: add_column
ALTER TABLE {schema}.{table} ADD COLUMN {column} {type}

-- name: staging_table
CREATE TEMPORARY TABLE {staging} (LIKE {schema}.{table})

-- name: copy
-- The load's files, listed in a manifest in S3. (EMPTYASNULL: an empty field is a null, as
-- in RudderStack's tables; TRUNCATECOLUMNS: text past varchar(65535) bytes is cut.)
COPY {staging} ({columns}) FROM {manifest} {credentials} {region}
MANIFEST CSV GZIP TIMEFORMAT 'auto' EMPTYASNULL TRUNCATECOLUMNS FILLRECORD ACCEPTINVCHARS
COMPUPDATE OFF STATUPDATE OFF

-- name: delete_loaded
-- Rows of the ids being loaded go first (Redshift takes no alias for the table deleted from).
DELETE FROM {schema}.{table} USING {staging} s WHERE {schema}.{table}.{id} = s.{id}

-- name: drop_staging
DROP TABLE IF EXISTS {staging}

-- name: drop_merged
DROP TABLE IF EXISTS {merged}

-- name: insert_latest
-- One row per id: the last received (Redshift has no DISTINCT ON).
INSERT INTO {schema}.{table} ({stamped})
SELECT {columns}{stamps} FROM (
    SELECT {columns},
           ROW_NUMBER() OVER (PARTITION BY {id} ORDER BY {received_at} DESC NULLS LAST) AS sluice_rank
    FROM {staging}
) s
WHERE sluice_rank = 1

-- name: merge_users
-- A user's row holds, per column, the latest value that is not null: across the row the
-- warehouse has and the new ones, by received_at (`{latest}`: a window per column).
CREATE TEMPORARY TABLE {merged} AS
SELECT {columns} FROM (
    SELECT {id}, {latest},
           ROW_NUMBER() OVER (PARTITION BY {id} ORDER BY {received_at} DESC NULLS LAST) AS sluice_rank
    FROM (
        SELECT {columns} FROM {schema}.{table} WHERE {id} IN (SELECT {id} FROM {staging})
        UNION ALL
        SELECT {columns} FROM {staging}
    ) u
) m
WHERE sluice_rank = 1
