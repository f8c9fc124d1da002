"""Destination settings forms, made from each plug-in's settings struct (msgspec), and the
config a submitted form stands for.

Strings are text inputs (password inputs for secrets, which are never sent to the browser: left
blank, the saved value stays), booleans switches, numbers number inputs, a fixed set of values
a select, lists of rows of text (headers, event and property mappings) a table of rows with one
input per column (`key:column`, repeated), and anything else structured JSON in a text area.
Every field's error is reported at once (FormErrors).
"""

import dataclasses
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import msgspec
from msgspec import inspect

from engine.destinations.base import DestinationType
from engine.destinations.secrets import MASK, mask
from engine.errors import ConfigError
from engine.specs import DeliveryPolicy

Kind = Literal["text", "secret", "bool", "number", "choice", "rows", "json"]
_FIELD_IN_MESSAGE = re.compile(r"\$\.(\w+)|\b(\w+)\b")


@dataclass(frozen=True)
class Field:
    key: str
    kind: Kind
    required: bool
    value: str  # as the input shows it ("" for a secret)
    choices: tuple[str, ...] = ()
    has_value: bool = False  # a secret that is set (shown as "saved")
    help: str = ""  # a line under the field: what the setting does
    columns: tuple[str, ...] = ()  # a "rows" field's keys, as its rows name them

    @property
    def rows(self) -> list[list[str]]:
        """A "rows" field's rows, one value per column (a row that is not one: none)."""
        try:
            rows = json.loads(self.value) if self.value.strip() else []
        except json.JSONDecodeError:
            return []
        if not isinstance(rows, list):
            return []
        return [[_text(r.get(c)) for c in self.columns] for r in rows if isinstance(r, dict)]


def _text(value: Any) -> str:
    return "" if value is None else value if isinstance(value, str) else json.dumps(value)


class FormError(ConfigError):
    """A value the form cannot turn into config; `entry` is the field."""


class FormErrors(ConfigError):
    """Every field the form refused, by key, each with why."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("settings", "; ".join(f"{k}: {m}" for k, m in errors.items()))
        self.errors = errors


@dataclass(frozen=True)
class Schema:
    """What a form is made from: a msgspec struct, the keys of its secrets, and where else in a
    config secrets hide."""

    struct: type[msgspec.Struct]
    secret_keys: tuple[str, ...] = ()
    secrets: Callable[[dict[str, Any]], list[str]] = lambda config: []
    help: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @classmethod
    def of(cls, plugin: DestinationType) -> "Schema":
        return cls(plugin.settings, plugin.secret_keys, plugin.secrets, plugin.help)


POLICY = Schema(DeliveryPolicy)  # a destination's delivery policy


def fields(
    plugin: DestinationType | Schema,
    config: dict[str, Any],
    submitted: dict[str, str] | None = None,
) -> list[Field]:
    """The form's fields, showing `config` — or what was `submitted`, when a form comes back
    with an error (secrets excepted); secrets elsewhere in it (a webhook's header values)
    appear masked."""
    schema = plugin if isinstance(plugin, Schema) else Schema.of(plugin)
    info = inspect.type_info(schema.struct)
    assert isinstance(info, inspect.StructType)
    hidden = schema.secrets(config)
    found = []
    for field in info.fields:
        kind = _kind(field.type, field.name in schema.secret_keys)
        current = config.get(field.name, _default(field))
        found.append(
            Field(
                key=field.name,
                kind=kind,
                required=field.required,
                value=(
                    ""
                    if kind == "secret"
                    else submitted.get(field.name, "")  # (an unticked box is not sent)
                    if submitted is not None
                    else mask(_shown(kind, current), hidden)
                ),
                choices=_choices(field.type),
                has_value=kind == "secret" and bool(current),
                help=schema.help.get(field.name, ""),
                columns=_columns(field.type),
            )
        )
    return found


def _unwrapped(t: inspect.Type) -> inspect.Type:
    """`X | None`: the X."""
    if isinstance(t, inspect.UnionType):
        others = [x for x in t.types if not isinstance(x, inspect.NoneType)]
        if any(isinstance(x, inspect.StrType) for x in others) and all(
            isinstance(x, inspect.StrType | inspect.IntType | inspect.FloatType) for x in others
        ):  # a number RudderStack writes as a string (a port, minutes): text, taken as it is
            others = [x for x in others if isinstance(x, inspect.StrType)]
        return others[0] if len(others) == 1 else t
    return t


def _kind(t: inspect.Type, secret: bool) -> Kind:
    t = _unwrapped(t)
    if isinstance(t, inspect.StrType):
        return "secret" if secret else "text"
    if isinstance(t, inspect.BoolType):
        return "bool"
    if isinstance(t, inspect.IntType | inspect.FloatType):
        return "number"
    if isinstance(t, inspect.LiteralType) and all(isinstance(v, str) for v in t.values):
        return "choice"
    return "rows" if _columns(t) else "json"


def _columns(t: inspect.Type) -> tuple[str, ...]:
    """A list of structs made of text alone: its keys; anything else: none."""
    t = _unwrapped(t)
    if not isinstance(t, inspect.ListType) or not isinstance(t.item_type, inspect.StructType):
        return ()
    fields = t.item_type.fields
    if not all(isinstance(f.type, inspect.StrType) for f in fields):
        return ()
    return tuple(f.encode_name for f in fields)


def _choices(t: inspect.Type) -> tuple[str, ...]:
    t = _unwrapped(t)
    return tuple(str(v) for v in t.values) if isinstance(t, inspect.LiteralType) else ()


def _default(field: inspect.Field) -> Any:
    if field.default is not msgspec.NODEFAULT:
        return field.default
    if field.default_factory is not msgspec.NODEFAULT:
        return field.default_factory()
    return None


def _shown(kind: Kind, value: Any) -> str:
    if value is None:
        return ""
    if kind in ("json", "rows"):
        return json.dumps(msgspec.to_builtins(value), indent=2, ensure_ascii=False)
    if kind == "bool":
        return "true" if value else ""
    return str(value)


def config(
    plugin: DestinationType | Schema, form: dict[str, str], saved: dict[str, Any]
) -> dict[str, Any]:
    """The config a submitted form stands for; blank optional fields are left out (their
    default applies), blank secrets keep their saved value, and saved keys the form does not
    show (event filters, keys of other RudderStack versions) are kept as they are."""
    shown = fields(plugin, saved)
    known = {field.key for field in shown}
    result: dict[str, Any] = {k: v for k, v in saved.items() if k not in known}
    errors: dict[str, str] = {}
    for field in shown:
        try:
            value = _value(field, form.get(field.key, ""), saved)
        except FormError as exc:
            errors[field.key] = exc.message
            continue
        if value is not None:
            result[field.key] = value
        elif field.required:
            errors[field.key] = "required: give a value"
    if errors:
        raise FormErrors(errors)
    return result


def _value(field: Field, raw: str, saved: dict[str, Any]) -> Any:
    """A field's config value; None when it is left out (blank: its default applies)."""
    if field.kind not in ("bool", "secret") and MASK in raw:
        if _parsed(raw) != _parsed(field.value):
            raise FormError(
                field.key,
                f"holds masked secrets ({MASK}): leave it as it is, or write it out in full",
            )
        return saved.get(field.key)  # unchanged: the saved secrets stay
    if field.kind == "bool":
        return raw in ("true", "on")
    if field.kind == "secret":
        return raw or saved.get(field.key) or None
    if not raw.strip():
        return None
    if field.kind == "number":
        return _number(field.key, raw)
    if field.kind in ("json", "rows"):
        try:
            return json.loads(raw)
        except json.JSONDecodeError as exc:
            raise FormError(field.key, f"not valid JSON ({exc.msg}, line {exc.lineno})") from None
    return raw.strip()


def _parsed(text: str) -> Any:
    """JSON text as values (so that spacing and key order do not matter), else the text."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text.strip()


def submitted(items: list[tuple[str, str]]) -> dict[str, str]:
    """A submitted form as `config` reads it: a "rows" field's inputs (`key:column`, one per
    row and column) become its JSON text, rows left blank left out."""
    found: dict[str, str] = {}
    columns: dict[str, dict[str, list[str]]] = {}
    for name, value in items:
        key, colon, column = name.partition(":")
        if colon:
            columns.setdefault(key, {}).setdefault(column, []).append(value)
        else:
            found[name] = value
    for key, by_column in columns.items():
        # (a column short of inputs, which only a hand-made request sends, cuts the rows)
        rows = [
            dict(zip(by_column, row, strict=True)) for row in zip(*by_column.values(), strict=False)
        ]
        kept = [row for row in rows if any(v.strip() for v in row.values())]
        found[key] = json.dumps(kept, ensure_ascii=False) if kept else ""
    return found


def _number(key: str, raw: str) -> int | float:
    try:
        return int(raw)
    except ValueError:
        try:
            return float(raw)
        except ValueError:
            raise FormError(key, f"{raw!r} is not a number") from None


def field_of(message: str, form: dict[str, str], keys: list[str]) -> str | None:
    """The settings key an error message is about: one it names, else the one whose submitted
    value it quotes."""
    for match in _FIELD_IN_MESSAGE.finditer(message):
        word = match[1] or match[2]
        if word in keys:
            return word
    quoted = [k for k in keys if form.get(k) and repr(form[k]) in message]
    return quoted[0] if len(quoted) == 1 else None
