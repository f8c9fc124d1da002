"""The `sluice` command."""

import argparse
import asyncio
import sys
from pathlib import Path

from pydantic import ValidationError

from appliance import logs, roles
from appliance.embedded import EmbeddedPostgres
from appliance.settings import Settings
from engine import migrate, workspace
from engine.db import connection
from engine.errors import SluiceError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sluice",
        description="Sluice: a self-hosted customer event data platform.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser(
        "run",
        help="run every role on this host; starts an embedded PostgreSQL when "
        "SLUICE_DATABASE_URL is not set",
    )
    sub.add_parser("gateway", help="run the ingestion gateway (SDKs send events here)")
    sub.add_parser(
        "worker",
        help="run the delivery worker (placeholder: idles until the pipeline lands)",
    )
    sub.add_parser("web", help="run the web control plane (placeholder: idles until the UI lands)")
    sub.add_parser("migrate", help="bring the database schema up to date")

    config = sub.add_parser("config", help="workspace configuration as a file")
    config_sub = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    apply = config_sub.add_parser("apply", help="create or update entries by name from FILE")
    apply.add_argument("file", type=Path, help="YAML or JSON workspace file")
    export = config_sub.add_parser("export", help="print the workspace configuration")
    export.add_argument("--format", choices=("yaml", "json"), default="yaml")

    gen = sub.add_parser("generate-events", help="send realistic test traffic to a gateway")
    gen.add_argument("--write-key", required=True)
    gen.add_argument("--url", default="http://127.0.0.1:8080")
    gen.add_argument("--count", type=int, default=100, help="events to send (default 100)")
    gen.add_argument("--users", type=int, default=10, help="distinct users (default 10)")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    try:
        settings = Settings()
    except (ValidationError, FileNotFoundError) as exc:
        sys.exit(f"sluice: bad configuration: {exc}")
    logs.configure(settings.log_level)
    try:
        _run(args, settings)
    except (SluiceError, OSError) as exc:
        sys.exit(f"sluice: {exc}")


def _run(args: argparse.Namespace, settings: Settings) -> None:
    match args.command:
        case "run":
            from appliance.supervisor import run_all

            run_all(settings)
        case "gateway":
            roles.serve_gateway(settings)
        case "worker":
            roles.idle("worker", "the delivery pipeline lands with issue #3")
        case "web":
            roles.idle("web", "the control plane lands with issue #7")
        case "migrate":
            applied = asyncio.run(migrate.apply(_database_url(settings)))
            print(f"applied {len(applied)} migration(s)" if applied else "schema is up to date")
        case "config":
            asyncio.run(_config(args, _database_url(settings)))
        case "generate-events":
            from appliance.generator import generate

            sent = generate(args.url, args.write_key, count=args.count, users=args.users)
            print(f"sent {sent} events to {args.url}")


def _database_url(settings: Settings) -> str:
    """The configured database, else the embedded one a `sluice run` on this host set up."""
    if settings.database_url:
        return settings.database_url
    embedded = EmbeddedPostgres(settings.data_dir, settings.embedded_db_port)
    if embedded.initialised:
        return embedded.url
    sys.exit("sluice: SLUICE_DATABASE_URL is not set and `sluice run` has no embedded database")


async def _config(args: argparse.Namespace, url: str) -> None:
    async with connection(url) as conn:
        if args.config_command == "export":
            print(workspace.dump(await workspace.export(conn), args.format), end="")
            return
        spec = workspace.parse(args.file.read_text())
        report = await workspace.apply(conn, spec)
    for kind, name, action in report.changes:
        print(f"{kind:<15} {name:<30} {action}")
    for name, key in report.new_write_keys.items():
        print(f"source {name!r} write key: {key}")
