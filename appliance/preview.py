"""`sluice preview`: the request(s) a destination would be sent for an event, or the batches
for a list of events, as JSON."""

import argparse
from pathlib import Path
from typing import Any

import msgspec
import yaml

from engine import codec
from engine.control import preview
from engine.db import connection
from engine.destinations.base import LookupFailed
from engine.pipeline.delivery.lookups import Given


def _load(path: Any, what: str) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise preview.PreviewError(f"{what} {path} is not valid JSON or YAML: {exc}") from None


async def preview_command(args: argparse.Namespace, url: str | None) -> str:
    try:
        event = codec.decode(args.event.read_bytes())
    except msgspec.DecodeError as exc:
        raise preview.PreviewError(f"{args.event} is not valid JSON: {exc}") from None
    if args.destination:
        assert url is not None
        async with connection(url) as conn:
            dest = await preview.destination(conn, args.destination)
    else:
        if args.config is None:
            raise preview.PreviewError("--type needs --config FILE with the destination settings")
        config = _load(args.config, "the config file")
        if not isinstance(config, dict):
            raise preview.PreviewError("the config file must hold a mapping of settings")
        dest = preview.unsaved(args.type, config)
    lookups = _lookups(args.lookups) if args.lookups else None
    if isinstance(event, list):
        if args.validate:
            raise preview.PreviewError("--validate takes one event, not a list")
        batches = await preview.batched(dest, event, args.now, lookups)
        return msgspec.json.format(msgspec.json.encode({"batches": batches})).decode()
    if args.validate:
        shown: Any = await preview.validate(dest, event)
    else:
        shown = await preview.completed(dest, event, args.now, lookups)
    return msgspec.json.format(msgspec.json.encode(shown)).decode()


def _lookups(path: Path) -> Given:
    try:
        return Given(msgspec.json.decode(path.read_bytes()))
    except (msgspec.DecodeError, LookupFailed) as exc:
        raise preview.PreviewError(f"--lookups {path}: {exc}") from None
