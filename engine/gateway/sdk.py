"""The browser SDKs, served by the gateway from the SDK directory, so that a site loads
everything from its own Sluice.

`sluice sdk install` fills the directory from the npm registry (`appliance/sdk.py`):

    rudderstack/v3/{modern,legacy}/{bundled/,}rsa.min.js   @rudderstack/analytics-js's builds
    segment/analytics.min.js                               @segment/analytics-next, standalone
    segment/bundles/<chunk>.bundle.<hash>.js               the chunks it loads itself

Anything in it is served under `/sdk/`. Segment's snippet needs no change but its host: its
loader is also at `/analytics.js/v1/<writeKey>/analytics.min.js` and its chunks at
`/analytics-next/bundles/`, where it looks for them beside the loader. A file with a `.gz` beside
it is sent compressed to clients that accept gzip.
"""

import hashlib
from dataclasses import dataclass
from pathlib import Path
from stat import S_ISREG

_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".map": "application/json",
    ".json": "application/json",
    ".css": "text/css; charset=utf-8",
}
_ALIASES = (
    ("/analytics-next/bundles/", "segment/bundles/"),
    ("/sdk/", ""),
)
_SEGMENT_LOADER = "segment/analytics.min.js"
_MAX_CACHED = 512  # files kept in memory (the SDKs have a few dozen)


@dataclass(frozen=True)
class SdkFile:
    body: bytes
    content_type: str
    etag: str
    gzipped: bool


class SdkDirectory:
    """Files of the SDK directory, read once and again when they change on disk."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._cache: dict[tuple[Path, int, int], SdkFile] = {}

    def find(self, path: str, accepts_gzip: bool) -> SdkFile | None:
        """The file a request path names, or None (not an SDK path, or no such file)."""
        relative = _relative(path)
        if relative is None:
            return None
        parts = relative.split("/")
        if any(not p or p.startswith(".") or "\\" in p or "\0" in p for p in parts):
            return None  # no hidden files, no climbing out, no empty segments
        target = self._root.joinpath(*parts)  # (symbolic links are not followed: see _read)
        if accepts_gzip:
            found = self._read(target.with_name(target.name + ".gz"), target.suffix, True)
            if found is not None:
                return found
        return self._read(target, target.suffix, False)

    def _read(self, file: Path, suffix: str, gzipped: bool) -> SdkFile | None:
        try:
            stat = file.lstat()  # a link could lead out of the directory: not served
            inside = [p for p in file.parents if p != self._root and p.is_relative_to(self._root)]
            if not S_ISREG(stat.st_mode) or any(p.is_symlink() for p in inside):
                return None
        except OSError:  # (no such file, a name too long, no permission…): not found
            return None
        key = (file, stat.st_mtime_ns, stat.st_size)
        found = self._cache.get(key)
        if found is None:
            try:
                body = file.read_bytes()
            except OSError:
                return None
            etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
            found = SdkFile(body, _TYPES.get(suffix, "application/octet-stream"), etag, gzipped)
            if len(self._cache) >= _MAX_CACHED:
                self._cache.clear()
            self._cache[key] = found
        return found


def _relative(path: str) -> str | None:
    if path.startswith("/analytics.js/v1/") and path.endswith("/analytics.min.js"):
        return _SEGMENT_LOADER  # (any write key: its settings are what the key unlocks)
    for prefix, directory in _ALIASES:
        if path.startswith(prefix):
            return directory + path[len(prefix) :]
    return None
