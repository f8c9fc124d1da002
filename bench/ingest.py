"""Ingestion benchmark: requests/s, events/s and latency of the gateway, measured with wrk.

Starts a private PostgreSQL (unless --database-url is given), a `sluice gateway`, and drives
`/v1/track` with one event per request, then `/v1/batch` with ten, each request carrying its own
messageIds as SDKs do. After each run it counts the rows in the ingest log: every 200 must be a
committed event. Needs `wrk` (Debian package `wrk`).

    python -m bench.ingest [--duration 15] [--connections 512] [--gateway-workers 2]
"""

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile

import psycopg

from bench.harness import WRITE_KEY, database, free_port, gateway, prepare

_EVENT = (
    '{"type":"track","event":"Product Viewed","userId":"user-%d","anonymousId":"anon-%d",'
    '"messageId":"bench-%s","timestamp":"2026-11-27T10:00:00.000Z",'
    '"properties":{"product_id":"sku-100","name":"Trail Shoe","price":89.0,"currency":"USD"},'
    '"context":{"library":{"name":"analytics-python","version":"2.4.0"},'
    '"userAgent":"Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0","locale":"en-US"}}'
)

# wrk's Lua: 2,000 distinct requests built once (fresh messageIds, 1,000 users), then sent in
# turn, so that wrk spends its CPU on sending rather than on building bodies.
_LUA = """
local event = '%s'
local per_request = %d
local prefix = tostring(math.random(1, 1000000000))
local requests = {}
local n = 0
for r = 1, 2000 do
  local parts = {}
  for i = 1, per_request do
    n = n + 1
    parts[i] = string.format(event, n %% 1000, n %% 1000, prefix .. "-" .. n)
  end
  local body
  if per_request == 1 then body = parts[1]
  else body = '{"batch":[' .. table.concat(parts, ",") .. '],"sentAt":"2026-11-27T10:00:00.000Z"}'
  end
  requests[r] = wrk.format("POST", "%s", {["Content-Type"] = "application/json",
    ["Authorization"] = "Basic %s", ["Host"] = "localhost"}, body)
end
local i = 0
request = function()
  i = i %% #requests + 1
  return requests[i]
end
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url")
    parser.add_argument("--duration", type=int, default=15, help="seconds per scenario")
    parser.add_argument("--connections", type=int, default=512)
    parser.add_argument("--gateway-workers", type=int, default=2)
    parser.add_argument("--wrk-threads", type=int, default=1)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (apt-get install wrk)")
    with database(args.database_url) as url:
        asyncio.run(prepare(url))
        port = free_port()
        with gateway(url, port, args.gateway_workers):
            print(
                f"gateway workers: {args.gateway_workers}, wrk connections: "
                f"{args.connections}, {args.duration} s per scenario, {os.cpu_count()} cores"
            )
            for name, path, per_request in (
                ("single-event /v1/track", "/v1/track", 1),
                ("10-event /v1/batch", "/v1/batch", 10),
            ):
                before = count(url)
                result = wrk(f"http://127.0.0.1:{port}", path, per_request, args)
                stored = count(url) - before
                report(name, per_request, result, stored)


def report(name: str, per_request: int, result: dict[str, float], stored: int) -> None:
    ok = result["requests"] - result["errors"]
    print(
        f"{name:<24} {result['rps']:>9,.0f} req/s {result['rps'] * per_request:>9,.0f} events/s"
        f"  p50 {result['p50']:.2f} ms  p99 {result['p99']:.2f} ms"
        f"  non-200 {result['errors']:.0f}  stored {stored:,} of {ok * per_request:,.0f} acked"
    )
    if stored < ok * per_request:
        sys.exit("LOST EVENTS: fewer rows stored than events acknowledged")


def wrk(url: str, path: str, per_request: int, args: argparse.Namespace) -> dict[str, float]:
    """wrk's figures for `args.duration` seconds of `args.connections` kept-alive connections
    to `url` sending `per_request` events a request to `path`."""
    import base64

    auth = base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_LUA % (_EVENT, per_request, path, auth))
    try:
        done = subprocess.run(
            ["wrk", "-t", str(args.wrk_threads), "-c", str(args.connections),
             "-d", f"{args.duration}s", "--latency", "-s", script.name,
             url],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
    finally:
        os.unlink(script.name)
    if done.returncode != 0:
        sys.exit(f"wrk failed:\n{done.stdout}{done.stderr}")
    out = done.stdout
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "requests": float(re.search(r"(\d+) requests in", out).group(1)),  # type: ignore[union-attr]
        "errors": float(m.group(1))
        if (m := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out))
        else 0.0,
        "p50": _ms(re.search(r"50%\s+([\d.]+)(\w+)", out)),
        "p99": _ms(re.search(r"99%\s+([\d.]+)(\w+)", out)),
    }


def _ms(match: re.Match[str] | None) -> float:
    assert match is not None
    value, unit = float(match.group(1)), match.group(2)
    return value * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def count(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM ingested").fetchone()
        assert row is not None
        return int(row[0])


if __name__ == "__main__":
    main()
