"""`sluice warehouse`: what the warehouse destinations make of events, how their loads go,
and a load now."""

import argparse
import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import msgspec
import yaml

from engine import codec
from engine.control import warehouses
from engine.control.changes import CLI, Changes
from engine.db import connection
from engine.errors import ConfigError, SluiceError
from engine.warehouses import javascript, names, rows, uploads


def preview_command(args: argparse.Namespace) -> str:
    """The rows an event becomes in a warehouse, as JSON (`[{"table", "columns", "data"}]`)."""
    provider = names.provider(args.type)
    try:
        event = codec.decode(args.event.read_bytes())
    except msgspec.DecodeError as exc:
        raise ConfigError(str(args.event), f"not valid JSON: {exc}") from None
    options = _options(args.options) if args.options else rows.Options()
    found = rows.rows(event, provider, options)
    # Numbers as RudderStack writes them (1.0 is 1), then indented for reading.
    shown = javascript.stringify(msgspec.to_builtins(found))
    return msgspec.json.format(shown.encode()).decode()


def _options(path: Any) -> rows.Options:
    """A conformance case's `options` object: `destination_config`, `request_query`,
    `metadata` (its `provider_code` is --type's to say)."""
    try:
        loaded = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(str(path), f"not valid JSON or YAML: {exc}") from None
    if not isinstance(loaded, dict):
        raise ConfigError(str(path), "must hold an object with destination_config, "
                          "request_query and metadata")  # fmt: skip
    loaded.pop("provider_code", None)
    try:
        return msgspec.convert(loaded, rows.Options)
    except msgspec.ValidationError as exc:
        raise ConfigError(str(path), str(exc)) from None


async def sync_command(args: argparse.Namespace, url: str) -> str:
    """Ask for a load now, wait for the worker's load stage to answer, show the outcome."""
    async with connection(url) as conn:
        destination = await Changes(conn, CLI).sync_warehouse(args.destination)
        await conn.commit()
    if args.wait <= 0:
        return f"a load of {args.destination} is asked for: the worker starts it within seconds"
    deadline = time.monotonic() + args.wait
    async with connection(url, autocommit=True) as conn:
        while not await warehouses.sync_answered(conn, destination):
            if time.monotonic() > deadline:
                raise SluiceError(
                    f"no worker answered within {args.wait:.0f} s (is a worker with its load "
                    "stage running on the host that staged the events?); the sync stays asked "
                    "for and happens when one runs"
                )
            await asyncio.sleep(0.5)
        shown = await warehouses.named(conn, args.destination)
    return _text([shown], loads=5)


async def status_command(args: argparse.Namespace, url: str) -> str:
    async with connection(url) as conn:
        if args.destination:
            found = [await warehouses.named(conn, args.destination)]
        else:
            found = await warehouses.every(conn)
    if args.json:
        return msgspec.json.format(msgspec.json.encode(found)).decode()
    if not found:
        return "no warehouse destinations"
    return _text(found, loads=10)


def _text(found: list[warehouses.Warehouse], loads: int) -> str:
    lines: list[str] = []
    for w in found:
        every = "?" if w.sync_minutes is None else f"{w.sync_minutes:g} min"
        state = "" if w.enabled else ", disabled"
        lines.append(f"{w.name} ({w.type}, loads every {every}{state})")
        if w.staged.events:
            lines.append(f"  waiting: {w.staged.events} event(s) in {w.staged.files} staged "
                         f"file(s), the oldest {_ago(w.lag_seconds)} old")  # fmt: skip
        else:
            lines.append("  waiting: nothing")
        if w.sync_requested is not None:
            lines.append(f"  sync asked for at {_when(w.sync_requested)}")
        lines.append(f"  discarded values: {w.discards}")
        lines.append("  loads (latest first):" if w.loads else "  loads: none yet")
        lines.extend(f"    {_load(upload)}" for upload in w.loads[:loads])
        for table in w.schema:
            columns = ", ".join(f"{name} {kind}" for name, kind in sorted(table.columns.items()))
            lines.append(f"  {table.namespace}.{table.table_name}: {columns}")
    return "\n".join(lines)


def _load(upload: uploads.Upload) -> str:
    text = f"#{upload.id} {upload.status}"
    if upload.started_at is not None:
        text += f" {_when(upload.started_at)}"
    if upload.finished_at is not None and upload.started_at is not None:
        text += f" ({(upload.finished_at - upload.started_at).total_seconds():.1f} s)"
    text += f", {upload.events} event(s) into {upload.namespace}"
    if upload.tables:
        text += ": " + ", ".join(f"{t} {n}" for t, n in sorted(upload.tables.items()))
    if upload.status == "failed":
        text += f"; attempt {upload.attempts}"
        if upload.next_attempt_at is not None:
            text += f", next at {_when(upload.next_attempt_at)}"
        text += f"; error: {upload.error}"
    return text


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _ago(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min"
