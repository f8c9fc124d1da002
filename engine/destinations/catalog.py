"""The destination types Sluice knows, with the settings each one cannot do without.

Setting keys are RudderStack's destination-definition names, so a RudderStack workspace config
imports unchanged. Types with a plug-in in `IMPLEMENTED` are delivered; the others can be
configured already, and their events wait as failed jobs (visible, replayable) until they are.
"""

from dataclasses import dataclass

from engine.destinations.adjust import ADJUST
from engine.destinations.amplitude import AMPLITUDE
from engine.destinations.appsflyer import APPSFLYER
from engine.destinations.base import Destination
from engine.destinations.facebook_app_events import FACEBOOK_APP_EVENTS
from engine.destinations.facebook_conversions import FACEBOOK_CONVERSIONS
from engine.destinations.facebook_pixel import FACEBOOK_PIXEL
from engine.destinations.ga4 import GA4
from engine.destinations.mixpanel import MIXPANEL
from engine.destinations.s3 import S3
from engine.destinations.webhook import WEBHOOK


@dataclass(frozen=True)
class DestinationType:
    name: str
    title: str
    required: tuple[str, ...]


CATALOG: dict[str, DestinationType] = {
    t.name: t
    for t in (
        DestinationType("webhook", "Webhook", ("webhookUrl",)),
        DestinationType("ga4", "Google Analytics 4", ("apiSecret",)),
        DestinationType("amplitude", "Amplitude", ("apiKey",)),
        DestinationType("mixpanel", "Mixpanel", ("token",)),
        DestinationType("adjust", "Adjust", ("appToken",)),
        DestinationType("appsflyer", "AppsFlyer", ()),  # devKey or s2sKey, per authVersion
        DestinationType("facebook_pixel", "Facebook Pixel", ("pixelId", "accessToken")),
        DestinationType(
            "facebook_conversions", "Facebook Conversions", ("datasetId", "accessToken")
        ),
        DestinationType("facebook_app_events", "Facebook App Events", ("appID",)),
        DestinationType("s3", "Amazon S3", ("bucketName",)),
    )
}

IMPLEMENTED: dict[str, Destination] = {
    d.name: d
    for d in (
        AMPLITUDE,
        WEBHOOK,
        ADJUST,
        APPSFLYER,
        GA4,
        MIXPANEL,
        FACEBOOK_PIXEL,
        FACEBOOK_CONVERSIONS,
        FACEBOOK_APP_EVENTS,
        S3,
    )
}
