-- The ClickHouse warehouse (engine/warehouses/clickhouse.py). `{slots}` are filled with quoted
-- identifiers and string literals; ClickHouse 18 has no query parameters.

-- name: version
SELECT version()

-- name: tables
SELECT table, name, type FROM system.columns
WHERE database = {namespace}
ORDER BY table

-- name: create_database
CREATE DATABASE IF NOT EXISTS {database}

-- name: create_events
-- An event table: one row per id (the load makes sure of it), kept sorted by time.
CREATE TABLE IF NOT EXISTS {database}.{table} ({columns})
ENGINE = ReplacingMergeTree() PARTITION BY {partition} ORDER BY ({received_at}, {id})

-- name: create_users
-- The users table: a merge writes a user's whole row again, which replaces the one before
-- (read it with FINAL, or argMax, to see one row per user before ClickHouse merges parts).
CREATE TABLE IF NOT EXISTS {database}.{table} ({columns})
ENGINE = ReplacingMergeTree() ORDER BY {id}

-- name: create_plain
-- Rows without an id (rudder_discards): loaded once each by comparing them (insert_new).
CREATE TABLE IF NOT EXISTS {database}.{table} ({columns})
ENGINE = MergeTree() ORDER BY tuple()

-- name: add_column
ALTER TABLE {database}.{table} ADD COLUMN {column} {type}

-- name: staging_table
CREATE TEMPORARY TABLE {staging} AS {database}.{table}

-- name: drop_staging
DROP TEMPORARY TABLE IF EXISTS {staging}

-- name: insert_staging
INSERT INTO {staging} ({columns}) FORMAT TabSeparated

-- name: insert_table
INSERT INTO {database}.{table} ({stamped}) FORMAT TabSeparated

-- name: insert_latest
-- One row per id, the last received, and none of an id the table already has at a time within
-- the load's (a load tried again has the same times): a load tried again, or an event staged
-- twice, never doubles a row. The times let the sort key skip the rest of the table.
INSERT INTO {database}.{table} ({stamped})
SELECT {columns}{stamps} FROM {staging}
WHERE {id} NOT IN (
    SELECT {id} FROM {database}.{table}
    WHERE {received_at} >= (SELECT min({received_at}) FROM {staging})
      AND {received_at} <= (SELECT max({received_at}) FROM {staging})
      AND {id} IN (SELECT {id} FROM {staging})
)
ORDER BY {id}, {received_at} DESC
LIMIT 1 BY {id}

-- name: insert_users
-- A user's row holds, per column, the latest value that is not null (aggregate functions
-- skip nulls): across the rows the table has for the user and the new ones, by received_at
-- (as `{by}`: the aggregates' own names are the columns').
INSERT INTO {database}.{table} ({stamped})
SELECT {latest}{stamps}
FROM (
    SELECT {columns}, {received_at} AS {by} FROM {database}.{table}
    WHERE {id} IN (SELECT {id} FROM {staging})
    UNION ALL
    SELECT {columns}, {received_at} AS {by} FROM {staging}
)
GROUP BY {id}

-- name: insert_new
-- Rows without an id are loaded once: only those the table does not have yet.
INSERT INTO {database}.{table} ({stamped})
SELECT DISTINCT {columns}{stamps} FROM {staging}
WHERE ({key}) NOT IN (SELECT {key} FROM {database}.{table})
