"""Logging for every role: one line per record, to stderr (the journal under systemd)."""

import logging


def configure(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # psycopg's pool logs each failed reconnection attempt; our own warnings say it once.
    logging.getLogger("psycopg.pool").setLevel(logging.ERROR)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # apscheduler logs every run of every job at INFO.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
