"""The ingestion gateway: Segment/RudderStack-compatible HTTP API in front of the ingest log."""
