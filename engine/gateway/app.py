"""The gateway's RSGI application: routing, request decoding, answers.

It sits directly on the gateway's own HTTP layer (`engine.gateway.http`) rather than on a
framework: the ingestion paths are the hottest code in Sluice and need nothing a framework adds.
Every error is turned into an HTTP answer in `handle` and nowhere else.
"""

import asyncio
import base64
import binascii
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from urllib.parse import parse_qsl

import msgspec

from engine.db import connection_pool
from engine.errors import (
    DatabaseUnavailable,
    InvalidRequest,
    MethodNotAllowed,
    NoSuchEndpoint,
    RateLimited,
    Rejected,
    SourceDisabled,
    TooLarge,
    Unauthenticated,
)
from engine.gateway import body, browser, messages
from engine.gateway.clock import Clock
from engine.gateway.http import Answer, Headers, Request
from engine.gateway.ingest import GroupCommit
from engine.gateway.log_table import LogTable
from engine.gateway.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from engine.gateway.metrics import GatewayMetrics
from engine.gateway.options import GatewayOptions
from engine.gateway.pacing import Pacing
from engine.gateway.ratelimit import RateLimiter
from engine.gateway.rejections import RejectionLog
from engine.gateway.sdk import SdkDirectory, SdkFile
from engine.gateway.sources import Source, SourceDirectory
from engine.gateway.spool import Spool
from engine.heartbeats import Heartbeat, Report
from engine.proxies import client_address, is_trusted
from engine.store.rejections import Rejection, head_of
from engine.tls import CHECK_EVERY as TLS_CHECK_EVERY
from engine.tls import REPORT_KEY as TLS_EXPIRES
from engine.tls import BadCertificate, Served

log = logging.getLogger(__name__)

Handler = Callable[[Request], Awaitable[Answer]]

# The one place where refusals become HTTP answers: status and the `code` SDKs see.
_ANSWERS: dict[type[Rejected], tuple[int, str]] = {
    InvalidRequest: (400, "bad_request"),
    Unauthenticated: (401, "invalid_write_key"),
    SourceDisabled: (404, "not_found"),
    NoSuchEndpoint: (404, "not_found"),
    MethodNotAllowed: (405, "method_not_allowed"),
    TooLarge: (413, "payload_too_large"),
    RateLimited: (429, "rate_limited"),
}
_JSON = ("content-type", "application/json")
_TEXT = ("content-type", "text/plain; charset=utf-8")
# Browser config is per source and may echo request headers; each pixel hit must reach us.
_NO_STORE = ("cache-control", "no-store")
_SDK_METRICS_BYTES = 64 * 1024
# The gateway's sessions (the group commits' above all) have the pages they write (COPY's ring of
# buffers) go to disk as they go, rather than pile up in the kernel for the next checkpoint's
# fsync, behind which every commit's WAL flush then waits: under load, commits stalled up to
# ~680 ms without, ~210 ms with.
_SESSION_SETTINGS = {"backend_flush_after": "256kB"}
# a 1x1 transparent GIF, the answer to pixel requests
_PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
_SINGLE = {
    "track": "track",
    "t": "track",
    "identify": "identify",
    "i": "identify",
    "page": "page",
    "p": "page",
    "screen": "screen",
    "s": "screen",
    "group": "group",
    "g": "group",
    "alias": "alias",
    "a": "alias",
}


class Gateway:
    def __init__(self, options: GatewayOptions) -> None:
        self._options = options
        self._metrics = GatewayMetrics()
        self._limiter = RateLimiter()
        self._clock = Clock()
        self._basic_keys: dict[str, str] = {}
        self._spool_held = False
        self._sdk = None if options.sdk_dir is None else SdkDirectory(options.sdk_dir)
        # HTTPS: the certificate in service, put there again when its files change
        self.tls = None
        if options.tls_cert is not None and options.tls_key is not None:
            self.tls = Served(options.tls_cert, options.tls_key)
        self._tls_watch: asyncio.Task[None] | None = None
        self._routes: dict[tuple[str, str], Handler] = {
            ("POST", "/v1/batch"): partial(self._ingest, None),
            ("POST", "/v1/b"): partial(self._ingest, None),
            ("POST", "/v1/import"): partial(self._ingest, None),
            ("POST", "/beacon/v1/batch"): partial(self._ingest, None),
            ("GET", "/pixel/v1/track"): partial(self._pixel, "track"),
            ("GET", "/pixel/v1/page"): partial(self._pixel, "page"),
            ("GET", "/sourceConfig"): self._source_config,
            ("POST", "/v1/m"): self._sdk_metrics,
            ("GET", "/health"): self._health,
            ("GET", "/metrics"): self._render_metrics,
        }
        for path, call_type in _SINGLE.items():
            self._routes["POST", f"/v1/{path}"] = partial(self._ingest, call_type)

    # -- lifecycle, in each gateway process -------------------------------------------------

    async def startup(self) -> None:
        opts = self._options
        self._pool = connection_pool(
            opts.database_url, max_size=opts.pool_size, settings=_SESSION_SETTINGS
        )
        await self._pool.open(wait=False)
        self._sources = SourceDirectory(self._pool, opts.database_url)
        await self._sources.start()
        self._spool = None
        self._heartbeat = Heartbeat(self._pool, "gateway", report=self._report)
        self._log_table = LogTable(self._pool)
        await self._log_table.start()
        if opts.spool_dir is not None:  # (with a bound of 0, what is left is still moved in)
            self._spool = Spool(
                opts.spool_dir, opts.spool_max_bytes, self._pool, self._log_table,
                observe=self._spool_observed,
            )  # fmt: skip
            self._spool.start()
        self._commit = GroupCommit(
            self._pool,
            window=opts.commit_window,
            max_rows=opts.commit_max_rows,
            max_inflight=opts.commit_inflight,
            log_table=self._log_table,
            spool=self._spool,
            observe=self._metrics.commit,
        )
        self._commit.start()
        self._pacing = Pacing(self._pool, opts.max_pacing, self._metrics.pacing)
        self._pacing.start()
        self._rejections = RejectionLog(self._pool)
        self._rejections.start()
        self._heartbeat.start()
        self._metrics.start()
        if self.tls is not None:
            self._tls_watch = asyncio.create_task(self._watch_certificate(), name="tls-watch")

    async def _watch_certificate(self) -> None:
        """Put a renewed certificate in service: the next handshakes use it."""
        assert self.tls is not None
        while True:
            await asyncio.sleep(TLS_CHECK_EVERY)
            try:
                if self.tls.refresh():
                    log.info(
                        "HTTPS certificate renewed, in service: %s", self.tls.certificate.said()
                    )
                    self._heartbeat.beat_soon()
            except BadCertificate as exc:
                log.error("the HTTPS certificate in service stays: %s", exc)
            except Exception:  # (the task must outlive any surprise: renewals depend on it)
                log.exception("looking for a renewed HTTPS certificate failed")

    def _report(self) -> Report:
        """With each heartbeat: what waits in this host's spool (for the overview and
        `sluice status`), and when the HTTPS certificate in service expires."""
        report = {} if self.tls is None else {TLS_EXPIRES: self.tls.certificate.expires}
        if self._spool is None:
            return report
        try:
            return report | self._spool.report()
        except OSError as exc:
            log.error("cannot read the spool: %s", exc)
            return report

    def _spool_observed(self, spooled: int, drained: int, size: int) -> None:
        self._metrics.spool(spooled, drained, size)
        if (size > 0) != self._spool_held:  # the overview hears of it now, not in 10 s
            self._spool_held = size > 0
            self._heartbeat.beat_soon()

    async def shutdown(self) -> None:
        if self._tls_watch is not None:
            self._tls_watch.cancel()
        await self._pacing.stop()
        await self._commit.stop()
        if self._spool is not None:
            await self._spool.stop()
        await self._rejections.stop()
        await self._heartbeat.stop()
        await self._log_table.stop()
        await self._sources.stop()
        await self._pool.close()
        await self._metrics.stop()

    # -- dispatch -------------------------------------------------------------------------

    async def handle(self, request: Request) -> Answer:
        try:
            status, headers, body = await self._dispatch(request)
        except Rejected as exc:
            status, code = _ANSWERS.get(type(exc), (400, "bad_request"))
            status, headers, body = _error(status, code, exc.message)
        except DatabaseUnavailable:
            status, headers, body = _error(503, "unavailable", "the database is unavailable; retry")
        except Exception:
            # not the path: /v1/projects/<writeKey>/settings carries a write key
            log.exception("unexpected error answering a %s request", request.method)
            status, headers, body = _error(500, "internal_error", "internal error")
        headers.extend(_cors(request))
        return status, headers, body

    def _dispatch(self, request: Request) -> Awaitable[Answer]:
        path = request.path.rstrip("/") or "/"
        handler = self._routes.get((request.method, path))
        if handler is not None:
            return handler(request)
        if request.method in ("GET", "HEAD") and self._sdk is not None:
            accepts_gzip = "gzip" in request.headers.get("accept-encoding", "")
            found = self._sdk.find(path, accepts_gzip)
            if found is not None:
                return _sdk_answer(request, found)
        if request.method == "OPTIONS":
            return _preflight(request)
        if (
            request.method == "GET"
            and path.startswith("/v1/projects/")
            and path.endswith("/settings")
        ):
            return self._segment_settings(request, path.split("/")[3])
        if any(route_path == path for _, route_path in self._routes):
            raise MethodNotAllowed(f"{request.method} is not allowed on {path}")
        raise NoSuchEndpoint(f"no such endpoint: {path}")

    # -- ingestion ------------------------------------------------------------------------

    async def _ingest(self, call_type: str | None, request: Request) -> Answer:
        await self._take_in(call_type, request)
        # Committed; only the answer waits (docs/gateway.md, Pacing).
        await self._pacing.wait()
        return 200, [_TEXT], b"OK"

    async def _take_in(self, call_type: str | None, request: Request) -> None:
        """Authenticate, parse and commit a request's events (or raise what is wrong)."""
        source: Source | None = None
        events = 1
        try:
            # A key beside the body is checked before the body is read (or decompressed):
            # work for anyone without a key stays cheap.
            outside = _basic_key(request, self._basic_keys) or _query_key(request)
            if outside is not None:
                source = await self._authenticate(outside)
            raw = await body.read(request, self._options.max_request_bytes)
            if call_type is None:
                parsed = messages.parse_batch(raw)
            else:
                parsed = messages.parse_single(raw, call_type)
            events = len(parsed.messages)
            if source is None:
                source = await self._authenticate(parsed.write_key)
            facts = self._facts(request, source)
            rows, refused = messages.rows(parsed, facts)
            if not rows:  # every message too large
                events = 0  # (counted as they are kept)
                self._refuse(source, facts, refused)
                raise TooLarge(refused[0].reason)
            self._check_rate(source, len(rows))
            await self._commit.append(rows)
        except (Rejected, DatabaseUnavailable):
            self._metrics.count(source.name if source else "unknown", "rejected", events)
            raise
        self._metrics.count(source.name, "accepted", len(rows))
        if refused:  # kept once the rest is committed: a request tried again is not kept twice
            self._refuse(source, facts, refused)

    def _refuse(
        self, source: Source, facts: messages.RequestFacts, refused: list[messages.Refusal]
    ) -> None:
        """Keep messages refused one by one for the user to see, and count them."""
        self._metrics.count(source.name, "rejected", len(refused))
        self._rejections.add([
            Rejection(facts.received_at, source.id, r.reason, r.size, head_of(r.message))
            for r in refused
        ])  # fmt: skip

    async def _pixel(self, call_type: str, request: Request) -> Answer:
        source: Source | None = None
        try:
            params = parse_qsl(request.query_string, keep_blank_values=True)
            source = await self._authenticate(dict(params).get("writeKey"))
            row = messages.from_pixel(iter(params), call_type, self._facts(request, source))
            self._check_rate(source, 1)
            await self._commit.append([row])
        except (Rejected, DatabaseUnavailable):
            self._metrics.count(source.name if source else "unknown", "rejected", 1)
            raise
        self._metrics.count(source.name, "accepted", 1)
        return 200, [("content-type", "image/gif"), _NO_STORE], _PIXEL

    async def _authenticate(self, write_key: str | None) -> Source:
        if not write_key:
            raise Unauthenticated("no write key: send it as Basic auth user, or as writeKey")
        source = await self._sources.find(write_key)
        if source is None:
            raise Unauthenticated("unknown write key")
        if not source.enabled:
            raise SourceDisabled(f"source {source.name!r} is disabled")
        return source

    def _facts(self, request: Request, source: Source) -> messages.RequestFacts:
        return messages.RequestFacts.of(
            source.id, self._clock.now(), self._client_ip(request), self._options.max_message_bytes
        )

    def _client_ip(self, request: Request) -> str:
        """The peer's address, or the client's from X-Forwarded-For when a trusted proxy sent it."""
        return client_address(
            _peer(request), request.headers.get("x-forwarded-for"), self._options.trusted_proxies
        )

    def _request_base_url(self, request: Request) -> str:
        """This gateway's URL as the client reached it (no public URL being configured): the
        scheme a trusted proxy forwards, else the connection's own."""
        scheme = request.scheme
        if is_trusted(_peer(request), self._options.trusted_proxies):
            forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
            scheme = forwarded if forwarded in ("http", "https") else scheme
        host = request.headers.get("host") or request.authority or "localhost"
        return f"{scheme}://{host}"

    def _check_rate(self, source: Source, events: int) -> None:
        if not source.rate_limit:
            return
        share = source.rate_limit / self._options.processes
        if not self._limiter.allow(source.id, share, events):
            raise RateLimited(f"source {source.name!r} is over {source.rate_limit} events/s")

    # -- browser SDK config, health, metrics -----------------------------------------------

    async def _source_config(self, request: Request) -> Answer:
        key = _basic_key(request, self._basic_keys) or _query_key(request)
        source = await self._authenticate(key)
        return (
            200,
            [_JSON, _NO_STORE],
            msgspec.json.encode(browser.rudderstack_source_config(source)),
        )

    async def _segment_settings(self, request: Request, write_key: str) -> Answer:
        source = await self._authenticate(write_key)
        public_url = self._options.public_url or self._request_base_url(request)
        return (
            200,
            [_JSON, _NO_STORE],
            msgspec.json.encode(browser.segment_settings(source, public_url)),
        )

    async def _sdk_metrics(self, request: Request) -> Answer:
        """analytics-next's own metrics (`metrics.host` in the settings served): counted, so
        that nothing of a first-party set-up goes to Segment's host, and otherwise dropped."""
        raw = await body.read(request, _SDK_METRICS_BYTES)
        try:
            series = msgspec.json.decode(raw, type=_SdkMetrics).series
        except msgspec.DecodeError:
            raise InvalidRequest('expected {"series": [...]}') from None
        self._metrics.sdk_metrics(len(series))
        return 200, [_TEXT], b"OK"

    async def _health(self, request: Request) -> Answer:
        await self._commit.ping()
        return 200, [_JSON], b'{"status":"ok"}'

    async def _render_metrics(self, request: Request) -> Answer:
        return 200, [("content-type", METRICS_CONTENT_TYPE)], self._metrics.render()


async def _sdk_answer(request: Request, found: SdkFile) -> Answer:
    headers = [("cache-control", "public, max-age=3600"), ("etag", found.etag)]
    if found.gzipped:
        headers.append(("content-encoding", "gzip"))
    headers.append(("vary", "Accept-Encoding"))
    if request.headers.get("if-none-match") == found.etag:
        return 304, headers, b""
    return 200, [("content-type", found.content_type), *headers], found.body


class _SdkMetrics(msgspec.Struct):
    series: list[msgspec.Raw]


def _error(status: int, code: str, message: str) -> Answer:
    body = msgspec.json.encode({"code": code, "message": message})
    headers = [_JSON]
    if status in (429, 503):
        headers.append(("retry-after", "1"))  # Segment's SDKs wait this long before retrying
    return status, headers, body


def _cors(request: Request) -> Headers:
    origin = request.headers.get("origin")
    if not origin:
        return [("access-control-allow-origin", "*")]
    return [
        ("access-control-allow-origin", origin),
        ("access-control-allow-credentials", "true"),
        ("vary", "Origin"),
    ]


async def _preflight(request: Request) -> Answer:
    requested = request.headers.get("access-control-request-headers")
    headers = [
        ("access-control-allow-methods", "GET, POST, OPTIONS"),
        ("access-control-max-age", "86400"),
    ]
    if requested:
        headers.append(("access-control-allow-headers", requested))
    return 204, headers, b""


def _basic_key(request: Request, cache: dict[str, str]) -> str | None:
    header = request.headers.get("authorization")
    if not header or header[:6].lower() != "basic ":
        return None
    key = cache.get(header)
    if key is None:
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise Unauthenticated("the Authorization header is not valid Basic auth") from None
        key = decoded.partition(":")[0]
        if len(cache) > 10_000:
            cache.clear()
        cache[header] = key
    return key


def _query_key(request: Request) -> str | None:
    if "writeKey" not in request.query_string:
        return None
    return dict(parse_qsl(request.query_string)).get("writeKey")


def _peer(request: Request) -> str:
    return request.client.rsplit(":", 1)[0].strip("[]")
