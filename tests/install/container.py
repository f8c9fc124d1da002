"""A Debian bookworm host with a real systemd, booted in a container (systemd-nspawn), for the
installer's tests.

The root filesystem is debootstrapped once and kept in /var/cache/sluice-tests; each test run
boots a copy of it. There is no machined on the test machines, so the container is entered
with nsenter (its PID 1 found from nspawn's children) and its network set up by hand: a veth
pair with fixed addresses, and NAT from the host so that apt inside reaches the package
registries — through this machine's own apt sources, proxy settings and CA certificates,
copied in.
"""

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

CACHE = Path("/var/cache/sluice-tests")
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
INCLUDE = "systemd,systemd-sysv,dbus,iproute2,ca-certificates"
HOST_PACKAGES = ("debootstrap", "systemd-container", "nftables")
NAME = "sluicetest"
LINK = f"ve-{NAME}"
HOST_ADDRESS, GUEST_ADDRESS = "10.213.0.1", "10.213.0.2"
_NFT_TABLE = "sluice_tests"
_REBOOTED = 133  # nspawn's exit status when the container asked for a reboot
# What apt and pip on this machine need to reach the registries, copied into the container.
_HOST_FILES = (
    "etc/apt/sources.list", "etc/apt/sources.list.d", "etc/apt/apt.conf.d",
    "etc/apt/trusted.gpg.d", "etc/pip.conf", "etc/xdg/pip", "usr/local/share/ca-certificates",
    "etc/ssl/certs/ca-certificates.crt",
)  # fmt: skip


def _host(*command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, check=check, timeout=600)


def host_tools() -> None:
    """Install what booting a container takes on this machine, if missing (apt)."""
    missing = [p for p in HOST_PACKAGES if _host("dpkg", "-s", p, check=False).returncode]
    if missing:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for command in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", *missing]):
            for _ in range(30):  # another apt may hold the dpkg lock for a moment
                done = subprocess.run(command, env=env, capture_output=True, text=True)
                if done.returncode == 0 or "lock" not in done.stderr:
                    break
                time.sleep(2)
            done.check_returncode()


def root_filesystem() -> Path:
    """The cached minimal bookworm with systemd, debootstrapped the first time (about 70 s)."""
    root = CACHE / f"{SUITE}-minbase"
    if (root / "usr/lib/systemd/systemd").exists():
        return root
    partial = root.with_name(root.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    _host("debootstrap", "--variant=minbase", f"--include={INCLUDE}", SUITE, str(partial), MIRROR)
    partial.rename(root)
    return root


class Container:
    """A booted copy of the root filesystem; `run` executes a shell command in it as root."""

    def __init__(self, root: Path, log: Path) -> None:
        self.root = root
        self._log = log
        self._nspawn: subprocess.Popen[bytes] | None = None
        self.leader = 0
        self._forwarding = Path("/proc/sys/net/ipv4/ip_forward").read_text().strip()

    @classmethod
    @contextlib.contextmanager
    def booted(cls, workdir: Path) -> Iterator["Container"]:
        host_tools()
        root = workdir / NAME
        _host("cp", "-a", "--reflink=auto", str(root_filesystem()), str(root))
        for name in _HOST_FILES:
            source = Path("/") / name
            if source.exists():
                target = root / name
                target.parent.mkdir(parents=True, exist_ok=True)
                _host("cp", "-a", "-T", str(source), str(target))
        (root / "etc/hostname").write_text(f"{NAME}\n")
        container = cls(root, workdir / "console.log")
        try:
            container._nat()
            container.boot()
            yield container
        finally:
            container.shutdown()
            container._no_nat()

    def boot(self) -> None:
        # The resolver configuration is copied at every boot: nspawn's own would point at a
        # resolver this container cannot reach.
        resolv = self.root / "etc/resolv.conf"
        resolv.unlink(missing_ok=True)
        shutil.copy("/etc/resolv.conf", resolv)
        with self._log.open("ab") as log:
            self._nspawn = subprocess.Popen(
                ["systemd-nspawn", "-b", "-D", str(self.root), "-M", NAME, "--register=no",
                 "--keep-unit", "--network-veth", "--console=passive", "--resolv-conf=off",
                 "--timezone=off", "--link-journal=no"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        self.leader = self._find_leader()
        self._addresses()
        self._wait_running()

    def _find_leader(self) -> int:
        """The container's PID 1 as this machine sees it: nspawn's child running systemd."""
        assert self._nspawn is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self._nspawn.poll() is not None:
                raise RuntimeError(f"nspawn exited ({self._nspawn.returncode}): {self.console()}")
            for status in Path("/proc").glob("[0-9]*/status"):
                with contextlib.suppress(OSError):
                    fields = dict(
                        line.split(":\t", 1) for line in status.read_text().splitlines()
                        if ":\t" in line
                    )  # fmt: skip
                    inner = fields["NSpid"].split()[-1]
                    if int(fields["PPid"]) == self._nspawn.pid and inner == "1":
                        return int(status.parent.name)
            time.sleep(0.1)
        raise RuntimeError(f"the container's systemd did not start: {self.console()}")

    def _addresses(self) -> None:
        deadline = time.monotonic() + 30
        while _host("ip", "link", "show", LINK, check=False).returncode:
            assert time.monotonic() < deadline, "nspawn made no veth link"
            time.sleep(0.1)
        _host("ip", "addr", "replace", f"{HOST_ADDRESS}/30", "dev", LINK)
        _host("ip", "link", "set", LINK, "up")
        for command in (
            f"ip addr replace {GUEST_ADDRESS}/30 dev host0",
            "ip link set host0 up",
            f"ip route replace default via {HOST_ADDRESS}",
        ):
            self.run(command)

    def _wait_running(self) -> None:
        deadline = time.monotonic() + 120
        while True:
            state = self.run("systemctl is-system-running", check=False).stdout.strip()
            if state in ("running", "degraded"):
                return
            if time.monotonic() > deadline:
                failed = self.run("systemctl --failed --no-legend", check=False).stdout
                raise RuntimeError(f"the container did not finish booting ({state}): {failed}")
            time.sleep(0.5)

    def run(
        self, command: str, *, check: bool = True, timeout: float = 900
    ) -> subprocess.CompletedProcess[str]:
        """`command` by bash in every namespace of the container, as root, with a clean
        environment; output captured. A failure (when `check`) says what it printed."""
        env = ["env", "-i", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               "HOME=/root", "LANG=C.UTF-8", "TERM=dumb"]  # fmt: skip
        done = subprocess.run(
            ["nsenter", "-t", str(self.leader), "-a", *env, "/bin/bash", "-c", command],
            capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
        if check and done.returncode != 0:
            raise AssertionError(
                f"{command!r} exited {done.returncode}\n--- stdout\n{done.stdout}\n"
                f"--- stderr\n{done.stderr}"
            )
        return done

    def reboot(self) -> None:
        """`systemctl reboot` inside; nspawn exits for it, and the container boots again."""
        assert self._nspawn is not None
        self.run("systemctl reboot", check=False)
        assert self._nspawn.wait(timeout=120) == _REBOOTED, self.console()
        self.boot()

    def shutdown(self) -> None:
        if self._nspawn is None or self._nspawn.poll() is not None:
            return
        self._nspawn.send_signal(signal.SIGTERM)  # nspawn asks the container to power off
        try:
            self._nspawn.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self._nspawn.kill()
            self._nspawn.wait()

    def console(self) -> str:
        return self._log.read_text(errors="replace")[-4000:] if self._log.exists() else ""

    def _nat(self) -> None:
        """Forwarding and masquerading for the container's address, in a table of our own."""
        Path("/proc/sys/net/ipv4/ip_forward").write_text("1")
        rules = (
            f"table ip {_NFT_TABLE} {{\n"
            "  chain postrouting { type nat hook postrouting priority 100; "
            f"ip saddr {GUEST_ADDRESS} masquerade; }}\n"
            "}\n"
        )
        subprocess.run(["nft", "-f", "-"], input=rules, text=True, check=True)

    def _no_nat(self) -> None:
        _host("nft", "delete", "table", "ip", _NFT_TABLE, check=False)
        Path("/proc/sys/net/ipv4/ip_forward").write_text(self._forwarding)
