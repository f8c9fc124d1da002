"""The installer on a real systemd: a Debian bookworm container (systemd-nspawn) gets Sluice
installed by `installer/install.sh`, receives events from this machine and delivers them to a
sink here, survives a reboot, is upgraded in place while events flow (none lost), and is
uninstalled. The tests run in order and share the container."""

import re
import threading
import time
from typing import Any

import httpx

from tests.install.conftest import SERVICES, active, install, wait_delivered
from tests.install.container import GUEST_ADDRESS, Container
from tests.sink import Sink

GATEWAY = f"http://{GUEST_ADDRESS}:8080"


class Installed:
    write_key = ""  # the default source's, as the first run said


def send(write_key: str, events: list[dict[str, Any]]) -> httpx.Response:
    return httpx.post(f"{GATEWAY}/v1/batch", json={"batch": events}, auth=(write_key, ""),
                      timeout=10)  # fmt: skip


def test_a_step_that_fails_says_why_and_keeps_what_was_said(host: Container) -> None:
    # Something else has the gateway's port: Sluice is installed but its gateway cannot start.
    host.run("systemd-run --unit=squatter systemd-socket-activate --accept -l 0.0.0.0:8080"
             " /bin/cat")  # fmt: skip
    done = install(host)
    assert done.returncode == 1
    steps = re.findall(r"^==> (.+)$", done.stdout, re.M)
    assert steps[0] == "Checking this host" and steps[-1] == "Starting Sluice", steps
    assert "Installing the system packages Sluice needs (apt)" in steps
    assert re.search(
        r"the gateway did not start: port 8080 is taken by systemd-socket- \(pid \d+,"
        r" squatter.service\); its log: journalctl -u sluice-gateway\n", done.stderr,
    ), done.stderr  # fmt: skip
    assert "failed while" not in done.stderr  # (the sentence above is all that is said)
    # The first admin's one-time password was said before the failure: it is not lost.
    assert re.search(r"one-time password, then choose your own:\n\s+\S{12,}", done.stdout)
    key = re.search(r"curl -u '([^:']+):'", done.stdout)
    assert key is not None
    Installed.write_key = key[1]


def test_running_it_again_after_the_fix_carries_on(host: Container) -> None:
    host.run("systemctl stop squatter")
    done = install(host)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    assert "Restarting the services one at a time on the new version" in done.stdout
    assert "one-time password" not in done.stdout  # the admin is made once
    assert active(host) == dict.fromkeys(SERVICES, "active")
    assert host.run("stat -c '%a %U %G' /etc/sluice/sluice.toml").stdout.split() == [
        "640", "root", "sluice",
    ]  # fmt: skip
    assert host.run("stat -c '%U' /var/lib/sluice").stdout.strip() == "sluice"
    processes = host.run(  # (a minimal Debian has no ps)
        "for p in /proc/[0-9]*; do echo \"$(stat -c %U $p) $(tr '\\0' ' ' < $p/cmdline)\";"
        " done 2>/dev/null"
    ).stdout.splitlines()
    ours = [line.split(None, 1) for line in processes if "/opt/sluice/" in line]
    assert len(ours) >= 3 and {user for user, _ in ours} == {"sluice"}, ours  # none as root
    for service in SERVICES:
        report = host.run(f"systemd-analyze security --no-pager {service}.service").stdout
        level = re.search(r"Overall exposure level for \S+: ([\d.]+) (\w+)", report)
        assert level is not None and float(level[1]) <= 2.0, report[-600:]  # (1.1 to 1.2 seen)
    # Plain HTTP on port 8080: the gateway gets no capability back (HTTPS on 443 would).
    capabilities = host.run("systemctl show -p CapabilityBoundingSet sluice-gateway").stdout
    assert capabilities.strip() == "CapabilityBoundingSet=", capabilities
    # The release of the failed run is the previous one, kept to go back to.
    assert len(host.run("ls /opt/sluice/releases").stdout.split()) == 2


def test_events_from_outside_are_delivered(host: Container, sink: Sink) -> None:
    workspace = (
        "destinations:\n"
        f"  - {{name: sink, type: webhook, config: {{webhookUrl: '{sink.url}/in'}}}}\n"
        "connections:\n  - {source: default, destination: sink}\n"
    )
    (host.root / "root/workspace.yaml").write_text(workspace)
    host.run("sluice config apply /root/workspace.yaml")
    events = [{"type": "track", "userId": f"u{n}", "event": "Installed", "messageId": f"i-{n}"}
              for n in range(20)]  # fmt: skip
    assert send(Installed.write_key, events).status_code == 200
    wait_delivered(sink, {e["messageId"] for e in events})


def test_the_warehouse_load_stage_runs_below_the_delivering_stages(host: Container) -> None:
    # (the service's system call filter lets the worker lower its own priority, nothing more)
    niceness = {}
    for line in host.run(
        "for p in /proc/[0-9]*; do echo \"$(cut -d')' -f2 $p/stat | cut -d' ' -f18)"
        " $(tr '\\0' ' ' < $p/cmdline)\"; done 2>/dev/null"
    ).stdout.splitlines():
        nice, _, command = line.partition(" ")
        if command.startswith("/opt/sluice/") and " worker" in command:
            niceness[command.partition(" worker")[2].strip() or "deliver"] = int(nice)
    assert niceness == {"deliver": 0, "--stage process": 0, "--stage load": 10}, niceness


def test_the_services_come_back_after_a_reboot(host: Container, sink: Sink) -> None:
    host.reboot()
    deadline = time.monotonic() + 60
    while active(host) != dict.fromkeys(SERVICES, "active"):
        assert time.monotonic() < deadline, active(host)
        time.sleep(0.5)
    events = [{"type": "track", "userId": "u1", "event": "Rebooted", "messageId": f"r-{n}"}
              for n in range(5)]  # fmt: skip
    deadline = time.monotonic() + 60
    while (answer := _try_send(events)) != 200:  # the gateway may still be starting
        assert time.monotonic() < deadline, answer
        time.sleep(0.5)
    wait_delivered(sink, {e["messageId"] for e in events})


def _try_send(events: list[dict[str, Any]]) -> int | str:
    try:
        return send(Installed.write_key, events).status_code
    except httpx.HTTPError as exc:
        return repr(exc)


def test_an_upgrade_while_events_flow_loses_none(host: Container, sink: Sink) -> None:
    accepted: list[str] = []
    refused = 0
    stop = threading.Event()

    def traffic() -> None:  # like an SDK: a batch not accepted is sent again
        nonlocal refused
        n = 0
        while not stop.is_set():
            batch = [{"type": "track", "userId": f"u{(n + i) % 7}", "event": "Upgrade",
                      "messageId": f"up-{n + i}"} for i in range(5)]  # fmt: skip
            if _try_send(batch) == 200:
                accepted.extend(e["messageId"] for e in batch)
                n += 5
            else:
                refused += 1
            time.sleep(0.02)

    sender = threading.Thread(target=traffic)
    sender.start()
    try:
        time.sleep(2)
        done = install(host)
        time.sleep(2)
    finally:
        stop.set()
        sender.join()
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    assert "Restarting the services one at a time on the new version" in done.stdout
    assert active(host) == dict.fromkeys(SERVICES, "active")
    assert len(accepted) > 100
    wait_delivered(sink, set(accepted))
    releases = host.run("ls /opt/sluice/releases").stdout.split()
    assert len(releases) == 2  # the one running and the one before


def test_the_uninstaller_keeps_the_data_unless_purged(host: Container) -> None:
    done = host.run("/root/sluice/installer/uninstall.sh")
    assert "Kept: the database" in done.stdout
    units = host.run("systemctl list-unit-files 'sluice*' --no-legend", check=False)
    assert units.returncode == 1 and units.stdout.strip() == ""  # (1: none matched)
    assert host.run("test -e /opt/sluice", check=False).returncode == 1
    stored = host.run(
        "runuser -u postgres -- psql -qAt sluice -c 'SELECT count(*) FROM ingested'"
    ).stdout.strip()
    assert int(stored) >= 25
    assert host.run("test -f /etc/sluice/sluice.toml && test -d /var/lib/sluice").returncode == 0
    purged = host.run("/root/sluice/installer/uninstall.sh --purge")
    assert "everything it stored are removed" in purged.stdout
    databases = host.run("runuser -u postgres -- psql -qAtc 'SELECT datname FROM pg_database'")
    assert "sluice" not in databases.stdout.split()
    assert host.run("id sluice", check=False).returncode != 0
