"""An event a destination cannot take for lack of an optional setting (a group call to Amplitude
or Mixpanel with their default settings) is filtered and counted, not failed; the other calls
of the same batch arrive."""

import psycopg

from tests.delivery import connect_destinations, failed_jobs, post, wait_until
from tests.servers import GatewayProcess, WorkerProcess
from tests.sink import Sink
from tests.vendors.amplitude import AmplitudeDouble
from tests.vendors.mixpanel import MixpanelDouble


def filtered(database_url: str) -> dict[str, int]:
    """Filtered events per destination name."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT d.name, sum(s.events)::int FROM stats_minute s"
            " JOIN destinations d ON d.id = s.destination_id"
            " WHERE s.outcome = 'filtered' GROUP BY 1"
        ).fetchall()
    return dict(rows)


def test_group_calls_without_their_settings_are_counted_as_filtered(
    workspace_config: str, gateway: GatewayProcess, worker: WorkerProcess
) -> None:
    amplitude, mixpanel = AmplitudeDouble("amp-key"), MixpanelDouble("mp-token")
    with Sink(amplitude) as amp_sink, Sink(mixpanel) as mp_sink:
        connect_destinations(
            workspace_config,
            ("amp", "amplitude", {"apiKey": "amp-key", "endpoint": amp_sink.url}),
            ("mp", "mixpanel", {"token": "mp-token", "endpoint": mp_sink.url}),
        )
        post(gateway, [
            {"type": "group", "userId": "u1", "groupId": "g1", "messageId": "m-group",
             "traits": {"company": "Acme", "kind": "Company"}},
            {"type": "track", "userId": "u1", "event": "Signed Up", "messageId": "m-track"},
        ])  # fmt: skip
        wait_until(lambda: amplitude.events and mixpanel.events)
        wait_until(lambda: filtered(workspace_config) == {"amp": 1, "mp": 1})
    assert [e["event_type"] for e in amplitude.events] == ["Signed Up"]
    assert [e["event"] for e in mixpanel.events] == ["Signed Up"]
    assert failed_jobs(workspace_config) == []
