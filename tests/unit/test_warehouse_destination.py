"""The PostgreSQL warehouse as a destination type: its settings (RudderStack's keys), each
event mapped to its rows with where it came from, refusals as unsendable events."""

import json
import os
from datetime import UTC, datetime
from uuid import UUID

import pytest

from engine.destinations.base import BadSettings, Origin, Unsendable
from engine.destinations.catalog import TYPES
from engine.destinations.postgres import POSTGRES
from engine.errors import ConfigError
from engine.pipeline.loading import sessions_for
from engine.specs import parse

SETTINGS = {"host": "db", "database": "analytics", "user": "loader", "password": "secret-pw"}
NOW = datetime(2024, 3, 1, tzinfo=UTC)


def test_the_type_is_in_the_catalog_with_rudderstacks_keys() -> None:
    assert TYPES["postgres"] is POSTGRES
    assert POSTGRES.required == ("host", "database", "user")
    assert POSTGRES.secrets(SETTINGS) == ["secret-pw"]
    parsed = POSTGRES.parse_settings({**SETTINGS, "syncFrequency": "60", "port": 6543})
    assert parsed.sync_minutes == 60 and int(parsed.port) == 6543


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"port": "postgres"}, "port 'postgres' is not a TCP port number"),
        ({"syncFrequency": "hourly"}, "syncFrequency 'hourly' is not a number of minutes"),
        ({"sslMode": "always"}, "Invalid enum value 'always' - at `\\$.sslMode`"),
        ({"host": " "}, "host is empty"),
    ],
)
def test_bad_settings_say_what_is_wrong(change: dict[str, str], message: str) -> None:
    with pytest.raises(BadSettings, match=message):
        POSTGRES.parse_settings({**SETTINGS, **change})
    with pytest.raises(ConfigError, match=r"destinations\[0\] \(wh\)"):
        parse(
            "destinations: [{name: wh, type: postgres, config: {host: db, database: d, user: u, "
            f"{next(iter(change))}: {next(iter(change.values()))!r}}}}}]"
        )


def test_an_event_becomes_its_rows_with_its_origin() -> None:
    event = {"type": "track", "event": "Signed Up", "messageId": "m", "userId": "u",
             "properties": {"plan": "pro"}}  # fmt: skip
    origin = Origin(UUID(int=5), UUID(int=6), datetime(2024, 3, 1, 12, tzinfo=UTC))
    settings = POSTGRES.parse_settings(SETTINGS)
    [request] = POSTGRES.requests(event, settings, NOW, origin)
    tracks, signed_up = request.body
    assert (tracks["table"], signed_up["table"]) == ("tracks", "signed_up")
    assert signed_up["data"]["plan"] == "pro"
    assert tracks["data"]["context_source_id"] == str(UUID(int=6))
    assert tracks["data"]["context_destination_id"] == str(UUID(int=5))
    assert tracks["data"]["context_destination_type"] == "POSTGRES"
    assert tracks["data"]["received_at"] == "2024-03-01T12:00:00.000Z"  # none in the event
    assert "password" not in str(request)


def test_an_event_that_cannot_be_rows_is_unsendable() -> None:
    settings = POSTGRES.parse_settings(SETTINGS)
    with pytest.raises(Unsendable, match='Unknown event type: "bogus"'):
        POSTGRES.map({"type": "bogus"}, settings, NOW)
    assert POSTGRES.map({"type": "merge"}, settings, NOW) == []  # nothing for PostgreSQL


def test_rudderstacks_warehouse_definitions_import_as_sluices_types() -> None:
    from engine.control import rudderstack

    names = {"POSTGRES": "postgres", "RS": "redshift", "SNOWFLAKE": "snowflake",
             "BQ": "bigquery", "CLICKHOUSE": "clickhouse"}  # fmt: skip
    destinations = [{"id": f"d-{code}", "name": f"to {code}", "config": {"host": "x"},
                     "destinationDefinition": {"name": code}} for code in names]  # fmt: skip
    document = {"sources": [{"name": "web", "writeKey": "2AbCdEfGhIjKlMnOp",
                             "destinations": destinations}]}  # fmt: skip
    imported = rudderstack.read(document)
    assert imported.skipped == []
    assert {d.name: d.type for d in imported.spec.destinations} == {
        f"to {code}": kind for code, kind in names.items()
    }


def test_bigquery_settings_need_a_service_account_key_and_never_quote_it() -> None:
    bigquery = TYPES["bigquery"]
    assert bigquery.required == ("project", "credentials")
    key = {"type": "service_account", "client_email": "a@p.iam.gserviceaccount.com",
           "private_key": "-----BEGIN PRIVATE KEY-----\nTOP-SECRET\n-----END PRIVATE KEY-----\n",
           "token_uri": "https://oauth2.googleapis.com/token"}  # fmt: skip
    good = {"project": "p", "credentials": json.dumps(key)}
    assert bigquery.parse_settings(good).project == "p"
    secrets = bigquery.secrets(good)
    assert secrets[0] == good["credentials"] and key["private_key"] in secrets
    assert json.dumps(key["private_key"])[1:-1] in secrets  # as JSON text has it
    for credentials, said in [
        ("{not json TOP-SECRET", "credentials is not a service account's JSON key"),
        (json.dumps({**key, "type": "authorized_user"}), "not a service account's JSON key"),
        (json.dumps({**key, "client_email": ""}), "credentials has no client_email"),
        (json.dumps({k: v for k, v in key.items() if k != "token_uri"}), "has no token_uri"),
    ]:
        with pytest.raises(BadSettings, match=said) as refused:
            bigquery.parse_settings({**good, "credentials": credentials})
        assert "TOP-SECRET" not in str(refused.value)
    with pytest.raises(BadSettings, match=r"endpoint 'bigquery\.local' is not an http"):
        bigquery.parse_settings({**good, "endpoint": "bigquery.local"})


@pytest.mark.parametrize(
    ("host", "cores", "sessions"),
    [
        ("db.example.com", 2, 2),
        ("10.0.0.7", 2, 2),
        ("127.0.0.1", 2, 1),  # a server on this machine: one table at a time on two cores
        ("localhost", 2, 1),
        ("LOCALHOST.", 2, 1),
        ("127.0.0.2", 2, 1),
        ("::1", 1, 1),
        ("[::1]", 2, 1),
        ("::ffff:127.0.0.1", 2, 1),
        ("localhost.example.com", 2, 2),
        ("/var/run/postgresql", 2, 1),
        ("127.0.0.1", 4, 2),
        ("127.0.0.1", 16, 2),  # never more than the kind takes
    ],
)
def test_a_warehouse_on_this_machine_is_loaded_on_half_its_cores(
    host: str, cores: int, sessions: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)))
    kind = POSTGRES.warehouse
    assert kind is not None and kind.sessions == 2
    assert sessions_for(kind, POSTGRES.parse_settings({**SETTINGS, "host": host})) == sessions
