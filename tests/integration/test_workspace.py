"""`sluice config apply / export` and the workspace store against a real PostgreSQL."""

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
import yaml

from engine import migrate
from engine.errors import ConfigError
from tests.conftest import apply_config

CONFIG = """
sources:
  - {name: website, write_key: fixed-key-123456}
  - {name: backend}
destinations:
  - {name: hooks, type: webhook, config: {webhookUrl: "http://127.0.0.1:9000/in"}}
  - {name: product-analytics, type: amplitude, config: {apiKey: secret-amp-key}, enabled: false}
transformations:
  - name: enrich
    code: "export function transformEvent(event, metadata) { return event; }"
connections:
  - {source: website, destination: hooks, transformation: enrich}
  - {source: backend, destination: product-analytics}
"""


def sluice(
    database_url: str, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SLUICE_DATABASE_URL": database_url, "SLUICE_CONFIG": os.devnull}
    return subprocess.run(
        [sys.executable, "-m", "appliance", *args],
        env=env,
        capture_output=True,
        text=True,
        input=stdin,
        timeout=60,
        check=False,
    )


def test_apply_then_export_round_trips_and_is_idempotent(database_url: str) -> None:
    first = apply_config(database_url, CONFIG)
    assert {action for _, _, action in first.changes} == {"created"}
    assert set(first.new_write_keys) == {"backend"}  # generated only where none was given
    assert len(first.new_write_keys["backend"]) == 32

    second = apply_config(database_url, CONFIG)
    assert {action for _, _, action in second.changes} == {"unchanged"}

    exported = yaml.safe_load(sluice(database_url, "config", "export").stdout)
    assert [s["name"] for s in exported["sources"]] == ["backend", "website"]
    assert exported["sources"][1]["write_key"] == "fixed-key-123456"
    assert exported["sources"][0]["write_key"] == first.new_write_keys["backend"]
    assert exported["destinations"][0]["config"] == {"webhookUrl": "http://127.0.0.1:9000/in"}
    assert exported["connections"][1] == {
        "source": "website",
        "destination": "hooks",
        "transformation": "enrich",
    }

    # the export is itself a valid config that changes nothing
    again = apply_config(database_url, yaml.safe_dump(exported))
    assert {action for _, _, action in again.changes} == {"unchanged"}


def test_changes_update_in_place_and_new_code_is_a_new_version(database_url: str) -> None:
    apply_config(database_url, CONFIG)
    report = apply_config(
        database_url,
        """
sources: [{name: website, enabled: false}]
transformations: [{name: enrich, code: "export function transformEvent(e) { return null; }"}]
""",
    )
    assert ("source", "website", "updated") in report.changes
    assert ("transformation", "enrich", "updated") in report.changes
    with psycopg.connect(database_url) as conn:
        key, enabled = (
            conn.execute("SELECT write_key, enabled FROM sources WHERE name = 'website'").fetchone()
            or ()
        )
        versions = conn.execute("SELECT count(*) FROM transformation_versions").fetchone()
    assert (key, enabled) == ("fixed-key-123456", False)  # a key left out is kept
    assert versions == (2,)


def test_a_bad_reference_names_the_entry_and_changes_nothing(database_url: str) -> None:
    with pytest.raises(
        ConfigError, match=r"connections\[0\] \(website → nowhere\).*unknown destination"
    ):
        apply_config(
            database_url,
            """
sources: [{name: website}]
connections: [{source: website, destination: nowhere}]
""",
        )
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM sources").fetchone() == (0,)


def test_a_write_key_used_by_another_source_is_refused(database_url: str) -> None:
    apply_config(database_url, "sources: [{name: a, write_key: shared-key-1}]")
    with pytest.raises(ConfigError, match="already used"):
        apply_config(database_url, "sources: [{name: b, write_key: shared-key-1}]")


def test_cli_apply_reports_and_rejects_bad_files(database_url: str, tmp_path: Path) -> None:
    good = tmp_path / "workspace.yaml"
    good.write_text(CONFIG)
    done = sluice(database_url, "config", "apply", str(good))
    assert done.returncode == 0, done.stderr
    assert "hooks" in done.stdout and "created" in done.stdout
    assert "'backend' write key:" in done.stdout
    again = sluice(database_url, "config", "apply", str(good))  # nothing changes: not audited
    assert again.returncode == 0, again.stderr
    with psycopg.connect(database_url) as conn:
        audited = conn.execute(
            "SELECT actor, action, target, detail->'changes' FROM audit_log"
        ).fetchall()
    [(actor, action, target, changes)] = audited
    assert (actor, action, target) == ("cli", "config.apply", str(good))
    assert "destination hooks: created" in changes

    bad = tmp_path / "bad.json"
    bad.write_text('{"destinations": [{"name": "ga", "type": "ga4", "config": {}}]}')
    failed = sluice(database_url, "config", "apply", str(bad))
    assert failed.returncode != 0
    assert "destinations[0] (ga): Google Analytics 4 needs config apiSecret" in failed.stderr
    assert "Traceback" not in failed.stderr


def test_export_as_json(database_url: str) -> None:
    apply_config(database_url, CONFIG)
    done = sluice(database_url, "config", "export", "--format", "json")
    assert done.returncode == 0
    assert '"webhookUrl": "http://127.0.0.1:9000/in"' in done.stdout


def test_migrations_are_applied_once_even_when_two_hosts_start_together(
    database_url: str, postgres_url: str
) -> None:
    # database_url is already migrated from the template: nothing is left to do
    assert asyncio.run(migrate.apply(database_url)) == []
    from psycopg import sql
    from psycopg.conninfo import make_conninfo

    name = "sluice_migrate_race"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = make_conninfo(postgres_url, dbname=name)
    try:
        racing = [
            subprocess.Popen(
                [sys.executable, "-m", "appliance", "migrate"],
                env={**os.environ, "SLUICE_DATABASE_URL": url, "SLUICE_CONFIG": os.devnull},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(3)
        ]
        outputs = [p.communicate(timeout=60) for p in racing]
        assert all(p.returncode == 0 for p in racing), outputs
        said = sorted(out.strip() for out, _ in outputs)
        everything = f"applied {len(migrate.available())} migration(s)"
        assert said == [everything, "schema is up to date", "schema is up to date"]
        with psycopg.connect(url) as conn:
            versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations")]
        assert versions == [m.version for m in migrate.available()]
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def test_transformation_code_that_does_not_compile_is_refused_with_its_line(
    database_url: str,
) -> None:
    code = "function transformEvent(e) {\n  return e +;\n}"
    broken = {"transformations": [{"name": "broken", "code": code}]}
    with pytest.raises(ConfigError, match=r"transformations\[0\] \(broken\): line 2: SyntaxError"):
        apply_config(database_url, json.dumps(broken))
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM transformations").fetchone() == (0,)


def test_cli_imports_a_rudderstack_workspace_config(database_url: str, tmp_path: Path) -> None:
    from tests.integration.test_web_api import RUDDERSTACK

    path = tmp_path / "workspaceConfig.json"
    path.write_text(json.dumps(RUDDERSTACK))
    done = sluice(database_url, "config", "import", str(path))
    assert done.returncode == 0, done.stderr
    assert "shop" in done.stdout and "created" in done.stdout
    assert "not imported: destination 'crm' of source 'shop'" in done.stdout
    path.write_text("{not json")
    bad = sluice(database_url, "config", "import", str(path))
    assert bad.returncode != 0 and "not valid JSON" in bad.stderr
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM sources").fetchone() == (2,)
        audited = conn.execute("SELECT action FROM audit_log").fetchall()
    assert audited == [("config.import",)]


ALERTING = """
destinations:
  - name: hooks
    type: webhook
    config: {webhookUrl: "http://127.0.0.1:9000/in"}
    alerts: {failure_percent: 2.5, window_minutes: 30, silence_minutes: 60,
             webhook_url: "https://chat.example.com/hooks/T1/secret"}
"""


def test_alert_rules_are_part_of_the_file_and_follow_it(database_url: str) -> None:
    assert apply_config(database_url, ALERTING).changes == [("destination", "hooks", "created")]
    assert apply_config(database_url, ALERTING).changes == [("destination", "hooks", "unchanged")]
    exported = yaml.safe_load(sluice(database_url, "config", "export").stdout)
    assert exported["destinations"][0]["alerts"] == {
        "failure_percent": 2.5, "window_minutes": 30, "silence_minutes": 60,
        "webhook_url": "https://chat.example.com/hooks/T1/secret",
    }  # fmt: skip
    # only the rule changes: the destination is updated; a file without one removes it
    quieter = ALERTING.replace("silence_minutes: 60", "silence_minutes: 120")
    assert apply_config(database_url, quieter).changes == [("destination", "hooks", "updated")]
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT silence_minutes FROM alert_rules").fetchall() == [(120,)]
    without = ALERTING.split("    alerts:")[0]
    assert apply_config(database_url, without).changes == [("destination", "hooks", "updated")]
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM alert_rules").fetchone() == (0,)
    exported = yaml.safe_load(sluice(database_url, "config", "export").stdout)
    assert "alerts" not in exported["destinations"][0]
    with pytest.raises(ConfigError, match=r"destinations\[0\] \(hooks\): alerts: the window is"):
        apply_config(database_url, ALERTING.replace("window_minutes: 30", "window_minutes: 0"))
    with pytest.raises(ConfigError, match=r"unknown field `failure`"):
        apply_config(database_url, ALERTING.replace("failure_percent", "failure"))
