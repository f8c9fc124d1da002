"""The control plane: a Litestar app whose pages are Jinja templates, their blocks doubling as
htmx fragments (jinja2-fragments). Static files (htmx, CSS) are served from `ui/static/`."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from litestar import Litestar, get
from litestar.config.csrf import CSRFConfig
from litestar.plugins.htmx import HTMXPlugin
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from engine import keyring
from engine.db import connection_pool
from ui import security
from ui.pages import account, audit, connections, sources, users

_HERE = Path(__file__).parent


@dataclass(frozen=True)
class WebOptions:
    database_url: str
    gateway_url: str  # where SDKs send events, shown on source pages
    secure_cookies: bool = False  # the UI is served over HTTPS (directly or by a proxy)


@get("/health", opt={"public": True}, sync_to_thread=False)
def health() -> dict[str, str]:
    return {"status": "ok"}


def _utc(value: datetime, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    return value.astimezone(UTC).strftime(fmt)


def _filters(engine: JinjaTemplateEngine) -> None:
    engine.engine.filters["utc"] = _utc


def create_app(options: WebOptions) -> Litestar:
    # The CSRF signing key lives in the database (shared by every process and host); it is
    # filled in at start-up, before the first request.
    csrf = CSRFConfig(
        secret="",
        cookie_name="sluice_csrf",
        cookie_secure=options.secure_cookies,
        cookie_samesite="strict",
        exclude=["/health", "/static"],
    )
    pool = connection_pool(options.database_url, min_size=1, max_size=8)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        await pool.open()
        async with pool.connection() as conn:
            csrf.secret = await keyring.key(conn, "csrf")
        try:
            yield
        finally:
            await pool.close()

    return Litestar(
        route_handlers=[
            health,
            create_static_files_router(
                "/static", directories=[_HERE / "static"], opt={"public": True}
            ),
            *account.handlers,
            *connections.handlers,
            *sources.handlers,
            *users.handlers,
            *audit.handlers,
        ],
        lifespan=[lifespan],
        state=security.state(pool, options.gateway_url, options.secure_cookies),
        middleware=[security.Sessions()],
        guards=[security.allowed],
        csrf_config=csrf,
        plugins=[HTMXPlugin()],
        template_config=TemplateConfig(
            directory=_HERE / "templates", engine=JinjaTemplateEngine, engine_callback=_filters
        ),
        exception_handlers=security.exception_handlers,
        openapi_config=None,
    )
