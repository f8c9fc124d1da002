"""The control plane: a Litestar app whose pages are Jinja templates, their blocks doubling as
htmx fragments (jinja2-fragments). Static files (htmx, CSS) are served from `ui/static/`
(ui/assets.py)."""

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import msgspec
from litestar import Litestar, Router, get
from litestar.datastructures import State
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, YamlRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.plugins.htmx import HTMXPlugin
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.template.config import TemplateConfig

from engine import codec, partitions, tls
from engine.control import keyring
from engine.db import borrowed, connection_pool
from engine.heartbeats import Heartbeat, Report
from engine.proxies import Networks
from engine.transformations.runtime import MAX_EVENTS, JavaScript
from engine.transformations.store import CodeStore
from ui import api, assets, csrf, inputs, security
from ui.pages import (
    account,
    alerts,
    audit,
    connections,
    destinations,
    events,
    failed,
    home,
    rejected,
    sources,
    stats,
    transformations,
    users,
)

log = logging.getLogger(__name__)
_HERE = Path(__file__).parent


@dataclass(frozen=True)
class WebOptions:
    database_url: str
    gateway_url: str  # where SDKs send events, shown on source pages
    secure_cookies: bool = False  # the UI is served over HTTPS (directly or by a proxy)
    test_private_hosts: bool = False  # "send test event" may reach this host's own network
    trusted_proxies: Networks = ()  # whose X-Forwarded-For names the client (sign-in throttle)
    transform_max_events: int = MAX_EVENTS  # (replays run transformations again)
    initial_password_file: Path | None = None  # removed once an admin chose their password
    tls_cert: Path | None = None  # the UI is served over HTTPS with this certificate


def _report(tls_cert: Path | None) -> Report:
    """With each heartbeat: when the HTTPS certificate expires (read again each time: the
    process serving the UI is replaced when it is renewed)."""
    if tls_cert is None:
        return {}
    try:
        return {tls.REPORT_KEY: tls.describe(tls_cert).expires}
    except tls.BadCertificate as exc:
        log.error("cannot tell when the HTTPS certificate expires: %s", exc)
        return {}


@get("/health", opt={"public": True}, sync_to_thread=False, include_in_schema=False)
def health() -> dict[str, str]:
    return {"status": "ok"}


def _utc(value: datetime, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    return value.astimezone(UTC).strftime(fmt)


def _humanize(key: str) -> str:
    """`webhookUrl` → `Webhook url`: a settings key as words."""
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|_", " ", key).split()
    text = " ".join(w if w.isupper() else w.lower() for w in words)
    return text[:1].upper() + text[1:]


def _pretty(value: Any) -> str:
    """A request body as indented JSON, numbers exactly as they were written."""
    return msgspec.json.format(codec.encode(value), indent=2).decode()


def _literal(text: str) -> str:
    """`text` as a string literal of JavaScript and of Python alike (JSON's is both)."""
    return json.dumps(text)


def _shell(text: str) -> str:
    """`text` as one word of a POSIX shell, in single quotes (a quote inside closed, escaped
    and reopened), whatever it holds."""
    return "'" + text.replace("'", "'\\''") + "'"


def _decoded(text: str) -> Any:
    """JSON text (a stored request) as a value, numbers as they were written."""
    return codec.decode(text)


def _bytes(value: int) -> str:
    """A size in bytes as people say it: `812 KB`, `3.4 GB`."""
    size, unit = float(value), "bytes"
    for bigger in ("KB", "MB", "GB", "TB"):
        if size < 1000:
            break
        size, unit = size / 1000, bigger
    return f"{size:.0f} {unit}" if unit in ("bytes", "KB") else f"{size:.1f} {unit}"


def _within(seconds: float) -> str:
    """A latency bucket's upper bound as people say it: `under 250 ms`, `under 5 min`."""
    if seconds == float("inf"):
        return "over 1 h"
    if seconds < 1:
        return f"under {seconds * 1000:g} ms"
    if seconds < 60:
        return f"under {seconds:g} s"
    return f"under {seconds / 60:g} min" if seconds < 3600 else f"under {seconds / 3600:g} h"


def _number(value: int) -> str:
    return f"{value:,}"


def _ago(value: datetime) -> str:
    """How long ago, in the largest whole unit: `just now`, `5 min ago`, `3 h ago`, `2 d ago`."""
    seconds = int((datetime.now(UTC) - value).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return "just now"


def _filters(engine: JinjaTemplateEngine) -> None:
    engine.engine.filters.update(
        utc=_utc,
        humanize=_humanize,
        pretty=_pretty,
        number=_number,
        ago=_ago,
        decoded=_decoded,
        literal=_literal,
        shell=_shell,
        bytes=_bytes,
        within=_within,
        spans=partitions.spans,
    )


def _template_engine(engine: JinjaTemplateEngine, static: assets.Assets) -> None:
    _filters(engine)
    engine.engine.globals["static"] = static.url


def create_app(options: WebOptions) -> Litestar:
    static = assets.Assets(_HERE / "static")  # read once: the files are part of the release
    pool = connection_pool(options.database_url, min_size=1, max_size=8)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        await pool.open()
        # The CSRF key lives in the database, shared by every process and host.
        async with borrowed(pool) as conn:
            app.state.csrf_key = await keyring.key(conn, "csrf")
        # Replays run transformations again; their sandboxes start on first use.
        app.state.javascript = JavaScript(
            CodeStore(pool).code, max_events=options.transform_max_events
        )
        app.state.trials = asyncio.Semaphore(transformations.TRIALS_AT_ONCE)
        heartbeat = Heartbeat(pool, "web", report=partial(_report, options.tls_cert))
        heartbeat.start()
        try:
            yield
        finally:
            await heartbeat.stop()
            await app.state.javascript.close()
            await pool.close()

    pages = Router(
        path="/",
        route_handlers=[
            *home.handlers,
            *alerts.handlers,
            *account.handlers,
            *connections.handlers,
            *sources.handlers,
            *destinations.handlers,
            *events.handlers,
            *failed.handlers,
            *stats.handlers,
            *rejected.handlers,
            *transformations.handlers,
            *users.handlers,
            *audit.handlers,
        ],
        include_in_schema=False,
    )
    return Litestar(
        route_handlers=[
            health,
            assets.static_file,
            pages,
            api.router,
        ],
        openapi_config=OpenAPIConfig(
            title="Sluice config API",
            version="1",
            description=api.__doc__,
            path="/api/v1/openapi",
            # The document itself, as JSON and YAML: the browser viewers load from CDNs.
            render_plugins=[JsonRenderPlugin(), YamlRenderPlugin()],
            openapi_router=Router(path="/api/v1/openapi", route_handlers=[], opt={"public": True}),
            security=[{"bearer": []}],
            components=Components(
                security_schemes={"bearer": SecurityScheme(type="http", scheme="bearer")}
            ),
        ),
        lifespan=[lifespan],
        state=State({**security.state(pool, options).dict(), "assets": static}),
        middleware=[
            security.Sessions(),
            csrf.Tokens(
                security.cookie_name(csrf.VISITOR_COOKIE, options.secure_cookies),
                options.secure_cookies,
            ),
        ],
        before_send=[security.security_headers],
        guards=[security.allowed, inputs.screened],
        plugins=[HTMXPlugin()],
        template_config=TemplateConfig(
            directory=_HERE / "templates",
            engine=JinjaTemplateEngine,
            engine_callback=lambda engine: _template_engine(engine, static),
        ),
        exception_handlers=security.exception_handlers,
    )
