"""The configuration browser SDKs fetch on load, served by Sluice itself.

Destinations are delivered from the server (cloud mode), so neither answer lists device-mode
destinations: the SDKs send every event to the gateway and nowhere else.
"""

from typing import Any
from urllib.parse import urlsplit

from engine.gateway.sources import Source


def rudderstack_source_config(source: Source) -> dict[str, Any]:
    """The answer to RudderStack analytics-js v3's `GET /sourceConfig/`."""
    return {
        "isHosted": False,
        "source": {
            "id": source.id,
            "name": source.name,
            "writeKey": source.write_key,
            "enabled": source.enabled,
            "config": {},
            "destinations": [],
        },
    }


def segment_settings(source: Source, public_url: str) -> dict[str, Any]:
    """The answer to Segment analytics-next's `GET /v1/projects/<writeKey>/settings`.

    `integrations["Segment.io"].apiHost` is host and path without a scheme; analytics-next
    posts to `<protocol>://<apiHost>/<t|i|p|…>`, which is this gateway's `/v1/...`. Its own
    metrics, should a page turn them on, go to `<metrics.host>/m`: this gateway's `/v1/m` too,
    never Segment's host.
    """
    url = urlsplit(public_url)
    api_host = f"{url.netloc}{url.path.rstrip('/')}/v1"
    return {
        "integrations": {
            "Segment.io": {
                "apiKey": source.write_key,
                "apiHost": api_host,
                "protocol": url.scheme or "http",
                "unbundledIntegrations": [],
                "addBundledMetadata": True,
                "maybeBundledConfigIds": {},
            }
        },
        "plan": {
            "track": {"__default": {"enabled": True, "integrations": {}}},
            "identify": {"__default": {"enabled": True}},
            "group": {"__default": {"enabled": True}},
        },
        "edgeFunction": {},
        "analyticsNextEnabled": True,
        "middlewareSettings": {},
        "enabledMiddleware": {},
        "metrics": {"sampleRate": 0, "host": api_host},
        "legacyVideoPluginsEnabled": False,
        "remotePlugins": [],
    }
