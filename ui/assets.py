"""The UI's static files (`ui/static/`), read once at start: each is served under a name that
carries a hash of its content (`app.3f9c2a81d0.css`), so browsers may keep it for a year and an
upgrade is still seen at once; text files are gzipped once, here, rather than per request. The
plain names answer too, cached briefly with an ETag, for what cannot know the hash."""

import gzip
import hashlib
import mimetypes
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from litestar import Request, Response, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath

# Files smaller than this, or that do not shrink by a tenth, are sent as they are.
_WORTH_COMPRESSING = 512
_TEXT = ("text/", "application/javascript", "image/svg+xml", "application/json")
_SKIPPED = ("README.md",)
_FOREVER = "public, max-age=31536000, immutable"


@dataclass(frozen=True)
class Asset:
    body: bytes
    gzipped: bytes | None  # None: not worth compressing
    media_type: str
    etag: str  # the content hash, quoted
    immutable: bool  # asked for by its hashed name


class Assets:
    def __init__(self, directory: Path) -> None:
        self._urls: dict[str, str] = {}  # `app.css` → `/static/app.<hash>.css`
        self._served: dict[str, Asset] = {}  # both names → the file
        for path in sorted(p for p in directory.rglob("*") if p.is_file()):
            if path.name not in _SKIPPED:
                self._add(path.relative_to(directory).as_posix(), path.read_bytes())

    def _add(self, name: str, body: bytes) -> None:
        digest = hashlib.sha256(body).hexdigest()[:10]
        stem, dot, suffix = name.rpartition(".")
        hashed = f"{stem}.{digest}.{suffix}" if dot else f"{name}.{digest}"
        media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        packed = gzip.compress(body, 9, mtime=0) if media_type.startswith(_TEXT) else None
        if len(body) < _WORTH_COMPRESSING or packed is None or len(packed) > len(body) * 0.9:
            packed = None
        for served, immutable in ((hashed, True), (name, False)):
            self._served[served] = Asset(body, packed, media_type, f'"{digest}"', immutable)
        self._urls[name] = f"/static/{hashed}"

    def url(self, name: str) -> str:
        """The URL a page uses for the static file `name` (a template global)."""
        try:
            return self._urls[name]
        except KeyError:
            raise LookupError(f"there is no static file {name!r} in ui/static") from None

    def find(self, served_name: str) -> Asset | None:
        return self._served.get(served_name)


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an Accept-Encoding header allows gzip (`gzip;q=0` refuses it)."""
    for part in accept_encoding.lower().split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip() in ("gzip", "*"):
            quality = params.strip().removeprefix("q=")
            return not (params.strip().startswith("q=") and _zero(quality))
    return False


def _zero(quality: str) -> bool:
    try:
        return float(quality) == 0
    except ValueError:
        return False


@get("/static/{name:path}", opt={"public": True}, include_in_schema=False, sync_to_thread=False)
def static_file(request: Request[Any, Any, Any], name: FromPath[str]) -> Response[bytes]:
    asset = request.app.state.assets.find(name.lstrip("/"))
    if asset is None:
        raise NotFoundException("there is no such static file")
    headers = {
        "cache-control": _FOREVER if asset.immutable else "max-age=600",
        "etag": asset.etag,
        "vary": "accept-encoding",
    }
    body = asset.body
    if asset.gzipped is not None and accepts_gzip(request.headers.get("accept-encoding", "")):
        # (each encoding its own tag: a cache must not answer one with the other's bytes)
        body, headers["content-encoding"] = asset.gzipped, "gzip"
        headers["etag"] = f'{asset.etag[:-1]}-gzip"'
    if not asset.immutable and request.headers.get("if-none-match") == headers["etag"]:
        return Response(b"", status_code=304, headers=headers)
    return Response(body, media_type=asset.media_type, headers=headers)
