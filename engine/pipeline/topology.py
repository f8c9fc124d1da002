"""The worker's read-only view of the workspace: destinations and who is connected to whom.

Loaded whole (it is small) and swapped atomically when the workspace changes, so one batch of
events is always routed against one consistent picture.
"""

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, NamedTuple
from uuid import UUID

import msgspec

from engine import codec, db
from engine.db import Connection, Pool
from engine.destinations import secrets
from engine.destinations.base import (
    ALL_TYPES,
    BadSettings,
    DestinationType,
    Request,
    decode_request,
)
from engine.destinations.catalog import TYPES
from engine.destinations.filters import EventFilter
from engine.errors import DatabaseError
from engine.pipeline.wakeups import Wakeups
from engine.specs import DeliveryPolicy, DestinationSpec
from engine.sql import Queries

_Q = Queries.beside(__file__, "topology.sql")
log = logging.getLogger(__name__)
UNSAVED = UUID(int=0)  # the id of a destination tried before it is saved (a preview)
_REFRESH = 10.0  # seconds between reloads when no change is announced
_RETRY = 2.0


@dataclass(frozen=True)
class Target:
    """A configured destination as the pipeline uses it: its type's plug-in, its settings parsed,
    which events it takes, its secrets. `problem` says why it cannot be delivered to."""

    id: UUID
    name: str
    type: str
    config: dict[str, Any]
    enabled: bool
    policy: DeliveryPolicy
    plugin: DestinationType | None
    settings: Any
    problem: str | None
    filter: EventFilter
    secrets: tuple[str, ...] = ()  # values in `config` never to be shown
    private: tuple[tuple[str, str], ...] = ()  # values in `config` a request never shows, as shown

    @classmethod
    def of(
        cls,
        spec: DestinationSpec,
        id: UUID = UNSAVED,
        problem: str | None = None,
        retired: Sequence[dict[str, Any]] = (),
    ) -> "Target":
        """The destination a spec configures (`problem`: one found before, which a problem of
        its type or settings comes before; `retired`: the settings it had before, whose
        secrets jobs made under them hold)."""
        plugin = TYPES.get(spec.type)
        settings = None
        if plugin is None:
            problem = f"this version of Sluice cannot deliver to {spec.type} destinations yet"
        else:
            try:
                settings = plugin.parse_settings(spec.config)
            except BadSettings as exc:
                problem = str(exc)
        return cls(
            id, spec.name, spec.type, spec.config, spec.enabled, spec.delivery, plugin,
            settings, problem,
            EventFilter.of(spec.config, plugin.supported_types, plugin.declines)
            if plugin else EventFilter.of(spec.config, ALL_TYPES),
            tuple(found for c in (spec.config, *retired) for found in plugin.secrets(c))
            if plugin else (),
            tuple(plugin.private_values(spec.config)) if plugin else (),
        )  # fmt: skip

    def mask(self, text: str) -> str:
        return secrets.masked(text, self._secret_forms)

    def mask_text(self, text: str) -> str:
        """Free text (a vendor's answer, an error) as anyone may see it: no secret, nor any of
        the settings' private values — a URL's query values among them — which an answer may
        echo (a debugging endpoint repeats the request it got)."""
        return secrets.masked(text, self._text_forms)

    @cached_property
    def _secret_forms(self) -> tuple[str, ...]:
        return secrets.forms(self.secrets)

    @cached_property
    def _text_forms(self) -> tuple[str, ...]:
        return secrets.forms((*self.secrets, *self._private_texts))

    @cached_property
    def _private_texts(self) -> tuple[str, ...]:
        found = [text for text, _ in self.private]
        for text in found[:]:
            found += secrets.query_values(text) if "://" in text else []
        return tuple(found)

    def masked(self, request: Request) -> Request:
        """A request as anyone may see it: no secret anywhere, and the URL and headers without
        the settings' private values (the event's own data, its body, left as it is)."""
        url, headers = request.url, dict(request.headers)
        for text, shown in self.private:  # (a configured URL begins the request's)
            url = shown + url[len(text) :] if "://" in text and url.startswith(text) else url
            headers = {name: shown if value == text else value for name, value in headers.items()}
        private = msgspec.structs.replace(request, url=url, headers=headers)
        return decode_request(self.mask(codec.encode(private).decode()))

    def shown(self, stored: str) -> str:
        """A stored request (JSON text) as anyone may see it (`masked`); text that is not a
        request, its secrets masked."""
        try:
            request = decode_request(stored)
        except msgspec.DecodeError:
            return self.mask(stored)
        return codec.encode(self.masked(request)).decode()


@dataclass(frozen=True)
class Route:
    target: Target
    transformation_id: UUID | None
    transformation_version: int | None


@dataclass(frozen=True)
class Topology:
    targets: dict[UUID, Target]
    routes: dict[UUID, list[Route]]  # by source id
    sources: dict[UUID, str] = field(default_factory=dict)  # source id → name

    def routes_of(self, source_id: UUID) -> list[Route]:
        return self.routes.get(source_id, [])

    def names(self) -> dict[UUID, str]:
        return {t.id: t.name for t in self.targets.values()}


@dataclass(frozen=True)
class _Destination:
    """A destinations row."""

    id: UUID
    name: str
    type: str
    config: dict[str, Any]
    delivery: dict[str, Any]
    enabled: bool
    retired: list[dict[str, Any]]  # its settings before, most recent change last

    def target(self) -> Target:
        try:
            policy, problem = msgspec.convert(self.delivery, DeliveryPolicy), None
        except msgspec.ValidationError as exc:  # (stored by hand, or by another version)
            policy, problem = DeliveryPolicy(), f"delivery settings: {exc}"
        spec = DestinationSpec(self.name, self.type, self.config, self.enabled, policy)
        return Target.of(spec, self.id, problem, self.retired)


@dataclass(frozen=True)
class _Connection:
    source_id: UUID
    destination_id: UUID
    transformation_id: UUID | None
    transformation_version: int | None


class _Source(NamedTuple):
    id: UUID
    name: str


async def load(conn: Connection) -> Topology:
    rows = await db.rows(conn, _Q["destinations"], None, _Destination)
    targets = {row.id: row.target() for row in rows}
    routes: dict[UUID, list[Route]] = {}
    for edge in await db.rows(conn, _Q["connections"], None, _Connection):
        dest = targets.get(edge.destination_id)
        if dest is not None and dest.enabled:
            routes.setdefault(edge.source_id, []).append(
                Route(dest, edge.transformation_id, edge.transformation_version)
            )
    sources = {row.id: row.name for row in await db.tuples(conn, _Q["sources"], None, _Source)}
    return Topology(targets, routes, sources)


async def named(conn: Connection, name: str) -> Target | None:
    """The destination of this name, as the pipeline would use it now; None if there is none."""
    row = await db.row(conn, _Q.compose("destination"), {"name": name}, _Destination)
    return None if row is None else row.target()


class Following:
    """The topology as a worker uses it: loaded at start, loaded again when the workspace
    changes (a wake-up) and every few seconds regardless, and handed to whoever follows it."""

    def __init__(self, pool: Pool, wakeups: Wakeups) -> None:
        self._pool = pool
        self._wakeups = wakeups
        self.current = Topology({}, {})
        self._changed = asyncio.Event()
        self._followers: set[Callable[[Topology], None]] = set()

    def topology(self) -> Topology:
        """The topology loaded last (a batch takes it once and routes all its events by it)."""
        return self.current

    def names(self) -> dict[UUID, str]:
        """Destination id → name, as of now (metrics are labelled by name)."""
        return self.current.names()

    async def first(self, stop: asyncio.Event) -> bool:
        """Load it, waiting for the database as long as it takes; False when `stop` came first."""
        while not stop.is_set():
            try:
                await self._load()
                return True
            except DatabaseError as exc:
                log.warning("worker waiting for the database: %s", exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), _RETRY)
        return False

    async def follow(self) -> None:
        """Load it again on each change and every `_REFRESH` s; runs until cancelled."""
        with self._wakeups.on_workspace(self._changed.set):
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), _REFRESH)
                self._changed.clear()
                try:
                    await self._load()
                except DatabaseError as exc:
                    log.warning("worker cannot reload the workspace: %s", exc)
                    continue
                except Exception:  # keep following: the next reload may well work
                    log.exception("worker cannot reload the workspace")
                    continue
                for follower in list(self._followers):
                    follower(self.current)

    @contextmanager
    def followed_by(self, follower: Callable[[Topology], None]) -> Iterator[None]:
        """While the block runs, `follower` is given each topology loaded."""
        self._followers.add(follower)
        try:
            yield
        finally:
            self._followers.discard(follower)

    async def _load(self) -> None:
        async with db.borrowed(self._pool) as conn:
            self.current = await load(conn)
