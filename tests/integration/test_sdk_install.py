"""`sluice sdk install` against a registry played by a local HTTP server, and the gateway
serving what it installed."""

import base64
import contextlib
import gzip
import hashlib
import http.server
import io
import json
import os
import subprocess
import sys
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.servers import free_port, running_gateway

RUDDER = {
    "package/dist/npm/modern/bundled/umd/index.js": b"/* rudder modern */",
    "package/dist/npm/legacy/bundled/umd/index.js": b"/* rudder legacy */",
    "package/dist/npm/modern/umd/index.js": b"/* not served: loads plugins from a CDN */",
}
SEGMENT = {
    "package/dist/umd/standalone.js": b"/* segment loader */",
    "package/dist/umd/407.bundle.abc.js": b"/* chunk */",
    "package/dist/umd/407.bundle.abc.js.gz": gzip.compress(b"/* chunk */"),
    "package/dist/umd/index.js": b"/* not served */",
}


def tarball(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


@contextlib.contextmanager
def registry(tampered: bool = False) -> Iterator[str]:
    """npm's registry API for the two packages (tampered: a tarball that is not the one hashed)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    tarballs = {"/rudder.tgz": tarball(RUDDER), "/segment.tgz": tarball(SEGMENT)}
    meta = {}
    packages = (("/rudder.tgz", "@rudderstack%2fanalytics-js", "3.34.1"),
                ("/segment.tgz", "@segment%2fanalytics-next", "1.84.3"))  # fmt: skip
    for path, name, version in packages:
        digest = base64.b64encode(hashlib.sha512(tarballs[path]).digest()).decode()
        meta[f"/{name}/{version}"] = json.dumps({"version": version, "dist": {
            "tarball": base + path, "integrity": f"sha512-{digest}"}}).encode()  # fmt: skip
    if tampered:
        tarballs["/segment.tgz"] = tarball({**SEGMENT, "package/dist/umd/standalone.js": b"evil"})

    class Registry(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = meta.get(self.path.replace("%2F", "%2f")) or tarballs.get(self.path)
            self.send_response(200 if body else 404)
            self.send_header("content-length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Registry)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield base
    finally:
        server.shutdown()
        server.server_close()


def install(sdk_dir: Path, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "appliance", "sdk", "install", "--registry", url],
        env={**os.environ, "SLUICE_SDK_DIR": str(sdk_dir), "SLUICE_CONFIG": os.devnull},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_the_sdks_are_installed_checked_and_served(workspace_config: str, tmp_path: Path) -> None:
    sdk_dir = tmp_path / "sdk"
    with registry() as url:
        done = install(sdk_dir, url)
    assert done.returncode == 0, done.stderr
    assert "@rudderstack/analytics-js 3.34.1 installed" in done.stdout
    files = sorted(str(p.relative_to(sdk_dir)) for p in sdk_dir.rglob("*") if p.is_file())
    assert files == [
        "rudderstack/v3/legacy/analytics.js", "rudderstack/v3/modern/analytics.js", "sdk.json",
        "segment/analytics.min.js", "segment/bundles/407.bundle.abc.js",
        "segment/bundles/407.bundle.abc.js.gz",
    ]  # fmt: skip
    (sdk_dir / ".hidden").write_text("secret")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.js").write_text("secret")
    (sdk_dir / "linked").symlink_to(tmp_path / "outside")
    (sdk_dir / "linked.js").symlink_to(tmp_path / "outside" / "secret.js")
    with running_gateway(workspace_config, tmp_path, sdk_dir=str(sdk_dir)) as gw:
        modern = httpx.get(f"{gw.url}/sdk/rudderstack/v3/modern/analytics.js")
        assert (modern.status_code, modern.content) == (200, b"/* rudder modern */")
        assert modern.headers["content-type"] == "text/javascript; charset=utf-8"
        assert modern.headers["access-control-allow-origin"] == "*"
        again = httpx.get(modern.url, headers={"if-none-match": modern.headers["etag"]})
        assert (again.status_code, again.content) == (304, b"")
        loader = httpx.get(f"{gw.url}/analytics.js/v1/any-key/analytics.min.js")
        assert loader.content == b"/* segment loader */"
        chunk = f"{gw.url}/analytics-next/bundles/407.bundle.abc.js"
        plain = httpx.get(chunk, headers={"accept-encoding": "identity"})
        assert (plain.content, plain.headers.get("content-encoding")) == (b"/* chunk */", None)
        packed = httpx.get(chunk, headers={"accept-encoding": "gzip"})  # (httpx unpacks it)
        assert (packed.content, packed.headers["content-encoding"]) == (b"/* chunk */", "gzip")
        head = httpx.head(f"{gw.url}/sdk/sdk.json")
        assert head.status_code == 200 and head.content == b""
        for path in ("/sdk/.hidden", "/sdk/../sluice.toml", "/sdk/%2e%2e/sluice.toml",
                     "/sdk/segment", "/sdk//sdk.json", "/sdk/missing.js", "/sdk/linked.js",
                     "/sdk/linked/secret.js", f"/sdk/{'n' * 300}.js"):  # fmt: skip
            refused = httpx.get(f"{gw.url}{path}")
            assert refused.status_code == 404, path
        # A file changed on disk is served as it is now.
        (sdk_dir / "segment" / "analytics.min.js").write_bytes(b"/* newer */")
        assert httpx.get(loader.url).content == b"/* newer */"


def test_a_tarball_that_does_not_match_its_hash_changes_nothing(tmp_path: Path) -> None:
    sdk_dir = tmp_path / "sdk"
    with registry() as url:
        assert install(sdk_dir, url).returncode == 0
    with registry(tampered=True) as url:
        done = install(sdk_dir, url)
    assert done.returncode == 1
    assert "@segment/analytics-next@1.84.3: the tarball does not match its integrity hash" in (
        done.stderr
    )
    assert (sdk_dir / "segment" / "analytics.min.js").read_bytes() == b"/* segment loader */"
    assert not list(tmp_path.glob("sdk.*"))  # nothing half-built left beside it
