"""HTTP to vendors: one aiohttp session per worker, answers reduced to what the router keeps.

aiohttp rather than httpx: the router keeps hundreds of requests in flight, and aiohttp's
client does that at several times httpx's requests per second for the same CPU.
"""

import email.utils
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

import aiohttp

from engine import codec
from engine.destinations.base import Request

EXCERPT = 2000  # characters of an answer kept with the attempt


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    retry_after: float | None

    @property
    def excerpt(self) -> str:
        return self.body[:EXCERPT].decode("utf-8", "replace")


class TransportError(Exception):
    """No answer: connection refused or reset, DNS failure, timeout. Worth retrying."""


class InvalidRequest(Exception):
    """The request cannot be sent as it is (a malformed URL or header): retrying cannot help."""


class Sender:
    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=60, enable_cleanup_closed=True)
        self._session = aiohttp.ClientSession(
            connector=connector, auto_decompress=True, raise_for_status=False, trust_env=False
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def send(self, request: Request, timeout: float) -> Answer:
        assert self._session is not None, "start() first"
        url, data = request.url, None
        if request.params:
            url += ("&" if "?" in url else "?") + urlencode(request.params)
        if request.body is not None:
            data = (
                urlencode(request.body).encode()
                if request.body_format == "form"
                else codec.encode(request.body)
            )
        try:
            async with self._session.request(
                request.method,
                url,
                headers=request.headers,
                data=data,
                timeout=aiohttp.ClientTimeout(total=timeout),
                allow_redirects=False,
            ) as response:
                body = await response.read()
                return Answer(response.status, body, _retry_after(response.headers))
        except TimeoutError:
            raise TransportError(f"no answer within {timeout:g} s") from None
        except aiohttp.InvalidURL as exc:
            raise InvalidRequest(f"invalid URL: {exc}") from None
        except aiohttp.ClientError as exc:
            raise TransportError(f"{type(exc).__name__}: {exc}") from None
        except ValueError as exc:  # e.g. a header value aiohttp refuses
            raise InvalidRequest(str(exc)) from None


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """Retry-After in seconds, from either of its forms (seconds, or an HTTP date)."""
    value = headers.get("Retry-After")
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
