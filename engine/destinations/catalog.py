"""The destination types Sluice knows, with the settings each one cannot do without.

Setting keys are RudderStack's destination-definition names, so a RudderStack workspace config
imports unchanged. Each destination's own module validates the rest of its settings.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class DestinationType:
    name: str
    title: str
    required: tuple[str, ...]
    secrets: tuple[str, ...] = ()


CATALOG: dict[str, DestinationType] = {
    t.name: t
    for t in (
        DestinationType("webhook", "Webhook", ("webhookUrl",)),
        DestinationType("ga4", "Google Analytics 4", ("apiSecret",), ("apiSecret",)),
        DestinationType("amplitude", "Amplitude", ("apiKey",), ("apiKey", "apiSecret")),
        DestinationType("mixpanel", "Mixpanel", ("token",), ("apiSecret",)),
        DestinationType("adjust", "Adjust", ("appToken",)),
        DestinationType("appsflyer", "AppsFlyer", ("devKey",), ("devKey", "s2sKey")),
        DestinationType(
            "facebook_pixel", "Facebook Pixel", ("pixelId", "accessToken"), ("accessToken",)
        ),
        DestinationType(
            "facebook_conversions",
            "Facebook Conversions",
            ("datasetId", "accessToken"),
            ("accessToken",),
        ),
        DestinationType("facebook_app_events", "Facebook App Events", ("appID",)),
        DestinationType("s3", "Amazon S3", ("bucketName",), ("accessKey",)),
    )
}
