"""S3 batch path benchmark: the worker's rate into S3 files against the gateway's batched rate.

Starts a private PostgreSQL (unless --database-url is given), an S3 API server on loopback
(moto), with one `s3` destination connected to the bench source. Two phases, so that each has
the machine to itself: a `sluice gateway` alone takes 100-event batches as fast as it can for
--duration seconds (the gateway's batched rate, this run), then a `sluice worker` alone turns
that backlog into gzipped files in the bucket. Reports both rates, their ratio, and the files.

    python -m bench.s3 [--duration 10]
"""

import argparse
import asyncio
import logging
import time

import boto3
import psycopg
from moto.server import ThreadedMotoServer

from bench.harness import database, free_port, gateway, prepare
from bench.pipeline import offer, worker_process
from engine.specs import DeliveryPolicy, DestinationSpec

BUCKET = "bench"
FLOOD = 200_000  # events/s asked of the gateway: more than it can take, so it sets the pace


def delivered(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT coalesce(sum(j.events), 0) FROM job_attempts a"
            " JOIN jobs j ON j.id = a.job_id AND j.created_at = a.job_created_at"
            " WHERE a.state = 'delivered'"
        ).fetchone()
    return int(row[0]) if row else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url")
    parser.add_argument("--duration", type=float, default=10.0)
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
    port = free_port()
    s3 = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    s3.start()
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id="bench", aws_secret_access_key="bench-secret",
    )  # fmt: skip
    client.create_bucket(Bucket=BUCKET)
    lake = DestinationSpec(
        name="lake", type="s3",
        config={"bucketName": BUCKET, "prefix": "events", "endpoint": endpoint,
                "region": "us-east-1", "accessKeyID": "bench", "accessKey": "bench-secret"},
        delivery=DeliveryPolicy(file_seconds=2.0),
    )  # fmt: skip
    gateway_port = free_port()
    try:
        with database(args.database_url) as url:
            asyncio.run(prepare(url, [lake]))
            with gateway(url, gateway_port, 2):
                start = time.monotonic()
                acked = asyncio.run(offer(f"http://127.0.0.1:{gateway_port}", FLOOD,
                                          args.duration))  # fmt: skip
                ingested = time.monotonic() - start
            with worker_process(url):
                start = time.monotonic()
                first: tuple[float, int] | None = None  # when the first file was recorded
                while (done := delivered(url)) < acked:
                    if time.monotonic() - start > 600:
                        raise SystemExit(f"only {done} of {acked} events stored after 600 s")
                    if done and first is None:
                        first = (time.monotonic(), done)
                    time.sleep(0.1)
                end = time.monotonic()
                stored = end - start
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
        sizes = [item["Size"] for page in pages for item in page.get("Contents", [])]
    finally:
        s3.stop()
    gateway_rate, s3_rate = acked / ingested, acked / stored
    print(f"gateway alone: {acked:,} events in {ingested:.1f} s: {gateway_rate:,.0f} events/s")
    print(f"worker alone, into S3: {stored:.1f} s (incl. start-up): {s3_rate:,.0f} events/s, "
          f"{s3_rate / gateway_rate:.2f}x the gateway's rate")  # fmt: skip
    if first is not None and end > first[0]:
        steady = (acked - first[1]) / (end - first[0])
        print(f"  from the first file on: {steady:,.0f} events/s, "
              f"{steady / gateway_rate:.2f}x the gateway's rate")  # fmt: skip
    if sizes:
        print(f"{len(sizes)} files, {sum(sizes) / len(sizes) / 1024:,.0f} KiB on average (gzip), "
              f"{acked / len(sizes):,.0f} events per file")  # fmt: skip


if __name__ == "__main__":
    main()
