"""The destination types this version of Sluice delivers to, by name.

Their names and setting keys are RudderStack's destination definitions', so a RudderStack
workspace config imports unchanged (`engine.control.rudderstack`).
"""

from engine.destinations.adjust import ADJUST
from engine.destinations.amplitude import AMPLITUDE
from engine.destinations.appsflyer import APPSFLYER
from engine.destinations.base import DestinationType
from engine.destinations.bigquery import BIGQUERY
from engine.destinations.braze import BRAZE
from engine.destinations.clickhouse import CLICKHOUSE
from engine.destinations.customerio import CUSTOMERIO
from engine.destinations.facebook_app_events import FACEBOOK_APP_EVENTS
from engine.destinations.facebook_conversions import FACEBOOK_CONVERSIONS
from engine.destinations.facebook_pixel import FACEBOOK_PIXEL
from engine.destinations.ga4 import GA4
from engine.destinations.hs import HS
from engine.destinations.intercom import INTERCOM
from engine.destinations.iterable import ITERABLE
from engine.destinations.klaviyo import KLAVIYO
from engine.destinations.mixpanel import MIXPANEL
from engine.destinations.pinterest_tag import PINTEREST_TAG
from engine.destinations.postgres import POSTGRES
from engine.destinations.posthog import POSTHOG
from engine.destinations.redshift import REDSHIFT
from engine.destinations.s3 import S3
from engine.destinations.slack import SLACK
from engine.destinations.snapchat_conversion import SNAPCHAT_CONVERSION
from engine.destinations.snowflake import SNOWFLAKE
from engine.destinations.tiktok_ads import TIKTOK_ADS
from engine.destinations.webhook import WEBHOOK

TYPES: dict[str, DestinationType] = {
    t.name: t
    for t in (
        WEBHOOK,
        GA4,
        AMPLITUDE,
        MIXPANEL,
        ADJUST,
        APPSFLYER,
        FACEBOOK_PIXEL,
        FACEBOOK_CONVERSIONS,
        FACEBOOK_APP_EVENTS,
        CUSTOMERIO,
        INTERCOM,
        HS,
        KLAVIYO,
        ITERABLE,
        BRAZE,
        POSTHOG,
        SLACK,
        TIKTOK_ADS,
        PINTEREST_TAG,
        SNAPCHAT_CONVERSION,
        S3,
        POSTGRES,
        REDSHIFT,
        SNOWFLAKE,
        BIGQUERY,
        CLICKHOUSE,
    )
}
