"""`sluice warehouse`: what the warehouse destinations make of events."""

import argparse
from typing import Any

import msgspec
import yaml

from engine import codec
from engine.errors import ConfigError
from engine.warehouses import javascript, names, rows


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
