"""Destination pages: pick a type, fill in a form made from its settings, see what is wrong
where it is wrong, connect sources, and send a test event to see the exact request and the
vendor's answer. Changes go through `engine.control.changes`, like `sluice config apply`;
secrets are never sent back to the browser."""

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, NamedTuple
from uuid import UUID, uuid4

import msgspec
from litestar import Request, Response, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery, URLEncodedBody
from litestar.response import Redirect, Template

from engine.control import alerts, graph, preview, stats, warehouses, workspace
from engine.destinations.base import DestinationType
from engine.destinations.catalog import TYPES
from engine.errors import ConfigError, SluiceError
from engine.pipeline.topology import Target
from engine.specs import ConnectionSpec, DeliveryPolicy, DestinationSpec
from ui import cards, forms
from ui.pages.sources import Switch, deleted, switched
from ui.requests import changes, database, signed_in

SAMPLE_NAME = "Sluice Test Event"


class Link(msgspec.Struct):
    source_id: UUID
    enabled: bool = True


def _plugin(kind: str) -> DestinationType:
    plugin = TYPES.get(kind)
    if plugin is None:
        raise NotFoundException(f"there is no destination type {kind!r}")
    return plugin


def sample_event() -> dict[str, Any]:
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {
        "type": "track", "event": SAMPLE_NAME, "messageId": str(uuid4()),
        "userId": "sluice-test-user", "anonymousId": "sluice-test-anonymous-id",
        "properties": {"revenue": 30, "currency": "EUR", "test": True},
        "context": {"library": {"name": "sluice", "version": "test"}, "ip": "127.0.0.1"},
        "timestamp": now, "originalTimestamp": now, "sentAt": now,
    }  # fmt: skip


# The catalog's groups, in the order it shows them.
CATEGORIES = ("Analytics", "Marketing", "Messaging", "Advertising", "Warehouses", "Storage",
              "Custom", "Other")  # fmt: skip


def catalog(q: str) -> list[tuple[str, list[DestinationType]]]:
    """The destination types whose title, name, category or description hold every word of
    `q`, by category (what the page's search box does as one types, without JavaScript)."""
    words = q.lower().split()
    found = [
        kind
        for kind in sorted(TYPES.values(), key=lambda kind: kind.title.lower())
        if all(w in f"{kind.title} {kind.name} {kind.category} {kind.description}".lower()
               for w in words)
    ]  # fmt: skip
    groups = [(c, [k for k in found if k.category == c]) for c in CATEGORIES]
    return [(c, kinds) for c, kinds in groups if kinds]


@get("/destinations/new")
async def new_destination(
    request: Request[Any, Any, Any], type: FromQuery[str | None] = None, q: FromQuery[str] = ""
) -> Template:
    """The catalog; a type's empty form for editors (viewers, who cannot add one, get the
    catalog to browse, with whom to ask)."""
    user = signed_in(request)
    if type is None or not user.may("editor"):
        context = {"user": user, "groups": catalog(q), "q": q, "kinds_count": len(TYPES)}
        return Template("destination_types.html", context=context)
    plugin = _plugin(type)
    async with database(request) as conn:
        sources = (await graph.load(conn)).sources
    return _form(request, plugin, name="", config={}, sources=sources, picked=set())


def _form(
    request: Request[Any, Any, Any],
    plugin: DestinationType,
    *,
    name: str,
    config: dict[str, Any],
    node: graph.DestinationNode | None = None,
    error: str | None = None,
    field_errors: dict[str, str] | None = None,
    submitted: dict[str, str] | None = None,
    status: int = 200,
    **more: Any,
) -> Template:
    user = signed_in(request)
    shown = config if user.may("editor") else plugin.for_viewers(config)
    return Template(
        "destination.html",
        context={
            "user": user, "plugin": plugin, "kind": plugin,
            "name": name, "fields": forms.fields(plugin, shown, submitted), "node": node,
            "error": error, "field_errors": field_errors or {}, **more,
        },
        status_code=status,
    )  # fmt: skip


async def _submitted(request: Request[Any, Any, Any]) -> dict[str, str]:
    form = await request.form()
    return forms.submitted([(k, v) for k, v in form.multi_items() if isinstance(v, str)])


@post("/destinations", status_code=303)
async def create_destination(request: Request[Any, Any, Any]) -> Response[Any]:
    """A new destination, and its connections to the sources ticked on its form, in one
    transaction: refused, nothing is made."""
    form = await _submitted(request)
    picked = {UUID(v) for v in (await request.form()).getall("sources", []) if _uuid(v)}
    plugin = _plugin(form.get("type", ""))
    name = form.get("name", "").strip()
    async with database(request) as conn:
        shape = await graph.load(conn)
        try:
            config = _named_config(plugin, name, form)
            made = await changes(request, conn).create_destination(name, plugin.name, config)
            for source in (s for s in shape.sources if s.id in picked):
                await changes(request, conn).connect(source.name, name, True, None)
        except ConfigError as exc:  # (FormErrors too)
            await conn.rollback()  # (a source gone meanwhile: the destination made goes too)
            return _refused(request, plugin, name, form, exc, sources=shape.sources,
                            picked=picked)  # fmt: skip
    return Redirect(f"/destinations/{made}", status_code=303)


def _uuid(text: str) -> bool:
    try:
        UUID(text)
    except ValueError:
        return False
    return True


def _named_config(plugin: DestinationType, name: str, form: dict[str, str]) -> dict[str, Any]:
    """The new destination's config; a missing name is refused with the settings' errors."""
    errors = {} if name else {"name": "give the destination a name"}
    try:
        config = forms.config(plugin, form, {})
    except forms.FormErrors as exc:
        errors |= exc.errors
    if errors:
        raise forms.FormErrors(errors)
    return config


def _refused(
    request: Request[Any, Any, Any],
    plugin: DestinationType,
    name: str,
    form: dict[str, str],
    exc: Exception,
    node: graph.DestinationNode | None = None,
    saved: dict[str, Any] | None = None,
    **more: Any,
) -> Template:
    """The form again, as submitted (secrets excepted), each error beside its field."""
    message = exc.message if isinstance(exc, ConfigError) else str(exc)
    keys = [f.key for f in forms.fields(plugin, {})]
    key = forms.field_of(message, form, keys)  # the settings check names one at a time
    errors = exc.errors if isinstance(exc, forms.FormErrors) else {key: message} if key else {}
    return _form(
        request, plugin, name=name, config=saved or {}, submitted=form, node=node, status=400,
        error=None if errors else message, field_errors=errors, **more,
    )  # fmt: skip


class Loaded(NamedTuple):
    spec: DestinationSpec
    node: graph.DestinationNode
    shape: graph.Graph


async def _load(request: Request[Any, Any, Any], destination_id: UUID) -> Loaded:
    async with database(request) as conn:
        spec: DestinationSpec | None = await workspace.entry(conn, "destination", destination_id)
        if spec is None:
            raise NotFoundException("there is no such destination (any more)")
        shape = await graph.load(conn)
    node = next(d for d in shape.destinations if d.id == destination_id)
    return Loaded(spec, node, shape)


@get("/destinations/{destination_id:uuid}")
async def destination_page(
    request: Request[Any, Any, Any], destination_id: FromPath[UUID]
) -> Template:
    loaded = await _load(request, destination_id)
    spec = loaded.spec
    return _form(
        request, _plugin(spec.type), name=spec.name, config=spec.config, node=loaded.node,
        **_connections(loaded), activity=await _activity(request, destination_id),
        **await _alerting(request, destination_id),
        warehouse=await _warehouse(request, loaded),
    )  # fmt: skip


@get("/destinations/{destination_id:uuid}/activity")
async def destination_activity(
    request: Request[Any, Any, Any], destination_id: FromPath[UUID]
) -> Response[Any]:
    """The page's activity card alone, which the page polls."""

    async def context(loaded: Loaded) -> dict[str, Any]:
        return {"kind": _plugin(loaded.spec.type), "linked": _linked(loaded),
                "activity": await _activity(request, destination_id)}  # fmt: skip

    return await _card(request, destination_id, "activity", context)


@get("/destinations/{destination_id:uuid}/warehouse")
async def destination_warehouse(
    request: Request[Any, Any, Any], destination_id: FromPath[UUID]
) -> Response[Any]:
    """A warehouse's loads card alone, which its page polls."""

    async def context(loaded: Loaded) -> dict[str, Any]:
        return {"warehouse": await _warehouse(request, loaded)}

    return await _card(request, destination_id, "warehouse", context)


async def _card(
    request: Request[Any, Any, Any],
    destination_id: UUID,
    block: str,
    more: Callable[[Loaded], Awaitable[dict[str, Any]]],
) -> Response[Any]:
    """A card of the destination's page, for its poll: who asks, the destination, and `more`."""

    async def context() -> dict[str, Any]:
        loaded = await _load(request, destination_id)
        return {"user": signed_in(request), "node": loaded.node, **await more(loaded)}

    page = f"/destinations/{destination_id}"
    return await cards.card(request, "destination.html", block, page, context)


async def _warehouse(
    request: Request[Any, Any, Any], loaded: Loaded
) -> warehouses.Warehouse | None:
    if not warehouses.is_warehouse(loaded.spec):
        return None
    async with database(request) as conn:
        return await warehouses.named(conn, loaded.spec.name)


@post("/destinations/{destination_id:uuid}/sync", status_code=303)
async def sync_warehouse(
    request: Request[Any, Any, Any], destination_id: FromPath[UUID]
) -> Redirect:
    """Sync now: load what is staged for the warehouse at once."""
    spec = (await _load(request, destination_id)).spec
    async with database(request) as conn:
        await changes(request, conn).sync_warehouse(spec.name)
    return Redirect(f"/destinations/{destination_id}?saved=sync#warehouse", status_code=303)


@post("/destinations/{destination_id:uuid}/loads/{upload:int}/retry", status_code=303)
async def retry_load(
    request: Request[Any, Any, Any], destination_id: FromPath[UUID], upload: FromPath[int]
) -> Redirect:
    """A failed load tried again now rather than at its next attempt."""
    spec = (await _load(request, destination_id)).spec
    async with database(request) as conn:
        await changes(request, conn).retry_load(spec.name, upload)
    return Redirect(f"/destinations/{destination_id}?saved=retry#warehouse", status_code=303)


async def _activity(request: Request[Any, Any, Any], destination_id: UUID) -> stats.Activity:
    async with database(request) as conn:
        return await stats.recent(conn, destination=destination_id)


def _linked(loaded: Loaded) -> list[tuple[graph.SourceNode, graph.Edge]]:
    """The sources connected to the destination, with their connections."""
    edges = {e.source_id: e for e in loaded.shape.connections if e.destination_id == loaded.node.id}
    return [(s, edges[s.id]) for s in loaded.shape.sources if s.id in edges]


def _connections(
    loaded: Loaded,
    delivery_form: dict[str, str] | None = None,
    delivery_error: str | None = None,
) -> dict[str, Any]:
    """What the page of an existing destination shows besides its settings: the sources
    connected to it (and those that could be), and its delivery policy."""
    linked = _linked(loaded)
    connected = {s.id for s, _ in linked}
    policy = msgspec.to_builtins(loaded.spec.delivery)
    return {
        "linked": linked,
        "unlinked": [s for s in loaded.shape.sources if s.id not in connected],
        "delivery": forms.fields(forms.POLICY, policy, delivery_form),
        "delivery_error": delivery_error,
    }


@post("/destinations/{destination_id:uuid}", status_code=303)
async def update_destination(
    request: Request[Any, Any, Any], destination_id: FromPath[UUID]
) -> Response[Any]:
    form = await _submitted(request)
    loaded = await _load(request, destination_id)
    spec = loaded.spec
    plugin = _plugin(spec.type)
    async with database(request) as conn:
        try:
            config = forms.config(plugin, form, spec.config)
            await changes(request, conn).configure(spec, config)
        except ConfigError as exc:  # (a FormError too)
            return _refused(request, plugin, spec.name, form, exc, loaded.node, spec.config,
                            **_connections(loaded),
                            **await _alerting(request, destination_id))  # fmt: skip
    return Redirect(f"/destinations/{destination_id}?saved=1", status_code=303)


@post("/destinations/{destination_id:uuid}/delivery", status_code=303)
async def update_delivery(
    request: Request[Any, Any, Any], destination_id: FromPath[UUID]
) -> Response[Any]:
    """The delivery policy: concurrency, rate limit, retry budget, backoff, timeout, files."""
    form = await _submitted(request)
    loaded = await _load(request, destination_id)
    spec = loaded.spec
    saved = msgspec.to_builtins(spec.delivery)
    try:
        policy = msgspec.convert(forms.config(forms.POLICY, form, saved), DeliveryPolicy)
    except (ConfigError, msgspec.ValidationError) as exc:
        return _form(
            request, _plugin(spec.type), name=spec.name, config=spec.config, node=loaded.node,
            status=400, **_connections(loaded, form, str(exc)),
            **await _alerting(request, destination_id),
        )  # fmt: skip
    async with database(request) as conn:
        await changes(request, conn).set_delivery(spec, policy)
    return Redirect(f"/destinations/{destination_id}?saved=1", status_code=303)


class RuleForm(msgspec.Struct):
    failure_percent: str = ""
    window_minutes: str = "15"
    silence_minutes: str = ""
    webhook_url: str = ""  # left empty: the saved one stays, unless `no_webhook`
    no_webhook: bool = False
    slack_url: str = ""  # the same, with `no_slack`
    no_slack: bool = False
    email_to: str = ""  # addresses, separated by commas or spaces


async def _alerting(
    request: Request[Any, Any, Any], destination_id: UUID, error: str | None = None
) -> dict[str, Any]:
    """The page's alerts card: the destination's rule and its latest alerts."""
    async with database(request) as conn:
        rule = await alerts.rule(conn, destination_id)
        history = await alerts.history(conn, destination_id)
    return {"alert_rule": rule, "alert_history": history, "alerts_error": error,
            "alert_min_events": alerts.MIN_EVENTS}  # fmt: skip


@post("/destinations/{destination_id:uuid}/alerts", status_code=303)
async def save_alert_rule(
    request: Request[Any, Any, Any], destination_id: FromPath[UUID], data: URLEncodedBody[RuleForm]
) -> Response[Any]:
    """When to alert about this destination: a failure share over a window, a silence."""
    loaded = await _load(request, destination_id)
    async with database(request) as conn:
        saved = await alerts.rule(conn, destination_id)
        try:
            rule = alerts.Rule(
                destination_id=destination_id,
                failure_percent=_number(data.failure_percent, float, "failure share"),
                window_minutes=_number(data.window_minutes, int, "window") or 15,
                silence_minutes=_number(data.silence_minutes, int, "silence"),
                webhook_url=None
                if data.no_webhook
                else data.webhook_url.strip() or saved.webhook_url,
                slack_url=None if data.no_slack else data.slack_url.strip() or saved.slack_url,
                email_to=data.email_to.replace(",", " ").split(),
            )
            await changes(request, conn).set_alert_rule(loaded.spec.name, rule)
        except ConfigError as exc:
            spec = loaded.spec
            return _form(
                request, _plugin(spec.type), name=spec.name, config=spec.config,
                node=loaded.node, status=400, **_connections(loaded),
                **await _alerting(request, destination_id, exc.message),
            )  # fmt: skip
    return Redirect(f"/destinations/{destination_id}?saved=alerts#alerts", status_code=303)


def _number(text: str, kind: type[int] | type[float], what: str) -> Any:
    """A number from the form; None when left empty."""
    if not text.strip():
        return None
    try:
        return kind(text)
    except ValueError:
        raise ConfigError("alerts", f"the {what} is a number, not {text!r}") from None


@post("/destinations/{destination_id:uuid}/enabled", status_code=303)
async def switch_destination(
    request: Request[Any, Any, Any], destination_id: FromPath[UUID], data: URLEncodedBody[Switch]
) -> Response[Any]:
    return await switched(request, "destination", destination_id, data)


@post("/destinations/{destination_id:uuid}/delete", status_code=303)
async def delete_destination(
    request: Request[Any, Any, Any], destination_id: FromPath[UUID]
) -> Response[Any]:
    return await deleted(request, "destination", destination_id)


@post("/destinations/{destination_id:uuid}/connections", status_code=303)
async def connect_source(
    request: Request[Any, Any, Any], destination_id: FromPath[UUID], data: URLEncodedBody[Link]
) -> Response[Any]:
    """Connect a source to this destination, or switch an existing connection on or off."""
    spec, _, shape = await _load(request, destination_id)
    source = next((s for s in shape.sources if s.id == data.source_id), None)
    if source is None:
        raise NotFoundException("there is no such source (any more)")
    edges = [e for e in shape.connections if e.destination_id == destination_id]
    edge = next((e for e in edges if e.source_id == source.id), None)
    async with database(request) as conn:
        current: ConnectionSpec | None = (
            await workspace.entry(conn, "connection", edge.id) if edge else None
        )
        await changes(request, conn).connect(source.name, spec.name, data.enabled, current)
    return Redirect(f"/destinations/{destination_id}", status_code=303)


@post("/destinations/{destination_id:uuid}/test", status_code=200)
async def send_test_event(
    request: Request[Any, Any, Any], destination_id: FromPath[UUID]
) -> Template:
    """Send a sample event now (no job, no retry) and show the request and the answer."""
    user = signed_in(request)
    spec = (await _load(request, destination_id)).spec
    event = sample_event()
    try:
        private = bool(request.app.state.test_private_hosts)
        tried = await preview.send(Target.of(spec, destination_id), event, private_hosts=private)
        error = None
    except SluiceError as exc:
        tried, error = [], str(exc)
    async with database(request) as conn:
        await changes(request, conn).record("destination.test", spec.name)
    return Template(
        "test_result.html",
        context={"user": user, "tried": tried, "error": error, "event": event},
    )


handlers = [
    new_destination, create_destination, destination_page, destination_activity,
    update_destination, save_alert_rule,
    update_delivery, switch_destination, delete_destination, connect_source, send_test_event,
    destination_warehouse, sync_warehouse, retry_load,
]  # fmt: skip
