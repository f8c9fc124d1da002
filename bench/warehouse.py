"""Warehouse load benchmark: a staged backlog of mixed call types loaded into PostgreSQL (or
ClickHouse).

Starts a private PostgreSQL (unless --database-url is given) that plays the warehouse, on this
machine. First stages --events events the way the worker does (each mapped to its rows, then
filed by table in 10,000-event files), reporting that rate: the processing side of a warehouse.
Then times one load of the whole backlog into a fresh schema — tables created, rows copied and
merged, users merged — and reports rows/s and events/s, checking that every event is there
once. `--twice` loads the same backlog a second time into the tables it just filled (every row
replaced: a retried load's cost). `--clickhouse URL` loads into a fresh database of the
ClickHouse server at `http://user:password@host:port` instead.

    python -m bench.warehouse [--events 1000000] [--sessions 2] [--twice] [--clickhouse URL]
"""

import argparse
import asyncio
import contextlib
import random
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import msgspec
import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from bench.harness import database
from engine.destinations.catalog import TYPES
from engine.warehouses import loader, rows, staging
from engine.warehouses.warehouse import WarehouseKind

PER_FILE = 10_000  # events per staged file, as the batch router's default `file_events`
DESTINATION = uuid.UUID(int=1)
SOURCE = uuid.UUID(int=2)
EVENTS = [
    "Product Viewed",
    "Product Added",
    "Checkout Started",
    "Order Completed",
    "Signed Up",
    "Logged In",
    "Search",
    "Video Played",
    "Coupon Applied",
    "Share",
]


def events(count: int) -> Iterator[dict[str, Any]]:
    """Mixed traffic: half track (ten event names), identify, page, screen, group, alias."""
    pick = random.Random(7)
    start = datetime(2024, 3, 1, tzinfo=UTC)
    for n in range(count):
        user = f"user-{pick.randrange(count // 20 + 1)}"
        at = (start + timedelta(milliseconds=n)).isoformat(timespec="milliseconds")
        base = {
            "messageId": f"m-{n}",
            "userId": user,
            "anonymousId": f"anon-{user}",
            "receivedAt": at,
            "sentAt": at,
            "timestamp": at,
            "originalTimestamp": at,
            "channel": "web",
            "request_ip": "203.0.113.9",
            "context": {
                "library": {"name": "analytics.js", "version": "3.7.0"},
                "page": {"path": "/shop", "url": "https://shop.example.com/shop"},
                "userAgent": "Mozilla/5.0 (X11; Linux x86_64)",
                "locale": "en-US",
                "ip": "203.0.113.9",
                "screen": {"width": 1920, "height": 1080},
            },
        }
        kind = pick.random()
        if kind < 0.5:
            yield {
                **base,
                "type": "track",
                "event": EVENTS[n % len(EVENTS)],
                "properties": {
                    "product_id": f"sku-{n % 500}",
                    "price": 19.99 + n % 7,
                    "quantity": 1 + n % 3,
                    "currency": "USD",
                    "in_stock": True,
                },
            }
        elif kind < 0.65:
            yield {
                **base,
                "type": "identify",
                "traits": {
                    "email": f"{user}@example.com",
                    "plan": ("free", "pro")[n % 2],
                    "logins": n % 40,
                    "created_at": at,
                },
            }
        elif kind < 0.85:
            yield {
                **base,
                "type": "page",
                "name": "Shop",
                "properties": {"title": "Shop", "referrer": "https://search.example"},
            }
        elif kind < 0.92:
            yield {**base, "type": "screen", "name": "Cart", "properties": {"items": n % 5}}
        elif kind < 0.97:
            yield {
                **base,
                "type": "group",
                "groupId": f"org-{n % 100}",
                "traits": {"name": f"Org {n % 100}", "employees": n % 1000},
            }
        else:
            yield {**base, "type": "alias", "previousId": f"anon-{user}"}


def stage(root: Path, count: int, kind: WarehouseKind, destination: uuid.UUID = DESTINATION,
          source: uuid.UUID = SOURCE) -> tuple[int, float]:  # fmt: skip
    """The backlog staged as the worker stages it; (rows, seconds)."""
    provider = kind.provider
    options = rows.Options(
        {},
        {},
        {"sourceId": str(source), "destinationId": str(destination), "destinationType": provider},
    )
    encode = msgspec.json.Encoder().encode
    started = time.perf_counter()
    made, lines = 0, []
    for n, event in enumerate(events(count)):
        found = rows.rows(event, provider, options)
        made += len(found)
        lines.append(encode([msgspec.to_builtins(row) for row in found]))
        if len(lines) == PER_FILE or n == count - 1:
            staging.write(root, destination, f"{source}/{n:012d}", b"\n".join(lines) + b"\n")
            lines = []
    return made, time.perf_counter() - started


async def load(kind: WarehouseKind, settings: Any, namespace: str, root: Path,
               sessions: int) -> tuple[loader.Loaded, float]:  # fmt: skip
    files = staging.pending(root, DESTINATION)
    started = time.perf_counter()
    async with contextlib.AsyncExitStack() as stack:
        opened = [await stack.enter_async_context(kind.open(settings)) for _ in range(sessions)]
        loaded = await loader.load(opened, kind.provider, namespace, files, limits=kind.limits)
    return loaded, time.perf_counter() - started


@dataclass
class Target:
    """The warehouse loaded: its destination type, settings, schema, and how to count the
    `tracks` rows and distinct ids it holds after a load."""

    type: str
    settings: Any
    namespace: str
    tracks: Callable[[], tuple[int, int]]


@contextmanager
def postgres(url: str) -> Iterator[Target]:
    name = f"bench_warehouse_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    parts = conninfo_to_dict(make_conninfo(url, dbname=name))
    settings = {"host": parts["host"], "port": str(parts["port"]), "database": name,
                "user": parts["user"], "password": parts.get("password", "")}  # fmt: skip

    def tracks() -> tuple[int, int]:
        with psycopg.connect(make_conninfo(url, dbname=name)) as conn:
            found = conn.execute("SELECT count(*), count(DISTINCT id) FROM bench.tracks")
            return found.fetchone() or (0, 0)

    yield Target("postgres", settings, "bench", tracks)


@contextmanager
def clickhouse(url: str) -> Iterator[Target]:
    where = httpx.URL(url)
    name = f"bench_warehouse_{uuid.uuid4().hex[:8]}"
    settings = {"host": where.host, "port": str(where.port or 8123), "database": name,
                "user": where.username or "default", "password": where.password or ""}  # fmt: skip
    auth = (settings["user"], settings["password"])
    base = f"http://{where.host}:{settings['port']}/"

    def query(text: str) -> str:
        answer = httpx.post(base, content=text.encode(), auth=auth, timeout=600)
        answer.raise_for_status()
        return answer.text

    def tracks() -> tuple[int, int]:
        count, distinct = query(f"SELECT count(), uniqExact(id) FROM {name}.tracks").split()
        return int(count), int(distinct)

    try:
        yield Target("clickhouse", settings, name, tracks)
    finally:
        query(f"DROP DATABASE IF EXISTS {name}")


def run(args: argparse.Namespace, root: Path, target: Target) -> None:
    plugin = TYPES[target.type]
    kind = plugin.warehouse
    assert kind is not None
    made, took = stage(root, args.events, kind)
    print(
        f"staged {args.events:,} events as {made:,} rows in {took:.1f} s "
        f"({args.events / took:,.0f} events/s on one core: the processing side)"
    )
    settings = msgspec.convert(target.settings, plugin.settings)
    for round_ in range(2 if args.twice else 1):
        loaded, took = asyncio.run(load(kind, settings, target.namespace, root, args.sessions))
        total = sum(n for t, n in loaded.tables.items() if t != "rudder_discards")
        what = "first load" if round_ == 0 else "again (the same rows: a retried load)"
        print(
            f"{what}: {total:,} rows into {len(loaded.tables)} tables of {kind.provider} "
            f"({args.sessions} at a time) "
            f"in {took:.1f} s = {total / took:,.0f} rows/s, {args.events / took:,.0f} events/s"
        )
    count, distinct = target.tracks()
    print(
        f"check: tracks has {count:,} rows, {distinct:,} distinct ids "
        f"({'ok' if count == distinct else 'DUPLICATES'})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--sessions", type=int, default=2, choices=range(1, 9), metavar="1-8",
                        help="tables loaded at once (the worker loads a warehouse on its own "
                             "2-core machine one at a time)")  # fmt: skip
    parser.add_argument("--twice", action="store_true", help="load the backlog a second time")
    parser.add_argument("--database-url", help="an existing PostgreSQL (default: a private one)")
    parser.add_argument("--clickhouse", metavar="URL",
                        help="load into ClickHouse at http://user:password@host:port")  # fmt: skip
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="sluice-bench-staging-"))
    try:
        if args.clickhouse:
            with clickhouse(args.clickhouse) as target:
                run(args, root, target)
        else:
            with database(args.database_url) as url, postgres(url) as target:
                run(args, root, target)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
