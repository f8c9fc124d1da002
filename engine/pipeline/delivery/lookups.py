"""Look-ups: what a destination asks its vendor just before sending a request
(`engine.destinations.base.Lookups`).

`Asking` asks the vendor through the router's sender, with the destination's timeout, and keeps
answers it may reuse for the time the destination allows, within a bounded number and size
(the same look-up asked for several jobs at once goes out once); errors name the look-up with
the destination's secrets masked. `Given` answers from a list
given in advance (`sluice preview --lookups FILE`, the conformance cases' `vendor_lookups`).
"""

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import msgspec

from engine import codec
from engine.destinations.base import Looked, LookupFailed, Request
from engine.pipeline.delivery.sender import MalformedRequest, Sender, TransportError

MAX_KEPT = 10_000  # answers kept per destination
MAX_KEPT_BYTES = 16 * 1024 * 1024  # their bodies, together
MAX_ANSWER = 8 * 1024 * 1024  # bytes of a look-up's answer read (HubSpot's property lists are long)


def _decoded(body: bytes) -> Any:
    try:
        return msgspec.json.decode(body) if body.strip() else None
    except msgspec.DecodeError:
        return None


def _named(request: Request) -> str:
    return f"{request.method} {urlsplit(request.url)._replace(query='').geturl()}"


class Asking:
    def __init__(
        self, sender: Sender, timeout: float, mask: Callable[[str], str], writes: bool = True
    ) -> None:
        """`writes`: whether look-ups that change something at the vendor may be made (not
        by a preview)."""
        self._sender = sender
        self._timeout = timeout
        self._mask = mask
        self._writes = writes
        self._kept: OrderedDict[bytes, tuple[float, Looked, int]] = OrderedDict()
        self._kept_bytes = 0
        self._asking: dict[bytes, asyncio.Future[Looked]] = {}

    async def ask(self, request: Request, keep: float = 0.0, writes: bool = False) -> Looked:
        if writes and not self._writes:
            raise LookupFailed(
                f"a preview changes nothing at the vendor, and this request needs a write first "
                f"({_named(request)}): give its answer with --lookups"
            )
        key = codec.encode(request)
        kept = self._kept.get(key)
        if kept is not None and kept[0] > time.monotonic():
            self._kept.move_to_end(key)
            return kept[1]
        if keep <= 0:
            return await self._asked(request, key, keep)
        # The same look-up for several jobs of a batch at once: asked once, answered to all.
        asking = self._asking.get(key)
        if asking is None:
            asking = self._asking[key] = asyncio.ensure_future(self._asked(request, key, keep))
            asking.add_done_callback(lambda _: self._asking.pop(key, None))
        return await asyncio.shield(asking)

    async def _asked(self, request: Request, key: bytes, keep: float) -> Looked:
        now = time.monotonic()
        try:
            answer = await self._sender.send(request, self._timeout, MAX_ANSWER + 1)
        except (TransportError, MalformedRequest) as exc:
            raise LookupFailed(self._mask(f"look-up {_named(request)}: {exc}")) from None
        if answer.status == 429 or answer.status >= 500:
            said = f"look-up {_named(request)}: HTTP {answer.status}: {answer.excerpt}"
            raise LookupFailed(self._mask(said))
        looked = Looked(answer.status, _decoded(answer.body))
        if 200 <= answer.status < 300 and answer.body.strip() and looked.body is None:
            # Cut short (larger than we read) or not JSON: nothing to complete a request with.
            what = f"over {MAX_ANSWER} bytes" if len(answer.body) > MAX_ANSWER else "not JSON"
            raise LookupFailed(self._mask(f"look-up {_named(request)}: its answer is {what}"))
        if keep > 0 and 200 <= answer.status < 300:
            self._keep(key, (now + keep, looked, len(answer.body)))
        return looked

    def _keep(self, key: bytes, entry: tuple[float, Looked, int]) -> None:
        old = self._kept.pop(key, None)
        self._kept_bytes += entry[2] - (old[2] if old else 0)
        self._kept[key] = entry
        while self._kept and (len(self._kept) > MAX_KEPT or self._kept_bytes > MAX_KEPT_BYTES):
            self._kept_bytes -= self._kept.popitem(last=False)[1][2]


class _Answer(msgspec.Struct):
    status: int
    body: Any = None


class _Given(msgspec.Struct, forbid_unknown_fields=False):
    """One look-up and its answer, as the conformance cases write them."""

    method: str
    endpoint: str
    response: _Answer
    params: dict[str, Any] = {}
    request_body: Any = None


def _address(url: str, params: dict[str, Any]) -> tuple[str, dict[str, str]]:
    parts = urlsplit(url)
    query = {**dict(parse_qsl(parts.query)), **{k: str(v) for k, v in params.items()}}
    return parts._replace(query="").geturl(), query


class Given:
    def __init__(self, answers: Any) -> None:
        """`answers`: a list of {method, endpoint, params?, request_body?, response: {status,
        body?}}; `request_body` and `params`, when given, must match the look-up's."""
        try:
            self._given = msgspec.convert(answers, list[_Given])
        except msgspec.ValidationError as exc:
            raise LookupFailed(f"the look-up answers are not in the expected form: {exc}") from None

    async def ask(self, request: Request, keep: float = 0.0, writes: bool = False) -> Looked:
        address = _address(request.url, dict(request.params))
        for given in self._given:
            if given.method.upper() != request.method.upper():
                continue
            if _address(given.endpoint, given.params) != address:
                continue
            if given.request_body is not None and given.request_body != _plain(request.body):
                continue
            return Looked(given.response.status, given.response.body)
        raise LookupFailed(f"no answer given for the look-up {_named(request)}")


def _plain(body: Any) -> Any:
    """A request body as plain JSON values (numbers kept as written are numbers again)."""
    return msgspec.json.decode(codec.encode(body)) if body is not None else None
