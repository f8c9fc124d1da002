"""Every request's inputs screened before a handler sees them (an app guard, after the access
rules): path and query parameters, form fields and JSON bodies that hold text PostgreSQL
cannot store or are nested too deeply (`engine.storable`) are refused with 400, the field
named — whatever the route, so a new one cannot forget."""

import json
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.enums import RequestEncodingType
from litestar.handlers.base import BaseRouteHandler

from engine import storable
from engine.errors import InvalidRequest
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
