"""The rows an event becomes in a warehouse, exactly as RudderStack's transformer makes them:
which tables, which columns with which types, which values (the contract:
`shared/docs/warehouse.md` §3 to §10, and `shared/conformance/warehouse.json`).

The event's sections are flattened into columns (`context_*` and the user's own keys), then
RudderStack's columns (`id`, `user_id`, `received_at`, …) are written over them. Each call type
has its table (`tracks`, `identifies`, `pages`, …); a track event also gets a table of its own,
an identify one also updates `users`, and on BigQuery and Snowflake identity resolution adds a
`rudder_identity_merge_rules` row.
"""

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec

from engine.warehouses import javascript, names, timestamps
from engine.warehouses.errors import EventRefused
from engine.warehouses.javascript import is_blank, truthy
from engine.warehouses.names import Provider

MAX_COLUMNS = 200  # per row, RudderStack's `WH_MAX_COLUMNS_IN_EVENT`
RS_STRING_LIMIT = 512  # longer strings are `text` (varchar(max)) on Redshift
_PLAIN_INTEGERS = 1e21  # JavaScript writes whole numbers below this without an exponent
_CODES: dict[Provider, str] = {
    "POSTGRES": "postgres",
    "RS": "rs",
    "SNOWFLAKE": "snowflake",
    "BQ": "bq",
    "CLICKHOUSE": "clickhouse",
}
_FULL_EVENT_TYPE = {"POSTGRES": "json", "RS": "text", "SNOWFLAKE": "json", "BQ": "string",
                    "CLICKHOUSE": "string"}  # fmt: skip
_JSON_PATH_TYPES = ("track.", "identify.", "page.", "screen.", "alias.", "group.", "extract.")
_RECORD_ID_SOURCES = ("cloud", "singer-protocol")
_MISSING_RECORD_ID = "recordId cannot be empty for cloud sources events"


class Row(msgspec.Struct, omit_defaults=True):
    """One row for one table: its columns with their types (`int`, `float`, `boolean`,
    `string`, `datetime`, `json`, `text`, `array(T)`) and its values. Identity merge rules
    are marked: they have no load-time columns and are never deduplicated."""

    table: str
    columns: dict[str, str]
    data: dict[str, Any]
    is_merge_rule: bool = False


class Options(msgspec.Struct, omit_defaults=True):
    """What shapes the rows besides the event: the destination's settings, RudderStack's
    request query (`whIDResolve`, `chEnableArraySupport`) and the event's metadata
    (`sourceCategory`, `receivedAt`, source and destination ids)."""

    destination_config: dict[str, Any] = {}
    request_query: dict[str, Any] = {}
    metadata: dict[str, Any] | None = None


@dataclass
class _Call:
    """One event's settings, read once."""

    provider: Provider
    kind: str
    message: dict[str, Any]
    config: dict[str, Any]
    integration: dict[str, Any]
    divide_numbers: bool
    blendo: bool
    skip_keywords: bool
    category: Any
    arrays: bool
    store_event: bool
    id_resolve: bool
    typed_paths: dict[str, int] = field(default_factory=dict)
    legacy_paths: dict[str, int] = field(default_factory=dict)

    @property
    def code(self) -> str:
        return _CODES[self.provider]

    def safe(self, name: str) -> str:
        return names.safe(name, self.provider, skip_keywords=self.skip_keywords)

    def column(self, key: str) -> str:
        """A user's key as a column name ("" when nothing is left of it)."""
        return names.column_name(key, self.provider, underscore_divide_numbers=self.divide_numbers,
                                 blendo=self.blendo)  # fmt: skip


def rows(event: Any, provider: Provider, options: Options) -> list[Row]:
    """The rows `event` (decoded JSON) becomes; `EventRefused` when it breaks a rule."""
    if not isinstance(event, dict):
        raise EventRefused("the event must be a JSON object")
    call = _prepare(javascript.from_json(event), provider, options)
    builder = _BUILDERS.get(call.kind)
    if builder is None:
        kind = event.get("type")
        shown = (
            "undefined"
            if kind is None
            else kind
            if isinstance(kind, str)
            else javascript.stringify(kind)
        )
        raise EventRefused(f'Unknown event type: "{shown}"')
    return builder(call)


def _prepare(message: dict[str, Any], provider: Provider, options: Options) -> _Call:
    """RudderStack's pre-processing: the event's own options, a message id, the source's and
    destination's ids in its context, a valid `receivedAt`."""
    config = options.destination_config
    integrations = message.get("integrations")
    integration = integrations.get(provider) if isinstance(integrations, dict) else None
    own = integration.get("options") if isinstance(integration, dict) else None
    own = own if isinstance(own, dict) else {}
    kind = message.get("type")
    metadata = options.metadata
    call = _Call(
        provider=provider,
        kind=kind.lower() if isinstance(kind, str) else "",
        message=message,
        config=config,
        integration=own,
        divide_numbers=truthy(config.get("underscoreDivideNumbers")),
        blendo=truthy(own.get("useBlendoCasing")),
        skip_keywords=truthy(own.get("skipReservedKeywordsEscaping")),
        category=metadata.get("sourceCategory") if metadata else None,
        arrays=provider == "CLICKHOUSE"
        and (options.request_query.get("chEnableArraySupport") or "false") != "false",
        store_event=config.get("storeFullEvent") is True,
        id_resolve=provider in ("BQ", "SNOWFLAKE")
        and options.request_query.get("whIDResolve") == "true",
    )
    _json_paths(call, config, integrations)
    if is_blank(message.get("messageId")):
        message["messageId"] = f"auto-{uuid.uuid4()}"
    if metadata is not None:
        _add_source_and_destination(message, metadata)
    received = message.get("receivedAt")
    if is_blank(received) or _timestamp(received) is None:
        fallback = metadata.get("receivedAt") if metadata else None
        message["receivedAt"] = fallback if truthy(fallback) else _now()
    return call


def _json_paths(call: _Call, config: dict[str, Any], integrations: Any) -> None:
    """The columns kept whole as JSON text: paths from the event's own options, from the
    `DATA_WAREHOUSE` options (not on ClickHouse) and from the destination's `jsonPaths`."""
    paths = call.integration.get("jsonPaths")
    paths = paths if isinstance(paths, list) else []
    shared = javascript.get(integrations, "DATA_WAREHOUSE.options.jsonPaths")
    if truthy(shared) and call.provider != "CLICKHOUSE":
        # RudderStack writes the merged list back into the event's options (so it shows in
        # `rudder_event`) and then appends the destination's paths to that same list.
        paths = [*(shared if isinstance(shared, list) else []), *paths]
        call.integration["jsonPaths"] = paths
    configured = config.get("jsonPaths") if call.provider != "CLICKHOUSE" else None
    if isinstance(configured, str) and configured:
        paths.extend(configured.split(","))
    for path in paths:
        if not isinstance(path, str) or not javascript.trim(path):
            continue
        parts = javascript.trim(path).split(".")
        found = (
            call.typed_paths
            if path.lstrip(javascript.SPACE).startswith(_JSON_PATH_TYPES)
            else call.legacy_paths
        )
        found["_".join(parts)] = len(parts) - 1


def _add_source_and_destination(message: dict[str, Any], metadata: dict[str, Any]) -> None:
    context = message.get("context")
    if not truthy(context):
        context = message["context"] = {}
    if not isinstance(context, dict):
        return  # a string or an array keeps nothing set on it
    for key in ("sourceId", "sourceType", "destinationId", "destinationType"):
        if key in metadata:
            context[key] = metadata[key]
        else:
            context.pop(key, None)  # set to undefined: JSON leaves it out


def _timestamp(value: Any) -> str | None:
    return timestamps.parse(value) if isinstance(value, str) else None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# ---- types ---------------------------------------------------------------------------------


def _typed(call: _Call, key: str, value: Any, json_key: bool = False) -> tuple[str, Any]:
    """A value's column type, and the value as the column holds it: a time as UTC ISO, a
    whole float (`1.0`) as an integer, which JavaScript does not tell apart."""
    if isinstance(value, str):
        instant = timestamps.parse(value)
        if instant is not None:
            return "datetime", instant
        return _override(call, key, value, json_key), value
    kind = _type(call, key, value, json_key)
    if kind == "int" and isinstance(value, float) and abs(value) < _PLAIN_INTEGERS:
        value = int(value)
    return kind, value


def _type(call: _Call | None, key: str, value: Any, json_key: bool = False) -> str:
    """A value's column type (`getDataType`); `call` None is the bare rules with no warehouse's
    overrides."""
    if isinstance(value, bool):
        return "boolean"
    if javascript.is_number(value):
        return "int" if javascript.is_integer(value) else "float"
    if _timestamp(value) is not None:
        return "datetime"
    return "string" if call is None else _override(call, key, value, json_key)


def _override(call: _Call, key: str, value: Any, json_key: bool) -> str:
    """The warehouse's own rule for a value that is no number, boolean or time."""
    if call.provider in ("POSTGRES", "SNOWFLAKE"):
        return "json" if json_key or key == "violationErrors" else "string"
    if call.provider == "RS":
        if json_key:
            return "json"
        if truthy(value):
            text = javascript.stringify(value) if isinstance(value, list) else value
            if isinstance(text, str) and javascript.length(text) > RS_STRING_LIMIT:
                return "text"
        return "string"
    if call.provider == "CLICKHOUSE" and call.arrays and isinstance(value, list) and value:
        return f"array({_element_type(value)})"
    return "string"


def _element_type(values: list[Any]) -> str:
    """The one type of an array's elements on ClickHouse: ints among floats are floats, any
    other mix is strings."""
    found = _type(None, "", values[0])
    for value in values[1:]:
        other = _type(None, "", value)
        if found == other or (found == "float" and other == "int"):
            continue
        if found == "string":
            break
        found = "float" if (found == "int" and other == "float") else "string"
    return found


# ---- one table's row -----------------------------------------------------------------------


class _Columns:
    """A row being built: values and the types they were given, by column name."""

    def __init__(self, call: _Call, data: dict[str, Any] | None = None) -> None:
        self.call = call
        self.data: dict[str, Any] = dict(data or {})
        self.types: dict[str, str] = {}

    def add(self, key: str, value: Any, json_key: bool = False) -> None:
        """A user's value under its raw (joined) key; dropped when the key leaves no name or
        names one of RudderStack's columns."""
        kind, value = _typed(self.call, key, value, json_key)
        name = self.call.column(key)
        if name == "":
            return
        name = self.call.safe(name)
        if name.lower() in _RESERVED.get(self.call.kind, ()):
            return
        self.data[name] = value
        self.types[name] = kind

    def flatten(
        self, section: Any, path: str, depth: int, prefix: str = "", level: int = 0
    ) -> None:
        """A section's keys as columns, objects walked (`path`/`depth` name the node for typed
        JSON paths, `prefix`/`level` for the columns and legacy ones)."""
        if not isinstance(section, dict):
            return
        if (path.endswith("context_traits_") or path == "group_traits_") and _spread(section):
            if prefix == "context_traits_":
                self.add(prefix, "".join(section[key] for key in sorted(section, key=int)))
            return
        call = self.call
        cloud = call.category == "cloud"
        for key, value in section.items():
            legacy = call.kind == "track" and call.legacy_paths.get(prefix + key) == level
            if legacy or call.typed_paths.get(path + key) == depth:
                if not is_blank(value):
                    self.add(prefix + key, javascript.stringify(value), json_key=True)
            elif isinstance(value, dict) and (not cloud or level < 3):
                self.flatten(value, f"{path}{key}_", depth + 1, f"{prefix}{key}_", level + 1)
            elif not is_blank(value):
                # Cloud sources' objects deeper than three levels are kept as JSON text.
                shown = javascript.stringify(value) if isinstance(value, dict) else value
                self.add(prefix + key, shown)

    def map(self, rules: "_Rules") -> None:
        """RudderStack's own columns, over the user's: a value that is blank or not a scalar
        removes the column instead."""
        for key, source in rules:
            value = (
                source(self.call) if callable(source) else javascript.get(self.call.message, source)
            )
            name = self.call.safe(key)
            if value is None or isinstance(value, dict | list) or is_blank(value):
                self.data.pop(name, None)
                self.types.pop(name, None)
                continue
            self.types[name], self.data[name] = _typed(self.call, key, value)

    def store_event(self) -> None:
        if self.call.store_event:
            name = self.call.safe("rudder_event")
            self.data[name] = javascript.stringify(self.call.message)
            self.types[name] = _FULL_EVENT_TYPE[self.call.provider]


def _spread(section: dict[str, Any]) -> bool:
    """A string spread into an object (`{"0": "f", "1": "o"}`): digit keys from 0 or 1 with no
    gap, each holding one character."""
    if not section:
        return False
    numbers = []
    for key, value in section.items():
        if not key.isascii() or not key.isdigit():
            return False
        if not isinstance(value, str) or javascript.length(value) != 1:
            return False
        numbers.append(int(key))
    first, last = min(numbers), max(numbers)
    keys = set(section)
    for number in range(first, last + 1):
        if str(number) not in keys:
            return False
    return first in (0, 1) and last - first + 1 == len(section)


def _row(call: _Call, table: str, data: dict[str, Any], types: dict[str, str]) -> Row:
    """The row with its columns: the load time's (`uuid_ts`, and `loaded_at` on BigQuery)
    first, then one per value."""
    columns = {"UUID_TS" if call.provider == "SNOWFLAKE" else "uuid_ts": "datetime"}
    if call.provider == "BQ":
        columns["loaded_at"] = "datetime"
    for name, value in data.items():
        columns[name] = types.get(name) or _type(call, name, value)
    sources = data.get("channel") == "sources" or data.get("CHANNEL") == "sources"
    if len(columns) > MAX_COLUMNS and not sources:
        raise EventRefused(f"{call.code} transformer: Too many columns outputted from the event")
    return Row(table, columns, data)


def _event_table(call: _Call, event: str) -> str:
    """A track or extract event's own table: its name as a column name would be, and never one
    of RudderStack's tables."""
    table = names.safe(call.column(_name_text(event)), call.provider,
                       skip_keywords=call.skip_keywords, what="Table")  # fmt: skip
    lowered = table.lower()
    if lowered in ("users", "identifies") or (lowered in _RUDDER_TABLES and not call.skip_keywords):
        return f"_{table}"
    return table


def _event_value(call: _Call, event: Any) -> str:
    """The `event` column: the event's name in column casing (blendo: trimmed, lower case)."""
    text = _name_text(event)
    if call.blendo:
        return javascript.trim(text).lower()
    return names.table_name(text, underscore_divide_numbers=call.divide_numbers)


def _name_text(event: Any) -> str:
    if event is None:
        return ""
    if not isinstance(event, str):
        raise EventRefused(f"the event name must be a string, not {javascript.stringify(event)}")
    return event


_RUDDER_TABLES = ("tracks", "pages", "screens", "aliases", "groups", "accounts")


# ---- RudderStack's columns -------------------------------------------------------------------

_Rules = list[tuple[str, str | Callable[[_Call], Any]]]


def _first(*paths: str) -> Callable[[_Call], Any]:
    """The first non-blank of several places (the last one's value when all are blank)."""

    def value(call: _Call) -> Any:
        found = None
        for path in paths:
            found = javascript.get(call.message, path)
            if not is_blank(found):
                break
        return found

    return value


def _record_id(call: _Call, fallback: Any = None) -> Any:
    """A cloud source's record id when it says which version of the source sent it."""
    if truthy(javascript.get(call.message, "context.sources.version")):
        record = call.message.get("recordId")
        if record is None or isinstance(record, dict | list) or is_blank(record):
            raise EventRefused(_MISSING_RECORD_ID, "PlatformError")
        return record
    return fallback if truthy(fallback) else None


def _from_cloud(call: _Call) -> bool:
    return call.message.get("type") == "track" and call.category in _RECORD_ID_SOURCES


def _event_row_id(call: _Call) -> Any:
    message_id = call.message.get("messageId")
    return _record_id(call, message_id) if _from_cloud(call) else message_id


def _tracks_record_id(call: _Call) -> Any:
    return javascript.to_string(_record_id(call)) if _from_cloud(call) else None


def _extract_id(call: _Call) -> Any:
    record = call.message.get("recordId")
    if record is None or isinstance(record, dict | list) or is_blank(record):
        raise EventRefused(_MISSING_RECORD_ID)
    return record


_IPS: _Rules = [
    ("context_ip", _first("context.ip", "request_ip")),
    ("context_request_ip", "request_ip"),
    ("context_passed_ip", "context.ip"),
]
_DEFAULT: _Rules = [
    ("id", "messageId"),
    ("anonymous_id", "anonymousId"),
    ("user_id", "userId"),
    ("sent_at", "sentAt"),
    ("timestamp", "timestamp"),
    ("received_at", "receivedAt"),
    ("original_timestamp", "originalTimestamp"),
    ("channel", "channel"),
    *_IPS,
]
_USERS: _Rules = [
    *_IPS,
    ("sent_at", "sentAt"),
    ("timestamp", "timestamp"),
    ("original_timestamp", "originalTimestamp"),
]
_EVENT_TEXT: _Rules = [("event_text", "event")]
_TRACKS: _Rules = [("record_id", _tracks_record_id)]
_EVENT_ROW: _Rules = [("id", _event_row_id)]
_NAME: _Rules = [("name", _first("name", "properties.name"))]
_GROUP: _Rules = [("group_id", "groupId")]
_ALIAS: _Rules = [("previous_id", "previousId")]
_EXTRACT: _Rules = [("id", _extract_id), ("received_at", "receivedAt"), ("event", "event")]

# A user's key that lands on one of these is dropped (so is `constructor`, which RudderStack's
# lookup finds on every JavaScript object).
_DEFAULT_NAMES = frozenset(key for key, _ in _DEFAULT) | {"constructor", "__proto__"}
_RESERVED: dict[str, frozenset[str]] = {
    "track": _DEFAULT_NAMES | {"event_text", "record_id"},
    "identify": _DEFAULT_NAMES,
    "page": _DEFAULT_NAMES | {"name"},
    "screen": _DEFAULT_NAMES | {"name"},
    "group": _DEFAULT_NAMES | {"group_id"},
    "alias": _DEFAULT_NAMES | {"previous_id"},
    "extract": frozenset({"id", "received_at", "event", "constructor", "__proto__"}),
}


# ---- rows per call type ----------------------------------------------------------------------


def _context(call: _Call, columns: _Columns) -> None:
    columns.flatten(call.message.get("context"), f"{call.kind}_context_", 2, "context_")


def _section(call: _Call, columns: _Columns, key: str) -> None:
    columns.flatten(call.message.get(key), f"{call.kind}_{key}_", 2)


def _track(call: _Call) -> list[Row]:
    common = _Columns(call)
    _context(call, common)
    common.map(_EVENT_TEXT)
    common.map(_DEFAULT)
    event = call.safe("event")
    common.data[event] = _event_value(call, common.data.get(call.safe("event_text")))
    common.types[event] = "string"
    found = []
    if not _skips(call, "skipTracksTable"):
        tracks = _Columns(call, common.data)
        tracks.map(_TRACKS)
        tracks.store_event()
        found.append(_row(call, call.safe("tracks"), tracks.data, tracks.types | common.types))
    if javascript.trim(javascript.to_string(common.data[event])) == "":
        return found
    own = _Columns(call)
    _section(call, own, "properties")
    _section(call, own, "userProperties")
    common.map(_EVENT_ROW)
    data = own.data | common.data
    found.append(_row(call, _event_table(call, data[event]), data, own.types | common.types))
    return found + _merge_rules(call)


def _extract(call: _Call) -> list[Row]:
    common = _Columns(call)
    _context(call, common)
    event = call.safe("event")
    common.data[event] = _event_value(call, call.message.get(event))
    common.types[event] = "string"
    own = _Columns(call)
    _section(call, own, "properties")
    common.map(_EXTRACT)
    if javascript.trim(javascript.to_string(common.data.get(event))) == "":
        raise EventRefused(
            "cannot create event table with empty event name, event name is missing in the payload"
        )
    data = own.data | common.data
    return [_row(call, _event_table(call, data[event]), data, own.types | common.types)]


def _identify(call: _Call) -> list[Row]:
    common = _Columns(call)
    _section(call, common, "userProperties")
    if truthy(call.config.get("allowUsersContextTraits")):
        context = call.message.get("context")
        traits = context.get("traits") if isinstance(context, dict) else None
        common.flatten(traits, "identify_context_traits_", 3)
    _section(call, common, "traits")
    _context(call, common)
    identifies = _Columns(call, common.data)
    identifies.map(_DEFAULT)
    identifies.store_event()
    found = [_row(call, call.safe("identifies"), identifies.data, common.types | identifies.types)]
    found += _merge_rules(call)
    user_id = call.message.get("userId")
    if javascript.trim(javascript.to_string(user_id)) == "" or _skips(call, "skipUsersTable"):
        return found
    users = _Columns(call, common.data)
    users.map(_USERS)
    kind, user_id = _typed(call, call.safe("id"), user_id)
    users.data[call.safe("id")] = user_id if kind != "datetime" else call.message.get("userId")
    users.types[call.safe("id")] = kind
    received = call.message.get("receivedAt")
    users.data[call.safe("received_at")] = _received_at(received)
    users.types[call.safe("received_at")] = "datetime"
    found.append(_row(call, call.safe("users"), users.data, common.types | users.types))
    return found


def _received_at(value: Any) -> str:
    instant = _timestamp(value)
    if instant is None:
        raise EventRefused(f"receivedAt {javascript.stringify(value)} is not a time")
    return instant


def _page_or_screen(call: _Call) -> list[Row]:
    columns = _Columns(call)
    _section(call, columns, "properties")
    _context(call, columns)
    columns.map(_DEFAULT)
    columns.store_event()
    columns.map(_NAME)
    table = call.safe(f"{call.kind}s")
    return [_row(call, table, columns.data, columns.types), *_merge_rules(call)]


def _traits_table(rules: _Rules, table: str) -> Callable[[_Call], list[Row]]:
    """Groups and aliases: traits, context, RudderStack's columns, then their own."""

    def build(call: _Call) -> list[Row]:
        columns = _Columns(call)
        _section(call, columns, "traits")
        _context(call, columns)
        columns.map(_DEFAULT)
        columns.map(rules)
        columns.store_event()
        return [_row(call, call.safe(table), columns.data, columns.types), *_merge_rules(call)]

    return build


def _skips(call: _Call, flag: str) -> bool:
    return truthy(call.config.get(flag)) or truthy(call.integration.get(flag))


# ---- identity resolution -------------------------------------------------------------------


def _merge_rules(call: _Call) -> list[Row]:
    """The pair of ids an event says belong to one person, for BigQuery's and Snowflake's
    identity resolution (`whIDResolve`)."""
    if not call.id_resolve:
        return []
    message = call.message
    if call.kind == "merge":
        first, second = _merge_properties(message.get("mergeProperties"))
    elif call.kind == "alias":
        first, second = ("user_id", message.get("userId")), ("user_id", message.get("previousId"))
    elif is_blank(message.get("anonymousId")):
        first, second = ("user_id", message.get("userId")), ("", None)
    else:
        first, second = (
            ("anonymous_id", message.get("anonymousId")),
            ("user_id", message.get("userId")),
        )
    if is_blank(first[1]):
        return []
    data: dict[str, Any] = {}
    for number, (kind, value) in enumerate((first, second), start=1):
        if number == 1 or not is_blank(value):
            data[call.safe(f"merge_property_{number}_type")] = kind
            data[call.safe(f"merge_property_{number}_value")] = javascript.string(value)
    table = call.safe("rudder_identity_merge_rules")
    return [Row(table, dict.fromkeys(data, "string"), data, is_merge_rule=True)]


def _merge_properties(found: Any) -> tuple[tuple[Any, Any], tuple[Any, Any]]:
    if not isinstance(found, list | dict) or not all(_has(found, index) for index in (0, 1)):
        raise EventRefused("either or both identifiers missing in mergeProperties")
    pairs = []
    for index in (0, 1):
        item = found[index] if isinstance(found, list) else found[str(index)]
        kind = item.get("type") if isinstance(item, dict) else None
        value = item.get("value") if isinstance(item, dict) else None
        if is_blank(kind) or is_blank(value):
            raise EventRefused("mergeProperties contains null values for expected inputs")
        pairs.append((kind, value))
    return pairs[0], pairs[1]


def _has(found: list[Any] | dict[str, Any], index: int) -> bool:
    return index < len(found) if isinstance(found, list) else str(index) in found


_BUILDERS: dict[str, Callable[[_Call], list[Row]]] = {
    "track": _track,
    "identify": _identify,
    "page": _page_or_screen,
    "screen": _page_or_screen,
    "group": _traits_table(_GROUP, "groups"),
    "alias": _traits_table(_ALIAS, "aliases"),
    "extract": _extract,
    "merge": _merge_rules,
}
