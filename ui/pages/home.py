"""The home page: is Sluice healthy? Which processes run, whether processing keeps up, the
last hour's deliveries and failures per destination, the database's size."""

from typing import Any

from jinja2_fragments.litestar import HTMXBlockTemplate
from litestar import Request, get
from litestar.response import Template

from engine.control import graph, overview
from ui.requests import database, signed_in

ROLES = ("gateway", "worker", "web")


@get("/")
async def home(request: Request[Any, Any, Any]) -> Template:
    async with database(request) as conn:
        summary = await overview.overview(conn)
        shape = await graph.load(conn)
    context = {"user": signed_in(request), "summary": summary, "roles": ROLES,
               "destinations": shape.destinations}  # fmt: skip
    if request.headers.get("hx-request"):  # the page refreshing its health block
        return HTMXBlockTemplate(template_name="home.html", block_name="health", context=context)
    return Template("home.html", context=context)


handlers = [home]
