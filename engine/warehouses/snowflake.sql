-- The Snowflake warehouse (engine/warehouses/snowflake.py). `{slots}` are quoted identifiers;
-- literals (`{namespace}`) are quoted by the module.

-- name: current_database
-- The database as Snowflake names it (`analytics`, unquoted, is ANALYTICS); none when it
-- does not exist or the role may not use it.
SELECT CURRENT_DATABASE()

-- name: tables
SELECT c.table_name, c.column_name, c.data_type
FROM {database}.information_schema.columns c
JOIN {database}.information_schema.tables t
  ON t.table_schema = c.table_schema AND t.table_name = c.table_name
WHERE c.table_schema = {namespace} AND t.table_type = 'BASE TABLE'
ORDER BY c.table_name, c.ordinal_position

-- name: create_schema
CREATE SCHEMA IF NOT EXISTS {database}.{schema}

-- name: create_table
CREATE TABLE IF NOT EXISTS {database}.{schema}.{table} ({columns})

-- name: add_column
ALTER TABLE {database}.{schema}.{table} ADD COLUMN IF NOT EXISTS {column} {type}

-- name: use_schema
-- Temporary tables and stages live in the session's schema.
USE SCHEMA {database}.{schema}

-- name: create_stage
CREATE TEMPORARY STAGE IF NOT EXISTS {stage}

-- name: staging_table
-- The load's columns, in the files' order.
CREATE OR REPLACE TEMPORARY TABLE {staging} ({typed})

-- name: put
PUT {file} {folder} AUTO_COMPRESS = FALSE SOURCE_COMPRESSION = GZIP

-- name: copy
-- The load's files, removed from the stage once read. (NULL_IF = (): a text `\N` is that
-- text; a null is an empty field, a quoted empty one an empty text.)
COPY INTO {staging} FROM {folder}
FILE_FORMAT = (TYPE = CSV FIELD_OPTIONALLY_ENCLOSED_BY = '"' ESCAPE_UNENCLOSED_FIELD = NONE
               NULL_IF = () COMPRESSION = GZIP)
PURGE = TRUE

-- name: merge_latest
-- One row per id: the last received, replacing the row of that id the table has.
MERGE INTO {database}.{schema}.{table} t
USING (
    SELECT {columns} FROM {staging}
    QUALIFY ROW_NUMBER() OVER (PARTITION BY {id} ORDER BY {received_at} DESC NULLS LAST) = 1
) s
ON t.{id} = s.{id}
WHEN MATCHED THEN UPDATE SET {updates}
WHEN NOT MATCHED THEN INSERT ({stamped}) VALUES ({inserted})

-- name: merge_users
-- A user's row holds, per column, the latest value that is not null: across the row the
-- warehouse has and the new ones, by received_at.
CREATE OR REPLACE TEMPORARY TABLE {merged} AS
SELECT {columns} FROM (
    SELECT {id}, {latest},
           ROW_NUMBER() OVER (PARTITION BY {id} ORDER BY {received_at} DESC NULLS LAST) AS sluice_rank
    FROM (
        SELECT {columns} FROM {database}.{schema}.{table} WHERE {id} IN (SELECT {id} FROM {staging})
        UNION ALL
        SELECT {columns} FROM {staging}
    ) u
) m
WHERE sluice_rank = 1

-- name: replace_users
MERGE INTO {database}.{schema}.{table} t
USING {merged} s
ON t.{id} = s.{id}
WHEN MATCHED THEN UPDATE SET {updates}
WHEN NOT MATCHED THEN INSERT ({stamped}) VALUES ({inserted})

-- name: insert_new
-- Rows without an id are loaded once: only those the table does not have yet.
INSERT INTO {database}.{schema}.{table} ({stamped})
SELECT {columns}{stamps} FROM (SELECT DISTINCT {columns} FROM {staging}) s
WHERE NOT EXISTS (SELECT 1 FROM {database}.{schema}.{table} t WHERE {same})

-- name: insert_all
INSERT INTO {database}.{schema}.{table} ({stamped}) SELECT {columns}{stamps} FROM {staging}

-- name: drop_staging
DROP TABLE IF EXISTS {staging}

-- name: drop_merged
DROP TABLE IF EXISTS {merged}
