"""Warehouse destinations: events as rows in the customer's own PostgreSQL, Redshift,
Snowflake, BigQuery or ClickHouse, in RudderStack's schema."""
