"""What the installer's tests share: the packages the container installs from, a booted
container per test module (booting one takes about half a minute), the sink the installed
Sluice delivers to, and running `install.sh` there."""

import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.install.container import HOST_ADDRESS, Container
from tests.sink import Sink

CHECKOUT = Path(__file__).resolve().parents[2]
SERVICES = ("sluice-gateway", "sluice-worker", "sluice-web")


@pytest.fixture(scope="session")
def packages(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Sluice's wheel and every package it needs, made here: the container installs offline
    from them (its pip never reaches an index), like an air-gapped host would."""
    wheelhouse = tmp_path_factory.mktemp("wheelhouse")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", str(wheelhouse),
         str(CHECKOUT), "pip", "wheel"],
        check=True, capture_output=True, timeout=900,
    )  # fmt: skip
    return wheelhouse


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory, packages: Path) -> Iterator[Container]:
    with Container.booted(tmp_path_factory.mktemp("container")) as container:
        # The checkout (as it is, uncommitted changes too) and the packages, as an
        # administrator would copy them over.
        subprocess.run(["cp", "-a", str(packages), str(container.root / "root/wheelhouse")],
                       check=True)  # fmt: skip
        files = subprocess.run(
            ["git", "-C", str(CHECKOUT), "ls-files", "-z", "--cached", "--others",
             "--exclude-standard"],
            check=True, capture_output=True,
        ).stdout  # fmt: skip
        packed = subprocess.run(
            ["tar", "-C", str(CHECKOUT), "--null", "--files-from=-", "-cf", "-"], input=files,
            check=True, capture_output=True,
        ).stdout  # fmt: skip
        (container.root / "root/sluice").mkdir()
        subprocess.run(["tar", "-C", str(container.root / "root/sluice"), "-xf", "-"],
                       input=packed, check=True)  # fmt: skip
        yield container


@pytest.fixture(scope="module")
def sink() -> Iterator[Sink]:
    with Sink(host=HOST_ADDRESS) as sink:
        yield sink


def install(host: Container, *options: str, env: str = "") -> subprocess.CompletedProcess[str]:
    """install.sh with the wheel made here and `options`; `env`: NAME=value words before it."""
    wheel = next(p.name for p in (host.root / "root/wheelhouse").glob("sluice-*.whl"))
    return host.run(
        f"{env} /root/sluice/installer/install.sh --wheel /root/wheelhouse/{wheel}"
        f" --wheelhouse /root/wheelhouse {shlex.join(options)}",
        check=False,
    )


def active(host: Container) -> dict[str, str]:
    states = host.run(f"systemctl is-active {' '.join(SERVICES)}", check=False).stdout.split()
    return dict(zip(SERVICES, states, strict=True))


def delivered_ids(sink: Sink) -> set[str]:
    return {body["messageId"] for body in sink.bodies()}


def wait_delivered(sink: Sink, ids: set[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not ids <= delivered_ids(sink):
        missing = ids - delivered_ids(sink)
        assert time.monotonic() < deadline, f"{len(missing)} not delivered, e.g. {min(missing)}"
        time.sleep(0.25)
