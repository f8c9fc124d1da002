"""Loads into Redshift, played by PostgreSQL and moto's S3 (tests/redshift.py: no Redshift
runs here): each table's rows go to the bucket as gzipped CSV files with a manifest, `COPY`
reads them with the destination's keys, the merges run as SQL both dialects take, and the
files are removed once loaded. What only Redshift has (encodings, distribution and sort keys,
`super`) is checked in the statements it would have got."""

import asyncio
from pathlib import Path
from typing import Any

import msgspec
import psycopg
import pytest

from engine.destinations.redshift import RedshiftConfig
from engine.warehouses import loader, staging
from engine.warehouses.warehouse import WarehouseError
from tests.conftest import warehouse_settings
from tests.integration.test_warehouse_loads import DESTINATION, identify, track
from tests.integration.test_warehouse_loads import stage as stage_for
from tests.redshift import RedshiftDouble
from tests.s3server import S3Server

BUCKET = "loads"


def stage(root: Path, key: str, *events: dict[str, Any]) -> None:
    stage_for(root, key, *events, provider="RS")


def settings_for(url: str, s3: S3Server, **more: Any) -> dict[str, Any]:
    bucket = s3.settings(BUCKET, prefix="sluice")
    return warehouse_settings(url, sslMode="disable", **{**bucket, **more})


def load(url: str, s3: S3Server, root: Path, statements: list[str] | None = None,
         **more: Any) -> loader.Loaded:  # fmt: skip
    said = [] if statements is None else statements

    async def go() -> loader.Loaded:
        files = staging.pending(root, DESTINATION)
        settings = msgspec.convert(settings_for(url, s3, **more), RedshiftConfig)
        async with RedshiftDouble(settings, s3, said) as one, \
                RedshiftDouble(settings, s3, said) as two:  # fmt: skip
            return await loader.load([one, two], "RS", "web", files)

    return asyncio.run(go())


def query(url: str, text: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(text).fetchall()


@pytest.fixture
def s3(s3_server: S3Server) -> S3Server:
    s3_server.create_bucket(BUCKET)
    return s3_server


def test_rows_go_through_s3_and_every_event_is_loaded_once(
    warehouse_url: str, s3: S3Server, tmp_path: Path
) -> None:
    first = track("m1", "2024-01-01T00:00:00Z", total=10, coupon='say "hi", then\nbye',
                  paid=True)  # fmt: skip
    stage(tmp_path, "1", first, track("m2", "2024-01-01T00:00:01Z", total=2.5, share=0.5))
    stage(tmp_path, "2", first)  # the same event staged again (a router's crash and retry)
    statements: list[str] = []
    loaded = load(warehouse_url, s3, tmp_path, statements)
    assert loaded.tables == {"tracks": 3, "order_completed": 3}
    assert query(warehouse_url, "SELECT id FROM web.tracks ORDER BY id") == [("m1",), ("m2",)]
    found = query(warehouse_url, "SELECT id, total, share, paid, coupon, received_at "
                  "FROM web.order_completed ORDER BY id")  # fmt: skip
    assert [row[:5] for row in found] == [
        ("m1", 10, None, True, 'say "hi", then\nbye'),
        ("m2", 2, 0.5, None, None),  # 2.5 cut to an integer, as RudderStack does
    ]
    assert found[0][5].isoformat() == "2024-01-01T00:00:00"  # timestamp, in UTC

    # What Redshift was told: tables distributed by id, sorted by time, its own types.
    [create] = [s for s in statements if 'CREATE TABLE IF NOT EXISTS "web"."order_completed"' in s]
    assert 'DISTSTYLE KEY DISTKEY("id") SORTKEY("received_at")' in create
    assert '"coupon" varchar(65535)' in create and '"share" double precision' in create
    assert '"paid" boolean encode runlength' in create and '"received_at" timestamp' in create
    copies = [s for s in statements if s.startswith("COPY ")]
    assert len(copies) == 2
    assert all(f"FROM 's3://{BUCKET}/sluice/loads/web/" in c and "REGION 'us-east-1'" in c
               for c in copies)  # fmt: skip
    assert s3.objects(BUCKET) == {}  # the load's files are gone once loaded

    load(warehouse_url, s3, tmp_path)  # the same load again (a crash before it was marked done)
    assert query(warehouse_url, "SELECT count(*) FROM web.order_completed") == [(2,)]


def test_users_keep_the_latest_value_of_each_column(
    warehouse_url: str, s3: S3Server, tmp_path: Path
) -> None:
    stage(tmp_path, "1", identify("i1", "2024-01-01T00:00:00Z", plan="free", city="Oslo"))
    load(warehouse_url, s3, tmp_path)
    for found in staging.pending(tmp_path, DESTINATION):
        staging.remove(tmp_path, DESTINATION, found.key)
    stage(tmp_path, "2", identify("i3", "2024-01-03T00:00:00Z", plan="pro"),
          identify("i2", "2024-01-02T00:00:00Z", plan="team", email="a@b.c"))  # fmt: skip
    load(warehouse_url, s3, tmp_path)
    users = query(warehouse_url, "SELECT id, plan, city, email, received_at FROM web.users")
    assert [row[:4] for row in users] == [("u1", "pro", "Oslo", "a@b.c")]
    assert users[0][4].isoformat() == "2024-01-03T00:00:00"
    assert query(warehouse_url, "SELECT count(*) FROM web.identifies") == [(3,)]


def test_a_column_never_changes_type_and_json_paths_are_super(
    warehouse_url: str, s3: S3Server, tmp_path: Path
) -> None:
    event = track("m1", "2024-01-01T00:00:00Z", total=10, blob={"k": [1, "x"]})
    event["integrations"] = {"RS": {"options": {"jsonPaths": ["blob"]}}}
    stage(tmp_path, "1", event)
    statements: list[str] = []
    load(warehouse_url, s3, tmp_path, statements)
    assert any('"blob" super' in s for s in statements)
    for found in staging.pending(tmp_path, DESTINATION):
        staging.remove(tmp_path, DESTINATION, found.key)
    stage(tmp_path, "2", track("m3", "2024-01-02T00:00:00Z", total="ten", note="new"))
    loaded = load(warehouse_url, s3, tmp_path, statements)
    assert loaded.discards == 1
    assert 'ALTER TABLE "web"."order_completed" ADD COLUMN "note" varchar(65535)' in statements
    rows = query(warehouse_url, "SELECT id, total, note, blob FROM web.order_completed ORDER BY id")
    assert rows == [("m1", 10, None, {"k": [1, "x"]}), ("m3", None, "new", None)]
    discards = query(warehouse_url, "SELECT table_name, row_id, column_name, column_value, "
                     "reason FROM web.rudder_discards")  # fmt: skip
    assert discards == [("order_completed", "m3", "total", "ten",
                         "incompatible schema conversion from int to string")]  # fmt: skip


def test_a_bucket_that_refuses_says_why_without_the_secret(
    warehouse_url: str, s3: S3Server, tmp_path: Path
) -> None:
    stage(tmp_path, "1", track("m1", "2024-01-01T00:00:00Z"))
    secret = "not-the-secret-key-x9"
    with pytest.raises(WarehouseError, match="SignatureDoesNotMatch") as refused:
        load(warehouse_url, s3, tmp_path, accessKey=secret)
    assert f"s3://{BUCKET}/sluice/loads/web/" in str(refused.value)
    assert secret not in str(refused.value)
    with pytest.raises(WarehouseError, match="NoSuchBucket"):
        load(warehouse_url, s3, tmp_path, bucketName="no-such-bucket")
    assert query(warehouse_url, "SELECT count(*) FROM web.tracks") == [(0,)]  # nothing half-done


def test_settings_are_checked_when_saved() -> None:
    base = {"host": "h", "database": "d", "user": "u", "bucketName": "loads"}
    with pytest.raises(msgspec.ValidationError, match="not a valid bucket name"):
        msgspec.convert({**base, "bucketName": "Bad_Bucket"}, RedshiftConfig)
    with pytest.raises(msgspec.ValidationError, match="both accessKeyID and accessKey"):
        msgspec.convert({**base, "accessKeyID": "AKIA"}, RedshiftConfig)
    config = msgspec.convert(base, RedshiftConfig)
    assert config.port == "5439" and config.sslMode == "require"
