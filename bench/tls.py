"""HTTPS against plain HTTP at the gateway: events/s of `/v1/batch` (10 events a request) and
`/v1/track` over kept-alive connections, measured with wrk in alternating rounds against one
gateway that listens on both a plain and an HTTPS port (Sluice's own TLS), and — when Debian's
`caddy` is installed — through caddy terminating TLS in front of the plain port, the other
way HTTPS could have been done. Each round prints each figure and its ratio to plain HTTP.

    python -m bench.tls [--rounds 3] [--duration 10] [--connections 64]
"""

import argparse
import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from appliance import certificates
from bench import ingest
from bench.harness import database, free_port, gateway, prepare

_SCENARIOS = (("/v1/batch", 10), ("/v1/track", 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--gateway-workers", type=int, default=2)
    parser.add_argument("--wrk-threads", type=int, default=1)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (apt-get install wrk)")
    with tempfile.TemporaryDirectory(prefix="sluice-bench-tls-") as scratch, database(None) as url:
        done, _ = certificates.self_signed(["localhost", "127.0.0.1"], Path(scratch))
        asyncio.run(prepare(url))
        plain, tls = free_port(), free_port()
        https = {"tls_cert": str(done.cert), "tls_key": str(done.key),
                 "gateway_tls_port": str(tls)}  # fmt: skip
        with (
            gateway(url, plain, args.gateway_workers, **https),
            _caddy(Path(scratch), done, plain) as fronted,
        ):
            setups = {"plain HTTP": f"http://127.0.0.1:{plain}",
                      "HTTPS (Sluice)": f"https://127.0.0.1:{tls}"}  # fmt: skip
            if fronted:
                setups["HTTPS (caddy)"] = fronted
            print(f"gateway workers: {args.gateway_workers}, wrk connections: "
                  f"{args.connections} kept alive, {args.duration} s each, "
                  f"{os.cpu_count()} cores")  # fmt: skip
            for round_ in range(1, args.rounds + 1):
                for path, per_request in _SCENARIOS:
                    _round(round_, url, setups, path, per_request, args)


def _round(
    round_: int, url: str, setups: dict[str, str], path: str, per_request: int,
    args: argparse.Namespace,
) -> None:  # fmt: skip
    base = 0.0
    for name, target in setups.items():
        before = ingest.count(url)
        result = ingest.wrk(target, path, per_request, args)
        stored = ingest.count(url) - before
        events = result["rps"] * per_request
        base = base or events
        acked = (result["requests"] - result["errors"]) * per_request
        print(
            f"round {round_}  {path:<10} {name:<15} {events:>9,.0f} events/s "
            f"({events / base:.2f}x plain)  p99 {result['p99']:.1f} ms  "
            f"non-200 {result['errors']:.0f}  stored {stored:,} of {acked:,.0f} acked",
            flush=True,
        )
        if stored < acked:
            sys.exit("LOST EVENTS: fewer rows stored than events acknowledged")


@contextlib.contextmanager
def _caddy(scratch: Path, done: certificates.Installed, plain: int) -> Iterator[str | None]:
    """caddy terminating TLS in front of the plain port, if it is installed: its URL."""
    if shutil.which("caddy") is None:
        print("(caddy is not installed: apt-get install caddy to measure it too)")
        yield None
        return
    port = free_port()
    config = scratch / "Caddyfile"
    config.write_text(
        "{\n  admin off\n  auto_https disable_redirects\n  default_sni localhost\n}\n"
        f"https://localhost:{port}, https://127.0.0.1:{port} {{\n"
        f"  tls {done.cert} {done.key}\n  reverse_proxy 127.0.0.1:{plain}\n}}\n"
    )
    caddy = subprocess.Popen(
        ["caddy", "run", "--config", str(config), "--adapter", "caddyfile"],
        env={**os.environ, "HOME": str(scratch)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait_listening(port)
        yield f"https://127.0.0.1:{port}"
    finally:
        caddy.terminate()
        caddy.wait(timeout=30)


def _wait_listening(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.1)
    sys.exit(f"caddy did not listen on {port}")


if __name__ == "__main__":
    main()
