"""The `sluice` command."""

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError

from appliance import certificates, firstrun, logs, options, roles
from appliance.sdk import DEFAULT_VERSIONS, RUDDERSTACK, SEGMENT, SdkInstallError, install_command
from appliance.settings import Settings
from engine import migrate, specs
from engine.control import rudderstack, workspace
from engine.control.accounts import ROLES
from engine.control.changes import CLI, Changes
from engine.db import connection
from engine.errors import ConfigError, SluiceError


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
    worker = sub.add_parser("worker", help="run the delivery worker (processor and routers)")
    worker.add_argument(
        "--stage",
        choices=("process", "deliver", "load"),
        help="run one stage only: processing, delivery or warehouse loads (by default all "
        "run, each in a process of its own unless SLUICE_WORKER_SPLIT=false)",
    )
    sub.add_parser("web", help="run the web control plane (SLUICE_WEB_HOST:SLUICE_WEB_PORT)")
    admin = sub.add_parser("admin", help="control-plane users")
    admin_sub = admin.add_subparsers(dest="admin_command", required=True, metavar="ACTION")
    create_user = admin_sub.add_parser("create-user", help="add a user who can sign in")
    create_user.add_argument("--email", required=True)
    create_user.add_argument("--role", choices=ROLES, required=True)
    create_user.add_argument(
        "--password-stdin", action="store_true", required=True,
        help="read the password from standard input (never from the command line, where "
        "other users of the host could see it)",
    )  # fmt: skip
    sub.add_parser("migrate", help="bring the database schema up to date")
    sub.add_parser(
        "setup",
        help="bring the schema up to date and, on a new installation, make a first source and "
        "a first admin (printing its one-time password)",
    )

    backup = sub.add_parser(
        "backup", help="write the workspace, users and API tokens (secrets included) to FILE"
    )
    backup.add_argument("file", type=Path, help="where to write it (readable by you only)")
    backup.add_argument(
        "--pending", action="store_true",
        help="also the events not processed and the jobs not delivered yet (reads every job)",
    )  # fmt: skip
    restore = sub.add_parser("restore", help="restore what `sluice backup` wrote to FILE")
    restore.add_argument("file", type=Path)

    config = sub.add_parser("config", help="workspace configuration as a file")
    config_sub = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    apply = config_sub.add_parser("apply", help="create or update entries by name from FILE")
    apply.add_argument("file", type=Path, help="YAML or JSON workspace file")
    imported = config_sub.add_parser(
        "import", help="create or update entries from a RudderStack workspaceConfig.json"
    )
    imported.add_argument("file", type=Path, help="RudderStack's workspaceConfig.json")
    export = config_sub.add_parser("export", help="print the workspace configuration")
    export.add_argument("--format", choices=("yaml", "json"), default="yaml")

    failed = sub.add_parser("failed", help="events a destination refused or never took")
    failed_sub = failed.add_subparsers(dest="failed_command", required=True, metavar="ACTION")
    listing = failed_sub.add_parser("list", help="list aborted jobs, oldest first")
    listing.add_argument("--limit", type=int, default=1000)
    listing.add_argument("--json", action="store_true", help="one JSON object per line, in full")
    replay = failed_sub.add_parser(
        "replay", help="send aborted events again, with the destinations' current settings"
    )
    discard = failed_sub.add_parser(
        "discard", help="give up on aborted events for good: they leave the list, never sent"
    )
    for action in (listing, replay, discard):
        action.add_argument("--destination", metavar="NAME")
        action.add_argument("--since", type=_timestamp, metavar="ISO")
        action.add_argument("--job", type=int, action="append", metavar="ID",
                            help="only this job (as listed); repeat for more")  # fmt: skip

    rejected = sub.add_parser(
        "rejected", help="messages the gateway refused (over the size limit), newest first"
    )
    rejected.add_argument("--source", metavar="NAME")
    rejected.add_argument("--limit", type=int, default=100)
    rejected.add_argument("--json", action="store_true", help="one JSON object per line, in full")

    status = sub.add_parser(
        "status", help="the Sluice processes on every host, and what waits in the gateway spool"
    )
    status.add_argument("--json", action="store_true")

    replay_archive = sub.add_parser(
        "replay", help="send a source's archived events (SLUICE_ARCHIVE_BUCKET) through again"
    )
    replay_archive.add_argument("--source", metavar="NAME", required=True)
    replay_archive.add_argument(
        "--from",
        dest="since",
        type=_timestamp,
        metavar="ISO",
        required=True,
        help="first receivedAt to replay (inclusive)",
    )
    replay_archive.add_argument(
        "--to",
        dest="until",
        type=_timestamp,
        metavar="ISO",
        required=True,
        help="receivedAt to stop at (exclusive)",
    )
    replay_archive.add_argument(
        "--destination", metavar="NAME", help="only this destination (default: every one "
        "connected to the source)",
    )  # fmt: skip

    preview = sub.add_parser(
        "preview", help="print the request(s) a destination would be sent, without sending"
    )
    preview.add_argument(
        "--event", type=Path, required=True,
        help="a JSON file: one event, or a list of events to see how the router batches them",
    )  # fmt: skip
    which = preview.add_mutually_exclusive_group(required=True)
    which.add_argument("--destination", metavar="NAME", help="a configured destination")
    which.add_argument("--type", metavar="TYPE", help="a destination type, with --config")
    preview.add_argument("--config", type=Path, help="destination settings (JSON or YAML)")
    preview.add_argument(
        "--lookups", type=Path, metavar="FILE",
        help="answers to the look-ups a mapping makes (HubSpot, Intercom) instead of asking the "
        "vendor: a JSON list of {method, endpoint, params?, request_body?, response}",
    )  # fmt: skip
    preview.add_argument(
        "--now", metavar="ISO", type=_timestamp,
        help="the clock for mappings that depend on it (age limits), e.g. 2026-01-15T10:00:00Z",
    )  # fmt: skip
    preview.add_argument(
        "--validate", action="store_true",
        help="also ask the vendor's validation endpoint (GA4) what it thinks of the request(s)",
    )  # fmt: skip

    sdk = sub.add_parser("sdk", help="browser SDKs the gateway serves to sites")
    sdk_sub = sdk.add_subparsers(dest="sdk_command", required=True, metavar="ACTION")
    sdk_install = sdk_sub.add_parser(
        "install", help="fetch the browser SDKs from the npm registry into SLUICE_SDK_DIR"
    )
    sdk_install.add_argument("--rudderstack", default=DEFAULT_VERSIONS[RUDDERSTACK],
                             metavar="VERSION", help=f"{RUDDERSTACK} version")  # fmt: skip
    sdk_install.add_argument("--segment", default=DEFAULT_VERSIONS[SEGMENT],
                             metavar="VERSION", help=f"{SEGMENT} version")  # fmt: skip
    sdk_install.add_argument("--registry", default="https://registry.npmjs.org", metavar="URL")

    certs = sub.add_parser("tls", help="the HTTPS certificate of the gateway and the web UI")
    certs_sub = certs.add_subparsers(dest="tls_command", required=True, metavar="ACTION")
    tls_install = certs_sub.add_parser(
        "install", help="check a certificate and key and put them where the services read them "
        "(they take them without a restart)",
    )  # fmt: skip
    tls_install.add_argument("cert", type=Path, help="PEM certificate chain (the server's first)")
    tls_install.add_argument("key", type=Path, help="its PEM private key, unencrypted")
    tls_trial = certs_sub.add_parser(
        "self-signed", help="make a certificate for NAMEs here, for a trial (browsers and SDKs "
        "must be told to trust it)",
    )  # fmt: skip
    tls_trial.add_argument("names", nargs="+", metavar="NAME", help="host name or IP address")
    tls_trial.add_argument(
        "--keep", action="store_true", help="keep the trial certificate in --dir when it is "
        "valid for every NAME for more than 30 days (clients that trust its ca.pem go on "
        "trusting it)",
    )  # fmt: skip
    for command in (tls_install, tls_trial):
        command.add_argument(
            "--dir", type=Path, default=certificates.DEFAULT_DIR,
            help="where to put cert.pem and key.pem (default: %(default)s)",
        )  # fmt: skip
    certs_sub.add_parser("show", help="the certificate the settings name, and when it expires")

    warehouse = sub.add_parser("warehouse", help="warehouse destinations")
    warehouse_sub = warehouse.add_subparsers(dest="warehouse_command", required=True,
                                             metavar="ACTION")  # fmt: skip
    rows = warehouse_sub.add_parser(
        "preview", help="print the rows an event becomes in a warehouse, as JSON"
    )
    rows.add_argument("--type", required=True, metavar="TYPE",
                      help="POSTGRES, RS, SNOWFLAKE, BQ or CLICKHOUSE")  # fmt: skip
    rows.add_argument("--event", type=Path, required=True, help="a JSON event file")
    rows.add_argument(
        "--options", type=Path, metavar="FILE",
        help="destination_config, request_query and metadata (JSON or YAML)",
    )  # fmt: skip
    sync = warehouse_sub.add_parser(
        "sync", help="load what is staged for a warehouse now, and show how it went"
    )
    sync.add_argument("--destination", metavar="NAME", required=True)
    sync.add_argument("--wait", type=float, default=600.0, metavar="SECONDS",
                      help="how long to wait for the worker to answer (default 600; 0: "
                      "ask and return)")  # fmt: skip
    status = warehouse_sub.add_parser(
        "status", help="each warehouse's loads, schema, and what waits to be loaded"
    )
    status.add_argument("--destination", metavar="NAME", help="only this warehouse")
    status.add_argument("--json", action="store_true", help="as JSON")

    transform = sub.add_parser("transform", help="user transformations")
    transform_sub = transform.add_subparsers(dest="transform_command", required=True,
                                             metavar="ACTION")  # fmt: skip
    trial = transform_sub.add_parser(
        "test", help="run transformation code on a sample event; print output, logs, errors"
    )
    trial.add_argument("--code", type=Path, required=True, help="a JavaScript file")
    trial.add_argument("--event", type=Path, required=True, help="a JSON event (or a list)")

    gen = sub.add_parser("generate-events", help="send realistic test traffic to a gateway")
    gen.add_argument("--write-key", required=True)
    gen.add_argument("--url", default="http://127.0.0.1:8080")
    gen.add_argument("--count", type=int, default=100, help="events to send (default 100)")
    gen.add_argument("--users", type=int, default=10, help="distinct users (default 10)")
    return parser


def _timestamp(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


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
            roles.serve_worker(settings, args.stage)
        case "web":
            roles.serve_web(settings)
        case "admin":
            asyncio.run(_create_user(args, options.database_url(settings)))
        case "migrate":
            applied = asyncio.run(migrate.apply(options.database_url(settings)))
            print(f"applied {len(applied)} migration(s)" if applied else "schema is up to date")
        case "setup":
            database = options.database_url(settings)
            kept_in = options.initial_password_file(settings)
            first = asyncio.run(firstrun.prepare(database, "sluice setup", kept_in))
            notice = firstrun.password_notice(first)
            print(*([notice] if notice else []), firstrun.instructions(settings, first), sep="\n")
        case "backup" | "restore":
            from appliance.backups import backup_command, restore_command

            command = backup_command if args.command == "backup" else restore_command
            asyncio.run(command(args, options.database_url(settings)))
        case "config":
            asyncio.run(_config(args, options.database_url(settings)))
        case "failed":
            from appliance.failed import failed_command

            asyncio.run(failed_command(args, options.database_url(settings), settings))
        case "rejected":
            from appliance.rejected import rejected_command

            asyncio.run(rejected_command(args, options.database_url(settings)))
        case "status":
            from appliance.status import status_command

            database_url, spool_dir = options.database_url(settings), options.spool_dir(settings)
            sys.exit(asyncio.run(status_command(args, database_url, spool_dir)))
        case "replay":
            from appliance.replay import replay_command

            asyncio.run(replay_command(args, options.database_url(settings), settings))
        case "preview":
            from appliance.preview import preview_command

            url = options.database_url(settings) if args.destination else None
            print(asyncio.run(preview_command(args, url)))
        case "sdk":
            try:
                print(install_command(args, options.sdk_dir(settings)))
            except (SdkInstallError, OSError) as exc:
                sys.exit(f"sluice sdk install: {exc}")
        case "tls":
            print(certificates.command(args, settings))
        case "warehouse":
            from appliance import warehouse

            if args.warehouse_command == "preview":
                print(warehouse.preview_command(args))
            else:
                asked = (warehouse.sync_command if args.warehouse_command == "sync"
                         else warehouse.status_command)  # fmt: skip
                print(asyncio.run(asked(args, options.database_url(settings))))
        case "transform":
            from appliance.trial import trial_command

            code = asyncio.run(trial_command(args))
            if code:
                sys.exit(code)
        case "generate-events":
            from appliance.generator import generate

            sent = generate(args.url, args.write_key, count=args.count, users=args.users)
            print(f"sent {sent} events to {args.url}")


async def _config(args: argparse.Namespace, url: str) -> None:
    async with connection(url) as conn:
        if args.config_command == "export":
            print(specs.dump(await workspace.export(conn), args.format), end="")
            return
        skipped: list[str] = []
        if args.config_command == "import":
            try:
                document = json.loads(args.file.read_text())
            except json.JSONDecodeError as exc:
                raise ConfigError(str(args.file), f"not valid JSON: {exc}") from None
            found = rudderstack.read(document)
            spec, skipped = found.spec, found.skipped
        else:
            spec = specs.parse(args.file.read_text())
        action = f"config.{args.config_command}"
        report = await Changes(conn, CLI).apply(spec, action=action, target=str(args.file))
    for kind, name, action in report.changes:
        print(f"{kind:<15} {name:<30} {action}")
    for name, key in report.new_write_keys.items():
        print(f"source {name!r} write key: {key}")
    for reason in skipped:
        print(f"not imported: {reason}")


async def _create_user(args: argparse.Namespace, url: str) -> None:
    password = sys.stdin.readline().rstrip("\r\n")
    async with connection(url) as conn:
        user = await Changes(conn, CLI).create_user(
            args.email, args.role, password, must_change=False
        )
    print(f"created {user.role} {user.email}")
