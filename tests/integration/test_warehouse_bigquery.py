"""Loads into BigQuery with Google's own client, against the BigQuery double (tests/bigquery.py):
a service account signing in, datasets and day-partitioned tables made and widened, load jobs
of newline-delimited JSON appended once however often a load is tried, views with one row per
id, the users merge, discarded values, errors in Google's words without the key, and the real
Python SDK's events end to end on `sluice warehouse sync`."""

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from engine.warehouses import bigquery, loader, rows
from engine.warehouses.warehouse import WarehouseError
from tests.bigquery import BigQuery
from tests.delivery import connect_destinations, sluice
from tests.integration.test_warehouse_loads import identify, load_into, loaded_again, track
from tests.integration.test_warehouse_loads import stage as stage_for
from tests.integration.test_warehouse_pipeline import STAGE_FAST, send_and_sync
from tests.servers import GatewayProcess, free_port


def stage(root: Path, key: str, *events: dict[str, Any]) -> None:
    stage_for(root, key, *events, provider="BQ")


def load(project: BigQuery, root: Path, **more: Any) -> loader.Loaded:
    return load_into("bigquery", project.settings(**more), "web", root)


def test_tables_views_and_every_event_once_however_often_loaded(
    bigquery_project: BigQuery, tmp_path: Path
) -> None:
    first = track("m1", "2024-01-01T00:00:00.250Z", total=10, coupon='say "hi", then\nbye',
                  paid=True, tags=["a", 1])  # fmt: skip
    stage(tmp_path, "1", first, track("m2", "2024-01-01T00:00:01Z", total=2.5, share=0.5))
    stage(tmp_path, "2", first)  # the same event staged again (a router's crash and retry)
    loaded = load(bigquery_project, tmp_path)
    assert loaded.tables == {"tracks": 3, "order_completed": 3}
    view = ("SELECT id, total, share, paid, coupon, tags, received_at, loaded_at IS NOT NULL, "
            "uuid_ts IS NOT NULL FROM web.order_completed_view ORDER BY id")  # fmt: skip
    found = bigquery_project.query(view)
    assert [row[:6] for row in found] == [
        ("m1", 10, None, True, 'say "hi", then\nbye', '["a",1]'),
        ("m2", 2, 0.5, None, None, None),  # 2.5 cut to an integer, as RudderStack does
    ]
    assert found[0][6].isoformat() == "2024-01-01T00:00:00.250000+00:00"
    assert all(row[7] and row[8] for row in found)
    types = dict(bigquery_project.query(
        "SELECT column_name, data_type FROM web.\"INFORMATION_SCHEMA.COLUMNS\" "
        "WHERE table_name = 'order_completed'"))  # fmt: skip
    assert types["total"] == "INT64" and types["share"] == "FLOAT64"
    assert types["received_at"] == "TIMESTAMP" and types["coupon"] == "STRING"
    assert types["paid"] == "BOOL" and types["loaded_at"] == "TIMESTAMP"
    # The table keeps what each load appended: the event staged twice is there twice (the
    # view shows it once), as in RudderStack's BigQuery tables.
    assert bigquery_project.query("SELECT count(*) FROM web.order_completed") == [(3,)]

    load(bigquery_project, tmp_path)  # the same load again (a crash before it was marked done)
    assert bigquery_project.query("SELECT count(*) FROM web.order_completed") == [(3,)]
    assert bigquery_project.query("SELECT count(*) FROM web.tracks") == [(3,)]


def test_a_failed_job_is_run_anew_and_a_done_one_not_again(
    bigquery_project: BigQuery, tmp_path: Path
) -> None:
    stage(tmp_path, "1", track("m1", "2024-01-01T00:00:00Z", total=1),
          track("m2", "2024-01-01T00:00:01Z", total=2))  # fmt: skip
    bigquery_project.double.failing.add("tracks")  # its next load job fails, writing nothing
    with pytest.raises(
        WarehouseError,
        match=r"loading web\.tracks: Error encountered during "
        r"execution\. Retrying may solve the problem\.",
    ):
        load(bigquery_project, tmp_path)
    load(bigquery_project, tmp_path)
    assert bigquery_project.query("SELECT count(*) FROM web.tracks") == [(2,)]
    assert bigquery_project.query("SELECT count(*) FROM web.order_completed") == [(2,)]
    jobs = [job_id for (_, job_id) in bigquery_project.double.jobs if "_" in job_id]
    assert sum(job_id.endswith("_1") for job_id in jobs) == 1  # the second try of tracks'


def test_users_keep_the_latest_value_of_each_column(
    bigquery_project: BigQuery, tmp_path: Path
) -> None:
    stage(tmp_path, "1", identify("i1", "2024-01-01T00:00:00Z", plan="free", city="Oslo"))
    load(bigquery_project, tmp_path)
    loaded_again(tmp_path)
    # a staging table a killed worker left (it expires by itself): no view is made of it
    bigquery_project.query("CREATE TABLE web.sluice_staging_left (id VARCHAR)")
    stage(tmp_path, "2", identify("i3", "2024-01-03T00:00:00Z", plan="pro"),
          identify("i2", "2024-01-02T00:00:00Z", plan="team", email="a@b.c"))  # fmt: skip
    load(bigquery_project, tmp_path)
    load(bigquery_project, tmp_path)  # tried again: the merge is not appended twice
    users = bigquery_project.query("SELECT id, plan, city, email, received_at FROM web.users_view")
    assert [row[:4] for row in users] == [("u1", "pro", "Oslo", "a@b.c")]
    assert users[0][4].isoformat() == "2024-01-03T00:00:00+00:00"
    assert bigquery_project.query("SELECT count(*) FROM web.users") == [(2,)]  # a row per load
    assert bigquery_project.query("SELECT count(*) FROM web.identifies_view") == [(3,)]
    tables = {name for (name,) in bigquery_project.query(
        "SELECT table_name FROM web.\"INFORMATION_SCHEMA.TABLES\"")}  # fmt: skip
    staging = {name for name in tables if name.startswith("sluice_staging")}
    assert staging == {"sluice_staging_left"}  # this load's was dropped after use


def test_types_never_change_and_values_they_cannot_hold_are_discarded(
    bigquery_project: BigQuery, tmp_path: Path
) -> None:
    stage(tmp_path, "1", track("m1", "2024-01-01T00:00:00Z", total=10))
    load(bigquery_project, tmp_path)
    loaded_again(tmp_path)
    stage(tmp_path, "2", track("m3", "2024-01-02T00:00:00Z", total="ten", note="new"),
          track("m4", "2024-01-02T00:00:00Z", total=4.75))  # fmt: skip
    loaded = load(bigquery_project, tmp_path)
    assert loaded.discards == 1 and loaded.schema["order_completed"]["total"] == "int"
    rows = bigquery_project.query("SELECT id, total, note FROM web.order_completed_view "
                                  "ORDER BY id")  # fmt: skip
    assert rows == [("m1", 10, None), ("m3", None, "new"), ("m4", 4, None)]
    discards = ("SELECT table_name, row_id, column_name, column_value, reason, "
                "loaded_at IS NOT NULL FROM web.rudder_discards_view")  # fmt: skip
    expected = [("order_completed", "m3", "total", "ten",
                 "incompatible schema conversion from int to string", True)]  # fmt: skip
    assert bigquery_project.query(discards) == expected
    load(bigquery_project, tmp_path)  # again: the discard is not doubled
    assert bigquery_project.query("SELECT count(*) FROM web.rudder_discards") == [(1,)]


def test_identity_merge_rules_load_without_load_time_columns(
    bigquery_project: BigQuery, tmp_path: Path
) -> None:
    alias = {"type": "alias", "messageId": "a1", "userId": "u2", "previousId": "u1",
             "receivedAt": "2024-01-01T00:00:00Z"}  # fmt: skip
    stage_for(tmp_path, "1", alias, provider="BQ",
              options=rows.Options(request_query={"whIDResolve": "true"}))  # fmt: skip
    load(bigquery_project, tmp_path)
    load(bigquery_project, tmp_path)  # tried again: appended once
    found = bigquery_project.query("SELECT * FROM web.rudder_identity_merge_rules_view")
    assert found == [("user_id", "u2", "user_id", "u1")]
    assert bigquery_project.query("SELECT count(*) FROM web.rudder_identity_merge_rules") == [(1,)]


def test_a_dataset_is_loaded_where_it_is_and_a_missing_view_is_made(
    bigquery_project: BigQuery, tmp_path: Path
) -> None:
    stage(tmp_path, "1", track("m1", "2024-01-01T00:00:00Z", total=1))
    load(bigquery_project, tmp_path, location="EU")
    assert bigquery_project.double.locations[(bigquery_project.project, "web")] == "EU"
    loaded_again(tmp_path)
    bigquery_project.query("DROP VIEW web.order_completed_view")  # a crash before it was made
    stage(tmp_path, "2", track("m2", "2024-01-02T00:00:00Z", total=2))
    load(bigquery_project, tmp_path, location="US")  # the setting changed: the dataset is in EU
    found = bigquery_project.query("SELECT id, total FROM web.order_completed_view ORDER BY id")
    assert found == [("m1", 1), ("m2", 2)]


def test_appending_and_no_views(bigquery_project: BigQuery, tmp_path: Path) -> None:
    stage(tmp_path, "1", track("m1", "2024-01-01T00:00:00Z", total=1))
    load(bigquery_project, tmp_path, preferAppend=True, skipViews=True)
    assert bigquery_project.query("SELECT id, total FROM web.order_completed") == [("m1", 1)]
    tables = {name for (name,) in bigquery_project.query(
        "SELECT table_name FROM web.\"INFORMATION_SCHEMA.TABLES\"")}  # fmt: skip
    assert tables == {"tracks", "order_completed"}


def test_failures_are_said_in_googles_words_without_the_key(
    bigquery_project: BigQuery, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stage(tmp_path, "1", track("m1", "2024-01-01T00:00:00Z"))
    other = msgspec.json.decode(bigquery_project.settings()["credentials"])
    key = other["private_key"]
    other["private_key"] = _another_key()
    with pytest.raises(
        WarehouseError,
        match="cannot sign in with the service account: invalid_grant: Invalid JWT Signature",
    ) as signed:
        load(bigquery_project, tmp_path, credentials=json.dumps(other))
    assert "PRIVATE KEY" not in str(signed.value) and key[40:80] not in str(signed.value)
    monkeypatch.setattr(bigquery, "RETRY_SECONDS", 1.0)  # not two minutes
    with pytest.raises(WarehouseError, match=r"reading the schema of dataset web: \S"):
        load(bigquery_project, tmp_path, endpoint=f"http://127.0.0.1:{free_port()}")


def _another_key() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(65537, 2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()).decode()  # fmt: skip


def test_sdk_events_reach_the_bigquery_tables(
    workspace_config: str, bigquery_project: BigQuery, gateway: GatewayProcess, tmp_path: Path,
) -> None:  # fmt: skip
    config = bigquery_project.settings(syncFrequency="1440")
    connect_destinations(workspace_config, ("bq", "bigquery", config), delivery=STAGE_FAST)
    shown = send_and_sync(workspace_config, gateway, tmp_path, "bq")
    assert "loaded" in shown and "into website" in shown, shown
    tables = {name for (name,) in bigquery_project.query(
        "SELECT table_name FROM website.\"INFORMATION_SCHEMA.TABLES\"")}  # fmt: skip
    assert {"tracks", "order_completed", "anonymous_visit", "identifies", "users", "pages",
            "screens", "_groups", "aliases", "tracks_view", "users_view"} <= tables  # fmt: skip
    order = bigquery_project.query(
        "SELECT id, user_id, order_id, total, context_library_name, context_destination_type "
        "FROM website.order_completed_view"
    )
    assert order == [("wh-track", "user-1", "o-1", 42.5, "analytics-python", "BQ")]
    users = bigquery_project.query("SELECT id, email, plan FROM website.users_view")
    assert users == [("user-1", "ada@example.com", "pro")]
    [status] = json.loads(sluice(workspace_config, "warehouse", "status", "--json"))
    assert status["loads"][0]["tables"]["tracks"] == 2
    assert "private_key" not in json.dumps(status)
