"""Every request's inputs screened before a handler sees them (an app guard, after the access
rules): path and query parameters, form fields and JSON bodies that hold text PostgreSQL
cannot store or are nested too deeply (`engine.storable`) are refused with 400, the field
named — whatever the route, so a new one cannot forget. And the readers of what handlers take as
text — whole numbers, places in the log, moments — which say None when it is not one rather
than fail with a 500."""

import json
from datetime import UTC, datetime
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.enums import RequestEncodingType
from litestar.handlers.base import BaseRouteHandler

from engine import storable
from engine.errors import InvalidRequest
from engine.position import Position
from ui.requests import FORMS, SAFE_METHODS


async def screened(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    for name, value in connection.scope.get("path_params", {}).items():
        if isinstance(value, str) and (why := storable.text_fault(value)):
            raise InvalidRequest(f"the {name} in the address {why}")
    for name, value in connection.query_params.multi_items():
        if why := storable.text_fault(name) or storable.text_fault(value):
            raise InvalidRequest(f"the query parameter {name!r} {why}")
    if connection.scope.get("method") in SAFE_METHODS:
        return
    request: Request[Any, Any, Any] = Request(connection.scope, connection.receive)
    kind = request.content_type[0]
    if kind in FORMS:
        for name, value in (await request.form()).multi_items():
            if isinstance(value, str) and (
                why := storable.text_fault(name) or storable.text_fault(value)
            ):
                raise InvalidRequest(f"the field {name!r} {why}")
    elif kind == RequestEncodingType.JSON:
        try:
            document = json.loads(await request.body())
        except RecursionError:
            raise InvalidRequest(
                f"the body is nested more than {storable.MAX_DEPTH} levels deep"
            ) from None
        except ValueError:
            return  # not JSON: the handler says so, as it would have
        if found := storable.fault(document, "body"):
            raise InvalidRequest(" ".join(found))


def whole_number(text: str, below: int = 2**63) -> int | None:
    """`text` as a whole number under `below` (by default, any a bigint holds); None when it is
    not one. ASCII digits only: str.isdigit() also takes '²', which int() refuses."""
    if not (text.isascii() and text.isdigit() and len(text) <= 20):
        return None
    value = int(text)
    return value if value < below else None


def position(tx: str | None, row: str | int) -> Position | None:
    """A place in the ingest log from an address or a query (`tx`: the 64-bit transaction id
    as text); None when it is not one."""
    found_tx = whole_number(tx or "", 2**64)
    found_row = whole_number(str(row))
    return None if found_tx is None or found_row is None else Position(found_tx, found_row)


def moment(text: str | None) -> datetime | None:
    """A time in ISO 8601 (one without a zone, as a datetime-local field sends it, is UTC: the
    pages show UTC); None when empty or not a time."""
    try:
        found = datetime.fromisoformat(text or "")
    except ValueError:
        return None
    return found if found.tzinfo else found.replace(tzinfo=UTC)
