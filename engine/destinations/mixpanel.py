"""Mixpanel: events to `/import`, user profiles to `/engage`, group profiles to `/groups`
(RudderStack's `mp` keys).

Hosts: `https://api.mixpanel.com`, `api-eu` or `api-in` by `dataResidency` (us/eu/in), or the
`endpoint` setting; paths keep RudderStack's trailing slash. Every request carries one item in
its JSON array, so a combined batch holds one item per job, in job order: that is what lets a
partial answer (`failed_records[].index`) be judged event by event.

* `/import` authenticates with a service account (`Basic user:secret` and the `project_id`
  query parameter) when `serviceAccountUserName`/`serviceAccountSecret` are set (`projectId`
  is then required), else with the project token as the user and an empty password. The legacy
  `apiSecret` is accepted and not used (Mixpanel authenticates by token when no `project_id`
  is given, as RudderStack does today). `strict=1` by default (`strictMode`; RudderStack
  defaults to 0): Mixpanel then says which events it refused, and they fail visibly instead of
  being dropped in silence. `/engage` and `/groups` carry `$token` in each update and ask for
  `verbose=1` answers, whose `error` tells a refused update from an applied one.
* Identity: `distinct_id` is `userId`, else `anonymousId`; under Simplified ID Merge
  (`identityMergeApi: simplified`) it is `userId`, else `$device:<anonymousId>`, and events
  also carry `$device_id` and `$user_id`. An event with neither id cannot be sent.
* track, page (`Loaded a Page`), screen (`Loaded a Screen`; both names can come from a
  `{{ name }}`/`{{ category }}` template) → one `/import` event: `context.traits` (for track
  unless `dropTraitsInTrackEvent`), then the event's properties (they win over traits), then
  context fields (`ip`, `$current_url`, `$referrer`, `$os`, `$screen_*`, `$carrier`, `$model`,
  `$app_*`, `mp_lib`, …), `token`, `distinct_id`, `time` (ms), `utm_*` from
  `context.campaign` (`name` → `utm_campaign`), and `$browser`/`$browser_version` read from the
  user agent for the web channel. Events older than 5 years are refused (RudderStack's rule).
* `time` is the event's `timestamp`, else `originalTimestamp`, else the gateway's `receivedAt`.
* `$insert_id` (Mixpanel's dedup key, ≤36 characters of letters, digits and `-`) is the last
  36 characters of `messageId`; when those do not qualify, or there is no messageId, it is a
  hash (of the messageId, else of distinct_id, name and time), stable across retries.
* track with a numeric `properties.revenue` first appends `{$time, $amount}` to the profile's
  `$transactions`; properties named in `propIncrements` (numeric, non-zero) are `$add`ed.
* identify → `/engage` `$set` of the traits (`traits` over `context.traits`), Mixpanel's
  reserved names for the known ones (`$email`, `$first_name`, `$name` built from first and last
  name when absent, `$created`, `$city`, `$country_code`, …; `useNewMapping: false` keeps
  RudderStack's legacy `$firstName`/`$lastName`), device and location fields, push tokens, and
  `$ip`, `$time`, `$ignore_time` when `context.active` is false. Traits named in
  `setOnceProperties`, `unionProperties`, `appendProperties` go in `$set_once`, `$union`,
  `$append` updates of their own. Under the original ID merge an identify with both ids also
  sends a `$merge` event to `/import`.
* alias → `/import` `$create_alias` (previousId, else anonymousId, becomes userId); refused
  under Simplified ID Merge, where it means nothing.
* group → for each `groupKeySettings` key the event has (in its traits, or `groupId`): the
  user's profile `$set {<key>: [values]}` and, per value, a `/groups` `$set` of the traits.
  Without `groupKeySettings` a group call is filtered (counted, with the reason naming the
  setting), not failed.

Batching: requests to the same endpoint with the same credentials combine, up to 2000 items
(Mixpanel's limit for all three endpoints) and 2 MB of stored requests (`/import` takes 10 MB,
an event up to 1 MB).

Answers: 2xx is delivered unless the body carries an `error` or `status: 0` (`/engage` and
`/groups` answer 200 to refused updates): then the whole batch is refused, with Mixpanel's
words. `/import` 400 with `failed_records` is a partial success: the listed events are refused
with their field and message, the others were ingested. 400 without them, 401 and 403 refuse
the batch; 413 (the router splits the batch), 429 and 5xx are retried.
"""

import base64
import hashlib
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from msgspec import Raw

from engine.destinations import segment, useragent
from engine.destinations.base import (
    DestinationType,
    Judgement,
    Request,
    Unsendable,
    Verdict,
    base_url,
    check_endpoint,
    for_call,
    json_answer,
)

HOSTS = {
    "us": "https://api.mixpanel.com",
    "eu": "https://api-eu.mixpanel.com",
    "in": "https://api-in.mixpanel.com",
}
_MERGE_APIS = ("original", "simplified")
_JSON = {"Content-Type": "application/json"}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_AGE_YEARS = 5
_INSERT_ID = re.compile(r"^[A-Za-z0-9-]{1,36}$")
_TEMPLATE_FIELD = re.compile(r"\{\{\s*(name|category)\s*\}\}")
_REASON = 300  # characters of a vendor's reason kept per event


class Row(msgspec.Struct):
    """A `{property}` row of RudderStack's property lists."""

    property: str = ""


class GroupKey(msgspec.Struct):
    groupKey: str = ""


class MixpanelSettings(msgspec.Struct):
    token: str
    apiSecret: str | None = None  # legacy project secret: accepted, not used
    serviceAccountUserName: str | None = None
    serviceAccountSecret: str | None = None
    projectId: str | int | None = None
    dataResidency: str = "us"
    identityMergeApi: str = "original"
    strictMode: bool = True
    useNewMapping: bool = True
    dropTraitsInTrackEvent: bool = False
    groupKeySettings: list[GroupKey] = []
    propIncrements: list[Row] = []
    setOnceProperties: list[Row] = []
    unionProperties: list[Row] = []
    appendProperties: list[Row] = []
    useUserDefinedPageEventName: bool = False
    userDefinedPageEventTemplate: str = ""
    useUserDefinedScreenEventName: bool = False
    userDefinedScreenEventTemplate: str = ""
    gdprApiToken: str | None = None  # for user deletion (not done here): a secret all the same
    endpoint: str | None = None

    def __post_init__(self) -> None:
        if not self.token.strip():
            raise ValueError("token (the Mixpanel project token) is required")
        self.dataResidency = (self.dataResidency or "us").lower()
        if self.dataResidency not in HOSTS:
            raise ValueError(f"dataResidency must be one of {', '.join(HOSTS)}")
        self.identityMergeApi = (self.identityMergeApi or "original").lower()
        if self.identityMergeApi not in _MERGE_APIS:
            raise ValueError(f"identityMergeApi must be one of {', '.join(_MERGE_APIS)}")
        self._check_service_account()
        for flag, template in (
            ("useUserDefinedPageEventName", self.userDefinedPageEventTemplate),
            ("useUserDefinedScreenEventName", self.userDefinedScreenEventTemplate),
        ):
            if getattr(self, flag) and not template.strip():
                raise ValueError(f"{flag} is on but its event name template is empty")
        check_endpoint(self.endpoint)

    def _check_service_account(self) -> None:
        if isinstance(self.projectId, int):
            self.projectId = str(self.projectId)
        if not (self.serviceAccountUserName or self.serviceAccountSecret):
            return
        if not (self.serviceAccountUserName and self.serviceAccountSecret):
            raise ValueError(
                "service-account auth needs both serviceAccountUserName and serviceAccountSecret"
            )
        if not self.projectId or not self.projectId.strip().isdigit():
            raise ValueError(
                "service-account auth needs projectId, the numeric id of the Mixpanel project"
            )

    @property
    def simplified(self) -> bool:
        return self.identityMergeApi == "simplified"


# ---------------------------------------------------------------------------------------------
# Requests


def _base(settings: MixpanelSettings) -> str:
    return base_url(settings.endpoint, HOSTS[settings.dataResidency])


def _import(settings: MixpanelSettings, item: dict[str, Any]) -> Request:
    params = {"strict": "1" if settings.strictMode else "0"}
    user, password = settings.token, ""
    if settings.serviceAccountUserName and settings.serviceAccountSecret:
        user, password = settings.serviceAccountUserName, settings.serviceAccountSecret
        params["project_id"] = str(settings.projectId).strip()
    credentials = base64.b64encode(f"{user}:{password}".encode()).decode()
    headers = {**_JSON, "Authorization": f"Basic {credentials}"}
    return Request("POST", f"{_base(settings)}/import/", headers, params, [item])


def _engage(settings: MixpanelSettings, update: dict[str, Any]) -> Request:
    body = [{**update, "$token": settings.token}]
    return Request("POST", f"{_base(settings)}/engage/", dict(_JSON), {"verbose": "1"}, body)


def _groups(settings: MixpanelSettings, update: dict[str, Any]) -> Request:
    body = [{**update, "$token": settings.token}]
    return Request("POST", f"{_base(settings)}/groups/", dict(_JSON), {"verbose": "1"}, body)


# ---------------------------------------------------------------------------------------------
# Reading the event


def _scalar(value: Any) -> Any:
    """A value fit for a mapped field: text (non-empty), a boolean or a number; else None."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, bool | int | float | Raw):
        return value
    return None


def _first(node: dict[str, Any], paths: Sequence[str]) -> Any:
    for path in paths:
        if (value := _scalar(segment.dig(node, path))) is not None:
            return value
    return None


def _mapped(node: dict[str, Any], table: Sequence[tuple[str, tuple[str, ...]]]) -> dict[str, Any]:
    found = {}
    for name, paths in table:
        if (value := _first(node, paths)) is not None:
            found[name] = value
    return found


class _Ids:
    """Who the event is about, in Mixpanel's terms."""

    def __init__(self, event: dict[str, Any], settings: MixpanelSettings) -> None:
        self.user = segment.user_id(event)
        self.anonymous = segment.anonymous_id(event)
        self.simplified = settings.simplified
        device = f"$device:{self.anonymous}" if self.anonymous else None
        distinct = self.user or (device if self.simplified else self.anonymous)
        if distinct is None:
            raise Unsendable("the event has neither userId nor anonymousId")
        self.distinct: str = distinct

    def event_fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {"distinct_id": self.distinct}
        if self.user:
            fields["$user_id"] = self.user
        if self.simplified and self.anonymous:
            fields["$device_id"] = self.anonymous
        return fields


def _time(event: dict[str, Any]) -> datetime | None:
    """When the event happened, else when the gateway received it."""
    return segment.event_time(event) or segment.event_time({"timestamp": event.get("receivedAt")})


def _when(event: dict[str, Any], now: datetime) -> datetime:
    """The event's time, for an `/import` event: required, and not older than 5 years."""
    when = _time(event)
    if when is None:
        raise Unsendable("the event has no timestamp (Mixpanel needs each event's time)")
    try:
        limit = now.replace(year=now.year - _MAX_AGE_YEARS)
    except ValueError:  # 29 February
        limit = now.replace(year=now.year - _MAX_AGE_YEARS, day=28)
    if when < limit:
        raise Unsendable(f"the event's time {when.isoformat()} is more than 5 years ago")
    return when


def _millis(when: datetime) -> int:
    return (when - _EPOCH) // timedelta(milliseconds=1)


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _insert_id(event: dict[str, Any], distinct: str, name: str, time_ms: int) -> str:
    message_id = segment.text(event.get("messageId"))
    if message_id and _INSERT_ID.match(message_id[-36:]):
        return message_id[-36:]
    seed = message_id or f"{distinct}\x00{name}\x00{time_ms}"
    return hashlib.sha256(seed.encode()).hexdigest()[:36]


def _browser_fields(event: dict[str, Any]) -> dict[str, Any]:
    """The browser, as Mixpanel's JavaScript SDK reports it, for web events."""
    user_agent = segment.context(event).get("userAgent")
    if event.get("channel") != "web" or not isinstance(user_agent, str):
        return {}
    browser = useragent.read(user_agent).browser
    if browser is None:
        return {}
    fields = {"$browser": browser.name}
    if browser.version is not None:
        fields["$browser_version"] = browser.version
    return fields


# ---------------------------------------------------------------------------------------------
# Events (/import)

_EVENT_CONTEXT: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("campaign_id", ("campaign.name",)),
    ("$current_url", ("page.url",)),
    ("$referrer", ("page.referrer",)),
    ("$initial_referrer", ("page.initial_referrer", "page.initialReferrer")),
    (
        "$initial_referring_domain",
        ("page.initial_referring_domain", "page.initialReferringDomain"),
    ),
    ("$os", ("os.name",)),
    ("$os_version", ("os.version",)),
    ("$screen_height", ("screen.height",)),
    ("$screen_width", ("screen.width",)),
    ("$screen_dpi", ("screen.density",)),
    ("$carrier", ("network.carrier",)),
    ("$wifi", ("network.wifi",)),
    ("$bluetooth_enabled", ("network.bluetooth",)),
    ("$device", ("device.name",)),
    ("$manufacturer", ("device.manufacturer",)),
    ("$model", ("device.model",)),
    ("mp_device_model", ("device.model",)),
    ("mp_lib", ("library.name",)),
    ("$app_name", ("app.name",)),
    ("$app_namespace", ("app.namespace",)),
    ("$app_build_number", ("app.build",)),
    ("$app_version_string", ("app.version",)),
)


def _utm(event: dict[str, Any]) -> dict[str, Any]:
    campaign = segment.mapping(segment.context(event).get("campaign"))
    utm = {}
    for key, value in campaign.items():
        if _scalar(value) is not None:
            utm["utm_campaign" if key == "name" else f"utm_{key}"] = value
    return utm


def _event(
    event: dict[str, Any],
    settings: MixpanelSettings,
    ids: _Ids,
    name: str,
    when: datetime,
    extra: dict[str, Any] | None = None,
    *,
    traits: bool = True,
) -> Request:
    context = segment.context(event)
    time_ms = _millis(when)
    properties: dict[str, Any] = {}
    if traits:
        properties.update(segment.mapping(context.get("traits")))
    properties.update(segment.properties(event))
    properties.update(_mapped(context, _EVENT_CONTEXT))
    if (ip := segment.ip(event)) is not None:
        properties["ip"] = ip
    if (session := segment.text(context.get("sessionId"))) is not None:
        properties["$session_id"] = session
    properties["$insert_id"] = _insert_id(event, ids.distinct, name, time_ms)
    properties |= {"token": settings.token, **ids.event_fields(), "time": time_ms}
    properties |= _utm(event) | (extra or {}) | _browser_fields(event)
    return _import(settings, {"event": name, "properties": properties})


def _track(event: dict[str, Any], settings: MixpanelSettings, now: datetime) -> list[Request]:
    name = event.get("event")
    if not isinstance(name, str) or not name.strip():
        raise Unsendable("a track call needs an event name")
    ids = _Ids(event, settings)
    when = _when(event, now)
    requests = _revenue(event, settings, ids, when) + _increments(event, settings, ids)
    requests.append(
        _event(event, settings, ids, name, when, traits=not settings.dropTraitsInTrackEvent)
    )
    return requests


def _amount(value: Any) -> int | float | Raw | None:
    """A revenue amount: a number as sent, numeric text as a number; zero counts as none."""
    number = segment.number(value)
    if not number:
        return None
    return value if isinstance(value, int | float | Raw) and not isinstance(value, bool) else number


def _revenue(
    event: dict[str, Any], settings: MixpanelSettings, ids: _Ids, when: datetime
) -> list[Request]:
    amount = _amount(segment.properties(event).get("revenue"))
    if amount is None:
        return []
    transaction = {"$time": _iso(when), "$amount": amount}
    update = {"$append": {"$transactions": transaction}, "$distinct_id": ids.distinct}
    return [_engage(settings, update)]


def _increments(event: dict[str, Any], settings: MixpanelSettings, ids: _Ids) -> list[Request]:
    wanted = {row.property for row in settings.propIncrements if row.property}
    properties = segment.properties(event)
    # Values go as sent (numeric text included, as RudderStack sends it); others are left out.
    add = {k: v for k, v in properties.items() if k in wanted and segment.number(v)}
    if not add:
        return []
    return [_engage(settings, {"$add": add, "$distinct_id": ids.distinct})]


def _page(event: dict[str, Any], settings: MixpanelSettings, now: datetime) -> list[Request]:
    page = event.get("type") == "page"
    ids = _Ids(event, settings)
    when = _when(event, now)
    named = {k: v for k in ("name", "category") if (v := _scalar(event.get(k))) is not None}
    return [_event(event, settings, ids, _page_name(event, settings, page), when, named)]


def _page_name(event: dict[str, Any], settings: MixpanelSettings, page: bool) -> str:
    default = "Loaded a Page" if page else "Loaded a Screen"
    use, template = (
        (settings.useUserDefinedPageEventName, settings.userDefinedPageEventTemplate)
        if page
        else (settings.useUserDefinedScreenEventName, settings.userDefinedScreenEventTemplate)
    )
    if not use:
        return default

    def field(match: re.Match[str]) -> str:
        return segment.text(event.get(match.group(1))) or ""

    name = " ".join(_TEMPLATE_FIELD.sub(field, template).split())
    return name or default


def _alias(event: dict[str, Any], settings: MixpanelSettings, now: datetime) -> list[Request]:
    if settings.simplified:
        raise Unsendable("alias calls have no meaning under Simplified ID Merge")
    user = segment.user_id(event)
    previous = segment.text(event.get("previousId")) or segment.anonymous_id(event)
    if user is None or previous is None:
        raise Unsendable("an alias call needs userId and previousId (or anonymousId)")
    if user == previous:
        raise Unsendable("an alias call's previousId is its userId: nothing to alias")
    _when(event, now)
    properties = {"distinct_id": previous, "alias": user, "token": settings.token}
    return [_import(settings, {"event": "$create_alias", "properties": properties})]


# ---------------------------------------------------------------------------------------------
# Profiles (/engage) and groups (/groups)

_PROFILE_TRAITS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("$created", ("createdAt",)),
    ("$email", ("email",)),
    ("$first_name", ("firstName", "firstname", "first_name")),
    ("$last_name", ("lastName", "lastname", "last_name")),
    ("$name", ("name",)),
    ("$username", ("username", "userName")),
    ("$phone", ("phone",)),
    ("$avatar", ("avatar",)),
    ("$country_code", ("country", "address.country")),
    ("$city", ("city", "address.city")),
    ("$region", ("state", "address.state")),
    ("$unsubscribed", ("unsubscribed",)),
)
# Traits that become reserved profile properties (above) are not also sent under their names.
_RESERVED_TRAITS = frozenset({path.split(".")[0] for _, paths in _PROFILE_TRAITS for path in paths})
_PROFILE_CONTEXT: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("$country_code", ("location.country",)),
    ("$city", ("location.city",)),
    ("$region", ("location.region",)),
    ("$timezone", ("location.timezone",)),
    ("$latitude", ("location.latitude",)),
    ("$longitude", ("location.longitude",)),
    ("$carrier", ("network.carrier",)),
    ("$manufacturer", ("device.manufacturer",)),
    ("$model", ("device.model",)),
    ("$screen_height", ("screen.height",)),
    ("$screen_width", ("screen.width",)),
    ("$wifi", ("network.wifi",)),
    ("$initial_referrer", ("page.initial_referrer", "page.initialReferrer")),
    (
        "$initial_referring_domain",
        ("page.initial_referring_domain", "page.initialReferringDomain"),
    ),
)
_APPLE = frozenset({"ios", "ipados", "tvos", "watchos", "macos"})
_IOS_PROFILE: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("$os", ("os.name",)),
    ("$ios_device_model", ("device.model",)),
    ("$ios_version", ("os.version",)),
    ("$ios_app_release", ("app.version",)),
    ("$ios_app_version", ("app.build",)),
)
_ANDROID_PROFILE: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("$os", ("os.name",)),
    ("$android_model", ("device.model",)),
    ("$android_os_version", ("os.version",)),
    ("$android_manufacturer", ("device.manufacturer",)),
    ("$android_brand", ("device.manufacturer",)),
    ("$android_app_version", ("app.version",)),
)


def _profile(traits: dict[str, Any], legacy_names: bool) -> dict[str, Any]:
    """Traits as profile properties: Mixpanel's reserved names for the known ones."""
    profile = {k: v for k, v in traits.items() if k not in _RESERVED_TRAITS}
    profile |= _mapped(traits, _PROFILE_TRAITS)
    if "$name" not in profile:
        parts = [profile.get("$first_name"), profile.get("$last_name")]
        full = " ".join(segment.text(p) or "" for p in parts).strip()
        if full:
            profile["$name"] = full
    if legacy_names:  # RudderStack's names before `useNewMapping`
        for new, old in (("$first_name", "$firstName"), ("$last_name", "$lastName")):
            if new in profile:
                profile[old] = profile.pop(new)
    return profile


def _device_fields(context: dict[str, Any]) -> dict[str, Any]:
    device = segment.mapping(context.get("device"))
    token = segment.text(device.get("token"))
    kind = str(device.get("type") or "").lower()
    if token is None:
        return {}
    if kind in _APPLE:
        return _mapped(context, _IOS_PROFILE) | {"$ios_devices": [token]}
    if kind == "android":
        return _mapped(context, _ANDROID_PROFILE) | {"$android_devices": [token]}
    return {}


def _identify(event: dict[str, Any], settings: MixpanelSettings, now: datetime) -> list[Request]:
    ids = _Ids(event, settings)
    context = segment.context(event)
    traits = segment.mapping(context.get("traits")) | segment.mapping(event.get("traits"))
    lists = {
        op: {row.property for row in rows if row.property}
        for op, rows in (
            ("$set_once", settings.setOnceProperties),
            ("$union", settings.unionProperties),
            ("$append", settings.appendProperties),
        )
    }
    apart = set().union(*lists.values())
    profile = _mapped(context, _PROFILE_CONTEXT)
    profile |= _profile({k: v for k, v in traits.items() if k not in apart}, _legacy(settings))
    profile |= _device_fields(context) | _browser_fields(event)
    who: dict[str, Any] = {"$distinct_id": ids.distinct}
    if (ip := segment.ip(event)) is not None:
        who["$ip"] = ip
    if (when := _time(event)) is not None:
        who["$time"] = _millis(when)
    if context.get("active") is False:
        who["$ignore_time"] = True
    requests = [_engage(settings, {"$set": profile, **who})]
    for op, names in lists.items():
        if chosen := _chosen(traits, names, op, _legacy(settings)):
            requests.append(_engage(settings, {op: chosen, **who}))
    if not settings.simplified and ids.user and ids.anonymous and ids.user != ids.anonymous:
        merge = {"$distinct_ids": [ids.user, ids.anonymous], "token": settings.token}
        requests.append(_import(settings, {"event": "$merge", "properties": merge}))
    return requests


def _legacy(settings: MixpanelSettings) -> bool:
    return not settings.useNewMapping


def _chosen(traits: dict[str, Any], names: set[str], op: str, legacy: bool) -> dict[str, Any]:
    picked = {k: v for k, v in traits.items() if k in names}
    if op == "$set_once":
        return _profile(picked, legacy)
    if op == "$union":
        return {k: v if isinstance(v, list) else [v] for k, v in picked.items()}
    return picked


def _group(event: dict[str, Any], settings: MixpanelSettings, now: datetime) -> list[Request]:
    keys = [g.groupKey for g in settings.groupKeySettings if g.groupKey]
    if not keys:  # (filtered before it gets here: see `declines`; a preview gets here)
        raise Unsendable("group calls need groupKeySettings (the traits that name a group)")
    ids = _Ids(event, settings)
    traits = segment.traits(event)
    ip = segment.ip(event)
    requests = []
    for key in keys:
        found = (
            event.get("groupId") if key == "groupId" else traits.get(key, segment.dig(traits, key))
        )
        values = [v for v in (found if isinstance(found, list) else [found]) if _group_id(v)]
        if not values:
            continue
        membership: dict[str, Any] = {"$distinct_id": ids.distinct, "$set": {key: values}}
        if ip is not None:
            membership["$ip"] = ip
        requests.append(_engage(settings, membership))
        for value in values:
            group = {"$group_key": key, "$group_id": value, "$set": dict(traits)}
            requests.append(_groups(settings, group))
    if not requests:
        raise Unsendable(f"the event has none of the group keys {', '.join(keys)[:200]}")
    return requests


def declines(event: dict[str, Any], config: dict[str, Any]) -> str | None:
    """A group call without `groupKeySettings`: Mixpanel would not know which group it names."""
    rows = config.get("groupKeySettings")
    named = isinstance(rows, list) and any(
        isinstance(row, dict) and isinstance(row.get("groupKey"), str) and row["groupKey"]
        for row in rows
    )
    if event.get("type") != "group" or named:
        return None
    return "group calls need the setting `groupKeySettings` (the traits that name a group)"


def _group_id(value: Any) -> bool:
    return (isinstance(value, str) and bool(value)) or (
        isinstance(value, int | Raw) and not isinstance(value, bool)
    )


# ---------------------------------------------------------------------------------------------
# The plug-in

_CALLS: dict[str, Callable[[dict[str, Any], MixpanelSettings, datetime], list[Request]]] = {
    "track": _track,
    "page": _page,
    "screen": _page,
    "identify": _identify,
    "group": _group,
    "alias": _alias,
}


def map_event(event: dict[str, Any], settings: MixpanelSettings, now: datetime) -> list[Request]:
    call = for_call(event, _CALLS)
    return call(event, settings, now)


def batch_key(request: Request) -> str | None:
    """Requests combine when they go to the same endpoint with the same credentials."""
    auth = request.headers.get("Authorization", "")
    params = "&".join(f"{k}={v}" for k, v in sorted(request.params.items()))
    return f"{request.method} {request.url}?{params} {auth}"


def combine(requests: Sequence[Request]) -> Request:
    first = requests[0]
    items = [item for request in requests for item in (request.body or [])]
    return Request(first.method, first.url, first.headers, first.params, items)


def classify(status: int, body: bytes, count: int) -> Verdict | Sequence[Judgement]:
    answer = json_answer(body)
    if 200 <= status < 300:
        refused = _refusal(answer, body)
        return Verdict.DELIVERED if refused is None else [Judgement(Verdict.ABORT, refused)] * count
    if status == 413 or status == 429 or 500 <= status < 600:
        return Verdict.RETRY
    if status == 400 and isinstance(answer, dict) and "failed_records" in answer:
        return _partial(answer, count)
    if status == 400 and answer is None and b"failed_records" in body:
        # A partial answer too long to read whole: which events failed is unknown. Sending
        # again is safe (Mixpanel drops what it has by `$insert_id`) and tells them apart.
        return Verdict.RETRY
    reason = _error(answer)
    return Verdict.ABORT if reason is None else [Judgement(Verdict.ABORT, reason)] * count


def _error(answer: Any) -> str | None:
    if isinstance(answer, dict):
        error = answer.get("error")
        if isinstance(error, str) and error:
            return error[:_REASON]
    return None


def _refusal(answer: Any, body: bytes) -> str | None:
    """Why a 2xx answer refuses the updates (`/engage`, `/groups`), or None."""
    if isinstance(answer, dict):
        error = _error(answer)
        if error is not None:
            return error
        if answer.get("status") in (0, "0"):
            return "Mixpanel refused the update (status 0)"
    elif answer == 0 or body.strip() == b"0":
        return "Mixpanel refused the update (answered 0)"
    return None


def _partial(answer: dict[str, Any], count: int) -> Verdict | list[Judgement]:
    failed: dict[int, str] = {}
    records = answer.get("failed_records")
    for record in records if isinstance(records, list) else []:
        if not isinstance(record, dict):
            continue
        index = record.get("index")
        if isinstance(index, int) and not isinstance(index, bool) and 0 <= index < count:
            failed[index] = _record_reason(record)
    if not failed:  # nothing we can place: the whole request was refused
        return [Judgement(Verdict.ABORT, _error(answer) or "refused")] * count
    return [
        Judgement(Verdict.ABORT, failed[i]) if i in failed else Judgement(Verdict.DELIVERED)
        for i in range(count)
    ]


def _record_reason(record: dict[str, Any]) -> str:
    field = segment.text(record.get("field"))
    message = segment.text(record.get("message"))
    if message and field and field not in message:
        message = f"{field}: {message}"
    return (message or field or "refused by Mixpanel")[:_REASON]


MIXPANEL = DestinationType(
    name="mixpanel",
    title="Mixpanel",
    category="Analytics",
    description="Product analytics: events, user and group profiles.",
    settings=MixpanelSettings,
    map=map_event,
    declines=declines,
    secret_keys=("token", "apiSecret", "serviceAccountSecret", "gdprApiToken"),
    help={
        "groupKeySettings": "Rows {groupKey}: the traits (or groupId) that name a Mixpanel "
        "group, e.g. company. They enable group calls: while there is none, group calls are "
        "filtered (counted, not sent).",
    },
    batch_size=2000,
    batch_bytes=2_000_000,
    batch_key=batch_key,
    combine=combine,
    classify=classify,
)
