"""`sluice warehouse preview`: a conformance case's event and options in, its rows out, as JSON;
a refusal or bad input is a message and a failing exit status."""

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

CASES = {
    case["id"]: case
    for case in json.loads((Path(__file__).parents[1] / "conformance/warehouse.json").read_text())
}


def _preview(
    tmp_path: Path, kind: str, event: Any, options: Any = None
) -> subprocess.CompletedProcess[str]:
    event_file = tmp_path / "event.json"
    event_file.write_text(json.dumps(event))
    command = [sys.executable, "-m", "appliance", "warehouse", "preview", "--type", kind,
               "--event", str(event_file)]  # fmt: skip
    if options is not None:
        options_file = tmp_path / "options.json"
        options_file.write_text(json.dumps(options))
        command += ["--options", str(options_file)]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def test_a_case_through_the_command(tmp_path: Path) -> None:
    for case_id in ("wh-redshift-28", "wh-snowflake-33", "wh-bigquery-32"):
        case = CASES[case_id]
        kind = case["options"]["provider_code"].lower()  # lower case is accepted
        done = _preview(tmp_path, kind, case["event"], case["options"])
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == case["expected"]


def test_numbers_are_printed_as_rudderstack_prints_them(tmp_path: Path) -> None:
    event = {"type": "page", "name": "Home", "messageId": "m", "properties": {"n": 2.0}}
    done = _preview(tmp_path, "POSTGRES", event)
    assert done.returncode == 0, done.stderr
    assert '"n": 2,' in done.stdout


def test_a_refused_event_says_why(tmp_path: Path) -> None:
    case = CASES["wh-snowflake-25"]
    done = _preview(tmp_path, "SNOWFLAKE", case["event"], case["options"])
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.strip() == f"sluice: {case['expected_error']['message']}"


def test_bad_input_is_named(tmp_path: Path) -> None:
    done = _preview(tmp_path, "MYSQL", {"type": "page"})
    assert done.returncode == 1
    assert (
        "'MYSQL' is not a warehouse; expected one of POSTGRES, RS, SNOWFLAKE, BQ, CLICKHOUSE"
        in done.stderr
    )
    done = _preview(tmp_path, "BQ", {"type": "page"}, {"request_query": ["whIDResolve"]})
    assert done.returncode == 1
    assert "options.json: Expected `object`, got `array` - at `$.request_query`" in done.stderr
    (tmp_path / "event.json").write_text("{not json")
    done = subprocess.run(
        [sys.executable, "-m", "appliance", "warehouse", "preview", "--type", "BQ",
         "--event", str(tmp_path / "event.json")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1 and "event.json: not valid JSON" in done.stderr
