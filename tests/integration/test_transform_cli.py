"""`sluice transform test`: the editor's service, from a terminal."""

import json
import subprocess
import sys
from pathlib import Path


def transform_test(tmp_path: Path, code: str, event: object) -> subprocess.CompletedProcess[str]:
    (tmp_path / "code.js").write_text(code)
    (tmp_path / "event.json").write_text(json.dumps(event))
    return subprocess.run(
        [sys.executable, "-m", "appliance", "transform", "test",
         "--code", str(tmp_path / "code.js"), "--event", str(tmp_path / "event.json")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_prints_the_output_and_the_logs(tmp_path: Path) -> None:
    code = (
        "export function transformEvent(e, m) {"
        ' log("hi", m(e).destinationType); e.x = 1; return e; }'
    )
    done = transform_test(tmp_path, code, {"type": "track", "event": "E"})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "events": [{"type": "track", "event": "E", "x": 1}],
        "logs": ["hi webhook"],
        "error": None,
    }


def test_an_error_says_where_and_exits_1(tmp_path: Path) -> None:
    done = transform_test(
        tmp_path, "function transformEvent(e) {\n  return e.a.b;\n}", [{"type": "track"}]
    )
    assert done.returncode == 1
    assert "(line 2:" in json.loads(done.stdout)["error"]
