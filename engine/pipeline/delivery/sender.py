"""HTTP to vendors: one client per worker, answers reduced to what the router keeps.

pyreqwest (Rust's reqwest, with its connection pool and HTTP/1.1 and HTTP/2 stacks) rather
than a pure-Python client: the router keeps hundreds of requests in flight, and measured on
this kind of machine it costs about half the CPU per request of aiohttp (and a third of httpx).
"""

import email.utils
import re
import time
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlencode, urlsplit

from msgspec import Raw
from pyreqwest import exceptions
from pyreqwest.client import Client, ClientBuilder
from pyreqwest.response import Response

from engine import codec
from engine.destinations.base import Request
from engine.errors import SluiceError

EXCERPT = 2000  # characters of an answer kept with the attempt
_MAX_BODY = 256 * 1024  # bytes of an answer read (vendors answer batches with per-event detail)


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    retry_after: float | None

    @property
    def excerpt(self) -> str:
        return self.body[:EXCERPT].decode("utf-8", "replace")


_EPOCH_2001 = 1_000_000_000  # seconds: a larger number is a Unix time, not a wait
_FORM = "application/x-www-form-urlencoded"
_JSON = "application/json"
_OS_ERROR = re.compile(r"\s*\(os error \d+\)")


class TransportError(SluiceError):
    """No answer: connection refused or reset, DNS failure, timeout. Worth retrying."""


class MalformedRequest(SluiceError):
    """The request cannot be sent as it is (a malformed URL or header): retrying cannot help."""


class Sender:
    def __init__(self) -> None:
        self._client: Client | None = None

    async def start(self) -> None:
        self._client = (
            ClientBuilder()
            .follow_redirects(False)
            .pool_idle_timeout(timedelta(seconds=60))
            .error_for_status(False)
            .build()
        )

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            # Dropped now, not when the interpreter finalizes: the client's runtime threads
            # must not outlive a short-lived process's Python state.
            self._client = None

    async def send(self, request: Request, timeout: float, limit: int = _MAX_BODY) -> Answer:
        """The vendor's answer, its body read up to `limit` bytes."""
        assert self._client is not None, "start() first"
        url = request.url
        if request.params:
            url += ("&" if "?" in url else "?") + urlencode(request.params)
        try:
            builder = (
                self._client.request(request.method, url)
                .headers(_headers(request))
                .timeout(timedelta(seconds=timeout))
            )
            if request.body is not None:
                builder = builder.body_bytes(_body(request))
            async with builder.build_streamed() as response:
                body = await _read_some(response, limit)
                retry_after = _come_back(response)
                status = response.status
        except exceptions.RequestError as exc:
            raise TransportError(_described(exc, request.url, timeout)) from None
        except (exceptions.BuilderError, ValueError, UnicodeError) as exc:
            raise MalformedRequest(_unmade(exc)) from None
        return Answer(status, body, retry_after)


def _described(exc: exceptions.RequestError, url: str, timeout: float) -> str:
    """Why no answer came, as a sentence a person can act on: where to (host and port only, as
    the URL may hold a token) and the innermost cause (the outer ones repeat the URL)."""
    where, causes, cause = _where(url), _causes(exc), _root_cause(exc)
    if isinstance(exc, exceptions.RequestTimeoutError):
        return f"timed out after {timeout:g} s waiting for an answer from {where}"
    if "dns error" in causes:
        return f"could not connect to {where}: no such host ({cause.rsplit(': ', 1)[-1]})"
    if "certificate" in causes:
        return f"TLS: certificate verify failed for {where} ({cause})"
    if "tls" in causes or "ssl" in causes:
        return f"TLS: could not make a secure connection to {where} ({cause})"
    if "connection closed" in causes:
        return f"{where} closed the connection before answering"
    if "connection reset" in causes:
        return f"{where} reset the connection before answering"
    if "client error (connect)" in causes:
        return f"could not connect to {where}: {cause}"
    if isinstance(exc, exceptions.DecodeError):
        return f"{where} did not answer in HTTP ({cause})"
    return f"the connection to {where} failed: {cause}"


def _unmade(exc: Exception) -> str:
    """Why the request could not be made, without what it was made of: the innermost cause
    but those naming the URL, or the words before a colon (after it may come a header's
    value, a secret)."""
    if isinstance(exc, exceptions.DetailedPyreqwestError):
        return f"the request could not be made: {_root_cause(exc)}"
    why = str(exc).split(":", 1)[0].strip() or type(exc).__name__
    return f"the request could not be made: {_lowered(why)}"


def _where(url: str) -> str:
    """host:port of a URL (the default port of its scheme when it names none)."""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return "the destination"
    return f"{parts.hostname}:{port}" if parts.hostname else "the destination"


def _causes(exc: exceptions.DetailedPyreqwestError) -> str:
    """The causes' messages but those naming the URL, lower case, in one line (to look for
    words in)."""
    return " | ".join(m for m in _messages(exc) if "url (" not in m).lower()


def _root_cause(exc: exceptions.DetailedPyreqwestError) -> str:
    """The innermost cause, without an `(os error N)` suffix; the outer ones that name the URL
    are never used (it may hold a token)."""
    causes = [m for m in _messages(exc) if "url (" not in m]
    cause = _OS_ERROR.sub("", causes[-1] if causes else exc.message).strip().rstrip(".")
    return _lowered(cause)


def _lowered(text: str) -> str:
    """The text to go on a sentence: its first letter lower case, unless an acronym's (URL)."""
    return text if text[1:2].isupper() else text[:1].lower() + text[1:]


def _messages(exc: exceptions.DetailedPyreqwestError) -> list[str]:
    details = exc.details if isinstance(exc.details, dict) else {}
    return [cause["message"] for cause in details.get("causes") or []]


def _headers(request: Request) -> dict[str, str]:
    """The request's headers; a body says what it is (a form, or JSON) unless the destination
    already did."""
    if request.body is None or any(name.lower() == "content-type" for name in request.headers):
        return request.headers
    return {**request.headers, "Content-Type": _FORM if request.body_format == "form" else _JSON}


def _body(request: Request) -> bytes:
    """JSON (a stored body, a `Raw`, goes out byte for byte) or a form."""
    if request.body_format == "form":
        fields = codec.decode(request.body) if isinstance(request.body, Raw) else request.body
        return urlencode(fields).encode()
    return codec.encode(request.body)


def _header(response: Response, name: str) -> str | None:
    try:
        return response.get_header(name)
    except ValueError:  # not valid text: as good as absent
        return None


async def _read_some(response: Response, limit: int) -> bytes:
    """The start of an answer's body: enough to show and to classify, never unbounded."""
    reader = response.body_reader
    chunks: list[bytes] = []
    size = 0
    while size < limit and (chunk := await reader.read(limit - size)) is not None:
        chunks.append(bytes(chunk))
        size += len(chunk)
    return b"".join(chunks)


def _come_back(response: Response) -> float | None:
    """When the vendor says to send again, in seconds: `Retry-After`, else the rate-limit
    headers some vendors send instead (Braze's `X-Ratelimit-Retry-After`, Intercom's
    `X-RateLimit-Reset`, a Unix time)."""
    found = _retry_after(_header(response, "Retry-After"))
    if found is None:
        found = _retry_after(_header(response, "X-Ratelimit-Retry-After"))
    if found is None:
        found = _reset(_header(response, "X-RateLimit-Reset"))
    return found


def _reset(value: str | None) -> float | None:
    """A rate limit's reset as a Unix time; other vendors' counts of seconds are not read."""
    try:
        at = float(value or "")
    except ValueError:
        return None
    return max(0.0, at - time.time()) if _EPOCH_2001 < at < 2 * _EPOCH_2001 else None


def _retry_after(value: str | None) -> float | None:
    """Retry-After in seconds, from either of its forms (seconds, or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
