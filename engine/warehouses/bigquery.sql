-- The BigQuery warehouse (engine/warehouses/bigquery.py). `{slots}` are quoted names;
-- literals (`{now}`) are quoted by the module.

-- name: tables
-- The dataset's tables and views, with each table's columns in order (but the pseudo-columns
-- of its partitioning, which BigQuery lists too).
SELECT t.table_name, t.table_type, c.column_name, c.data_type
FROM {dataset}.INFORMATION_SCHEMA.TABLES AS t
LEFT JOIN {dataset}.INFORMATION_SCHEMA.COLUMNS AS c
  ON c.table_name = t.table_name AND t.table_type = 'BASE TABLE'
     AND c.column_name NOT IN ('_PARTITIONTIME', '_PARTITIONDATE')
ORDER BY t.table_name, c.ordinal_position

-- name: make_view
-- What to query: one row per id (per key), the last loaded. The table keeps every row
-- loaded, as RudderStack's do: a load is appended, never merged in place.
CREATE OR REPLACE VIEW {view} AS
SELECT * EXCEPT (sluice_row_number) FROM (
    SELECT *, ROW_NUMBER() OVER (PARTITION BY {key}{order}) AS sluice_row_number
    FROM {table}
)
WHERE sluice_row_number = 1

-- name: merge_users
-- A user's row holds, per column, the latest value that is not null: across the rows the
-- table has for the user and the new ones, by received_at; appended as the user's newest row.
INSERT INTO {table} ({stamped})
SELECT {columns}{stamps} FROM (
    SELECT {id}, {latest},
           ROW_NUMBER() OVER (PARTITION BY {id} ORDER BY {received_at} DESC NULLS LAST) AS sluice_rank
    FROM (
        SELECT {columns} FROM {table} WHERE {id} IN (SELECT {id} FROM {staging})
        UNION ALL
        SELECT {columns} FROM {staging}
    )
)
WHERE sluice_rank = 1
