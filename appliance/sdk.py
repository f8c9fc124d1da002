"""`sluice sdk install`: the browser SDKs from the npm registry into the directory the gateway
serves them from (`engine/gateway/sdk.py`), so that a site loads them from its own Sluice.

Each package's tarball is checked against the integrity hash the registry publishes for it
before anything is unpacked; only the files the gateway serves are taken, under names chosen
here (never paths from the archive). The new directory replaces the old one whole: a gateway
serves either the old files or the new ones, never a mix.
"""

import argparse
import base64
import hashlib
import io
import json
import shutil
import tarfile
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from urllib.parse import quote

import httpx

RUDDERSTACK = "@rudderstack/analytics-js"
SEGMENT = "@segment/analytics-next"
# The versions Sluice is tested with; `--rudderstack VERSION` / `--segment VERSION` choose others.
DEFAULT_VERSIONS = {RUDDERSTACK: "3.34.1", SEGMENT: "1.84.3"}
MANIFEST = "sdk.json"
_TIMEOUT = 60.0
_MAX_TARBALL = 64 * 1024 * 1024  # (these are 1-2 MB)


class SdkInstallError(Exception):
    pass


def install_command(args: argparse.Namespace, sdk_dir: Path) -> str:
    versions = {RUDDERSTACK: args.rudderstack, SEGMENT: args.segment}
    installed = install(sdk_dir, args.registry.rstrip("/"), versions)
    return "\n".join(f"{name} {version} installed in {sdk_dir}" for name, version in installed)


def install(sdk_dir: Path, registry: str, versions: dict[str, str]) -> list[tuple[str, str]]:
    """Fetch, check and unpack each package; then put the new directory in place."""
    building = sdk_dir.with_name(sdk_dir.name + ".new")
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir(parents=True)
    installed = []
    try:
        with httpx.Client(timeout=_TIMEOUT, follow_redirects=True) as client:
            for name, version in versions.items():
                resolved, tarball = _fetch(client, registry, name, version)
                with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
                    _UNPACK[name](archive, building)
                installed.append((name, resolved))
        manifest = {"packages": dict(installed), "installed_at": datetime.now(UTC).isoformat()}
        (building / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        _replace(sdk_dir, building)
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return installed


def _fetch(client: httpx.Client, registry: str, name: str, version: str) -> tuple[str, bytes]:
    """The package's exact version and its tarball, checked against the registry's hash."""
    where = f"{registry}/{quote(name, safe='@')}/{quote(version)}"
    try:
        meta = client.get(where)
        if meta.status_code == 404:
            raise SdkInstallError(f"{name}@{version} is not in the registry ({registry})")
        meta.raise_for_status()
        dist = meta.json()["dist"]
        content = _download(client, dist["tarball"], f"{name}@{version}")
    except httpx.HTTPError as exc:
        raise SdkInstallError(f"cannot fetch {name}@{version} from {registry}: {exc}") from None
    except (ValueError, KeyError, TypeError):
        raise SdkInstallError(f"{registry} answered {name}@{version} with no tarball") from None
    algorithm, _, expected = str(dist.get("integrity", "")).partition("-")
    if algorithm != "sha512":
        raise SdkInstallError(f"{name}@{version}: the registry gives no sha512 integrity hash")
    if base64.b64encode(hashlib.sha512(content).digest()).decode() != expected:
        raise SdkInstallError(f"{name}@{version}: the tarball does not match its integrity hash")
    return str(meta.json().get("version", version)), content


def _download(client: httpx.Client, url: str, package: str) -> bytes:
    parts, size = [], 0
    with client.stream("GET", url) as answer:
        answer.raise_for_status()
        for part in answer.iter_bytes():
            size += len(part)
            if size > _MAX_TARBALL:
                raise SdkInstallError(f"{package}: the tarball is over {_MAX_TARBALL} bytes")
            parts.append(part)
    return b"".join(parts)


def _unpack_rudderstack(archive: tarfile.TarFile, into: Path) -> None:
    """The bundled builds (every plugin inside: nothing more is loaded from a CDN)."""
    for build in ("modern", "legacy"):
        _copy(archive, f"package/dist/npm/{build}/bundled/umd/index.js",
              into / "rudderstack" / "v3" / build / "analytics.js")  # fmt: skip


def _unpack_segment(archive: tarfile.TarFile, into: Path) -> None:
    """The standalone loader, and the chunks it loads from beside it."""
    _copy(archive, "package/dist/umd/standalone.js", into / "segment" / "analytics.min.js")
    for member in archive.getmembers():
        path = PurePosixPath(member.name)
        chunk = ".bundle." in path.name and not path.name.startswith(".")
        if member.isfile() and chunk and path.parent == PurePosixPath("package/dist/umd"):
            _copy(archive, member.name, into / "segment" / "bundles" / path.name)


_UNPACK = {RUDDERSTACK: _unpack_rudderstack, SEGMENT: _unpack_segment}


def _copy(archive: tarfile.TarFile, member: str, to: Path) -> None:
    try:
        source = archive.extractfile(member)
    except KeyError:
        source = None
    if source is None:
        raise SdkInstallError(f"the package has no {member.removeprefix('package/')}")
    to.parent.mkdir(parents=True, exist_ok=True)
    to.write_bytes(source.read())


def _replace(sdk_dir: Path, building: Path) -> None:
    old = sdk_dir.with_name(sdk_dir.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if sdk_dir.exists():
        sdk_dir.rename(old)
    building.rename(sdk_dir)
    shutil.rmtree(old, ignore_errors=True)
