"""Stopping the gateway while events flow: whatever was acknowledged was committed."""

import signal
import time
from collections import Counter
from pathlib import Path

from tests.conftest import ingested
from tests.servers import start_gateway
from tests.traffic import Sender


def test_sigterm_under_load_loses_no_acknowledged_event(
    workspace_config: str, tmp_path: Path
) -> None:
    gateway = start_gateway(workspace_config, tmp_path, {"gateway_workers": "2"})
    senders = [Sender(gateway.url, prefix=f"s{i}") for i in range(4)]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.wait_for(200, at_least=20)
    gateway.proc.send_signal(signal.SIGTERM)
    gateway.proc.wait(timeout=30)
    time.sleep(0.2)
    for sender in senders:
        sender.stop.set()
        sender.join()

    stored = Counter(row["message_id"] for row in ingested(workspace_config))
    acked = [m for sender in senders for m in sender.acked]
    assert len(acked) >= 400
    assert [m for m in acked if m not in stored] == []
    assert max(stored.values()) == 1
    assert gateway.proc.returncode == 0, gateway.output()
