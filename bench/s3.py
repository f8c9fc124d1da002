"""S3 batch path benchmark: events/s from the gateway into gzipped files in a bucket.

Starts a private PostgreSQL (unless --database-url is given), an S3 API server on loopback
(moto), a `sluice gateway` and a `sluice worker`, with one `s3` destination connected to the
bench source. Offers --rate events/s (100-event batches) for --duration seconds, then waits
until every acknowledged event is recorded as delivered, and reports events/s from the first
request to the last delivery, the number of files and their average size.

    python -m bench.s3 [--rate 20000] [--duration 15]
"""

import argparse
import asyncio
import time

import boto3
import psycopg
from moto.server import ThreadedMotoServer

from bench.harness import database, free_port, gateway, prepare
from bench.pipeline import offer, worker_process
from engine.pipeline.policy import DeliveryPolicy
from engine.workspace import DestinationSpec

BUCKET = "bench"


def delivered(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM job_attempts WHERE state = 'delivered'").fetchone()
    return int(row[0]) if row else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url")
    parser.add_argument("--rate", type=int, default=20_000)
    parser.add_argument("--duration", type=float, default=15.0)
    args = parser.parse_args()
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
            with gateway(url, gateway_port, 2), worker_process(url):
                time.sleep(3.0)
                start = time.monotonic()
                acked = asyncio.run(offer(f"http://127.0.0.1:{gateway_port}", args.rate,
                                          args.duration))  # fmt: skip
                offered = time.monotonic() - start
                while (done := delivered(url)) < acked:
                    if time.monotonic() - start > offered + 300:
                        raise SystemExit(f"only {done} of {acked} events stored after 300 s")
                    time.sleep(0.2)
                elapsed = time.monotonic() - start
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
        sizes = [item["Size"] for page in pages for item in page.get("Contents", [])]
    finally:
        s3.stop()
    print(f"offered {args.rate:,}/s for {args.duration:g} s: {acked:,} events acknowledged")
    print(f"all stored after {elapsed:.1f} s: {acked / elapsed:,.0f} events/s end to end "
          f"({acked / offered:,.0f}/s while offering)")  # fmt: skip
    if sizes:
        print(f"{len(sizes)} files, {sum(sizes) / len(sizes) / 1024:,.0f} KiB on average (gzip), "
              f"{acked / len(sizes):,.0f} events per file")  # fmt: skip


if __name__ == "__main__":
    main()
