"""One LISTEN connection per process, turning notifications into wake-ups.

NOTIFY is only a hint: after (re)connecting every handler runs once, because anything sent
while the connection was down is lost, and the loops it wakes also poll on a timer.
"""

import asyncio
import logging
from collections.abc import Callable

from engine import db
from engine.errors import DatabaseError

log = logging.getLogger(__name__)


class Listener:
    def __init__(self, url: str, handlers: dict[str, Callable[[], None]]) -> None:
        self._url = url
        self._handlers = handlers

    async def run(self) -> None:
        while True:
            try:
                async with db.connection(self._url, autocommit=True) as conn:
                    for channel in self._handlers:
                        await conn.execute(db.naming("LISTEN {channel}", channel=channel))
                    for handler in self._handlers.values():
                        handler()
                    async for note in conn.notifies():
                        self._handlers[note.channel]()
            except DatabaseError as exc:
                log.warning("lost the notification connection, reconnecting: %s", exc)
                await asyncio.sleep(1.0)
