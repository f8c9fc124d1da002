"""`sluice status` (the real command, against a real PostgreSQL) says when each host's HTTPS
certificate expires, and which to renew."""

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.integration.test_web_home import certified, day


def _status(url: str, workdir: Path, *flags: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "appliance", "status", *flags],
        env={**os.environ, "SLUICE_DATABASE_URL": url, "SLUICE_DATA_DIR": str(workdir),
             "SLUICE_CONFIG": os.devnull},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_each_host_s_certificate_and_how_soon_it_expires(database_url: str, tmp_path: Path) -> None:
    assert "HTTPS certificate" not in _status(database_url, tmp_path)  # (none served)
    certified(database_url, ("gw-1", 10, "gateway", "1 second", 30),
              ("gw-1", 11, "web", "1 second", 45), ("gw-2", 12, "gateway", "1 second", 10),
              ("gw-3", 13, "web", "1 second", -1), ("gw-4", 14, "web", "5 minutes", 3))  # fmt: skip
    lines = [line for line in _status(database_url, tmp_path).splitlines() if "HTTPS" in line]
    assert lines == [
        f"HTTPS certificate on gw-1: expires {day(30)}, in 30 days",
        f"HTTPS certificate on gw-2: expires {day(10)}, in 10 days: renew it"
        " (`sluice tls install CERT KEY`)",
        f"HTTPS certificate on gw-3: expired {day(-1)}, 1 day ago: renew it now"
        " (`sluice tls install CERT KEY`)",
    ]
    said = json.loads(_status(database_url, tmp_path, "--json"))
    assert [(c["host"], c["days_left"], c["state"]) for c in said["certificates"]] == [
        ("gw-1", 30, "ok"), ("gw-2", 10, "warning"), ("gw-3", -1, "expired")]  # fmt: skip
    assert said["certificates"][0]["expires"].startswith(day(30))
