"""The workspace as written: sources, destinations, transformations and connections, as
`sluice config apply/export`, the config API and backups read and write them (YAML or JSON).

Each entry is a msgspec Struct, validated here — a destination's type, its required settings,
its delivery policy and alert conditions — with errors that name the entry at fault.
`engine.control.workspace` stores them; the pipeline resolves stored destinations into targets
(`engine.pipeline.topology`).
"""

import random
import re
import secrets
import string
import unicodedata
from datetime import datetime, timedelta
from typing import Any, Literal, TypeVar

import msgspec
import yaml

from engine import storable
from engine.destinations.base import BadSettings
from engine.destinations.catalog import TYPES
from engine.errors import ConfigError

_KEY_ALPHABET = string.ascii_letters + string.digits
# A write key is pasted into shell, JavaScript and Python snippets and config files: none of
# the characters that mean something there (quotes, `$`, `;`, backslashes, spaces…), so that no
# key can be anything there but itself. (Base64 and the keys of Segment and RudderStack pass.)
_WRITE_KEY = re.compile(r"[A-Za-z0-9_.~+/=@-]{8,128}")
_EMAIL = re.compile(r"[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+")  # an alert's recipient
MAX_RATE = 1_000_000_000  # events per second: a source's or a destination's rate limit
MAX_NAME = 200  # characters of an entry's name
MAX_RECIPIENTS = 20  # of an alert rule's email
_Spec = TypeVar("_Spec")


class DeliveryPolicy(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """How a destination is delivered to (its `delivery` in the workspace file): concurrency,
    rate limit, retry budget and backoff, and for file destinations when a file is uploaded."""

    concurrency: int = 32
    rate_limit: float | None = None  # events per second; None is unlimited
    retry_hours: float = 3.0
    min_attempts: int = 3
    timeout_seconds: float = 30.0
    min_backoff_seconds: float = 1.0
    max_backoff_seconds: float = 300.0
    # Batch destinations (files): a file is uploaded when it holds this many events or bytes
    # (uncompressed), or when its first event has waited this long.
    file_events: int = 10_000
    file_bytes: int = 32 * 1024 * 1024
    file_seconds: float = 30.0

    def __post_init__(self) -> None:
        # Written so that NaN (YAML's .nan) fails each test too.
        if not 1 <= self.concurrency <= 1000:
            raise ValueError("concurrency must be between 1 and 1000")
        if self.rate_limit is not None and not 0 < self.rate_limit <= MAX_RATE:
            raise ValueError(f"rate_limit must be above 0, up to {MAX_RATE:,} events per second")
        if not 0 <= self.retry_hours <= 24 * 30 or not 1 <= self.min_attempts <= 1000:
            raise ValueError("retry_hours must be 0 to 720 (30 days), min_attempts 1 to 1000")
        if not 0 < self.timeout_seconds <= 3600:
            raise ValueError("timeout_seconds must be above 0, up to 3600")
        if not 0 < self.min_backoff_seconds <= self.max_backoff_seconds <= 86400:
            raise ValueError(
                "backoff bounds must satisfy 0 < min_backoff ≤ max_backoff ≤ 86400 seconds"
            )
        if not (
            1 <= self.file_events <= 10_000_000
            and 1 <= self.file_bytes <= 5 * 1024**3
            and 0 < self.file_seconds <= 86400
        ):
            raise ValueError(
                "file_events must be 1 to 10,000,000, file_bytes 1 to 5 GiB and file_seconds"
                " above 0, up to 86400"
            )

    def exhausted(self, attempts: int, first_attempt: datetime, now: datetime) -> bool:
        """Whether a job that has just failed `attempts` times must be aborted."""
        spent = now - first_attempt >= timedelta(hours=self.retry_hours)
        return attempts >= self.min_attempts and spent

    def backoff(self, attempts: int, retry_after: float | None) -> float:
        """Seconds to wait before the next attempt: exponential with jitter, at least what the
        vendor asked for in Retry-After (capped at the longest backoff)."""
        ceiling = min(self.max_backoff_seconds, self.min_backoff_seconds * 2.0 ** (attempts - 1))
        delay = ceiling / 2 + random.uniform(0, ceiling / 2)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_backoff_seconds))
        return delay


class AlertConditions(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """When to alert about a destination (its `alerts` in the workspace file); the control
    plane stores them as its rule and the worker evaluates them."""

    failure_percent: float | None = None  # fire above this share of failures (of tries settled)
    window_minutes: int = 15  # ... over this window
    silence_minutes: int | None = None  # fire when nothing is delivered this long, though due
    webhook_url: str | None = None  # POSTed to when an alert fires and when it resolves
    slack_url: str | None = None  # a Slack incoming webhook, told the same
    email_to: list[str] = []  # mailed the same (through the SMTP server the Alerts page sets)

    def check(self) -> None:
        """ConfigError for a rule the database would refuse, said the way a user can fix."""
        if self.failure_percent is not None and not 0 < self.failure_percent <= 100:
            raise ConfigError("alerts", "the failure share is a percentage above 0, up to 100")
        if not 1 <= self.window_minutes <= 1440:
            raise ConfigError("alerts", "the window is 1 to 1440 minutes")
        if self.silence_minutes is not None and not 5 <= self.silence_minutes <= 10080:
            raise ConfigError("alerts", "the silence is 5 minutes to 7 days (10080 minutes)")
        if self.webhook_url and not self.webhook_url.startswith(("http://", "https://")):
            raise ConfigError("alerts", "the webhook is an http(s) URL")
        if self.slack_url and not self.slack_url.startswith(("http://", "https://")):
            raise ConfigError("alerts", "the Slack webhook is an http(s) URL")
        if len(self.email_to) > MAX_RECIPIENTS:
            raise ConfigError("alerts", f"at most {MAX_RECIPIENTS} addresses (use a list address)")
        if bad := [a for a in self.email_to if not _EMAIL.fullmatch(a)]:
            raise ConfigError("alerts", f"not an email address: {bad[0]!r}")


class SourceSpec(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    name: str
    write_key: str | None = None
    enabled: bool = True
    rate_limit: int | None = None


class DestinationSpec(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    name: str
    type: str
    config: dict[str, Any] = {}
    enabled: bool = True
    delivery: DeliveryPolicy = msgspec.field(default_factory=DeliveryPolicy)
    alerts: AlertConditions | None = None  # none: no alert rule


class TransformationSpec(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    code: str


class ConnectionSpec(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    source: str
    destination: str
    transformation: str | None = None
    enabled: bool = True


class WorkspaceSpec(msgspec.Struct, omit_defaults=True):
    sources: list[SourceSpec] = []
    destinations: list[DestinationSpec] = []
    transformations: list[TransformationSpec] = []
    connections: list[ConnectionSpec] = []


def new_write_key() -> str:
    return "".join(secrets.choice(_KEY_ALPHABET) for _ in range(32))


def parse(text: str) -> WorkspaceSpec:
    """Validate a YAML or JSON workspace file; errors name the entry at fault."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError("file", f"not valid YAML or JSON: {exc}") from exc
    except RecursionError:
        raise ConfigError("file", "nested too deeply to read") from None
    if data is None:
        return WorkspaceSpec()
    if not isinstance(data, dict):
        raise ConfigError("file", "the top level must be a mapping of sources, destinations, …")
    unknown = set(data) - set(WorkspaceSpec.__struct_fields__)
    if unknown:
        raise ConfigError("file", f"unknown section(s): {', '.join(sorted(map(str, unknown)))}")
    spec = WorkspaceSpec(
        sources=_entries(data, "sources", SourceSpec),
        destinations=_entries(data, "destinations", DestinationSpec),
        transformations=_entries(data, "transformations", TransformationSpec),
        connections=_entries(data, "connections", ConnectionSpec),
    )
    check(spec)
    return spec


def _entries(data: dict[str, Any], section: str, spec: type[_Spec]) -> list[_Spec]:
    raw = data.get(section) or []
    if not isinstance(raw, list):
        raise ConfigError(section, "must be a list")
    entries = []
    for i, item in enumerate(raw):
        label = _label(section, i, item)
        try:
            entries.append(msgspec.convert(item, spec))
        except msgspec.ValidationError as exc:
            raise ConfigError(label, str(exc)) from None
    return entries


def _label(section: str, index: int, item: Any) -> str:
    name = item.get("name") if isinstance(item, dict) else None
    if section == "connections" and isinstance(item, dict):
        name = f"{item.get('source')} → {item.get('destination')}"
    return f"{section}[{index}]" + (f" ({name})" if name else "")


def check(spec: WorkspaceSpec) -> None:
    for section in ("sources", "destinations", "transformations", "connections"):
        for i, entry in enumerate(getattr(spec, section)):
            if found := storable.fault(msgspec.to_builtins(entry), ""):
                raise ConfigError(f"{section}[{i}]", " ".join(found))
    for section in ("sources", "destinations", "transformations"):
        seen: set[str] = set()
        for i, entry in enumerate(getattr(spec, section)):
            label = f"{section}[{i}] ({entry.name})"
            if not entry.name.strip():
                raise ConfigError(f"{section}[{i}]", "name must not be empty")
            if any(unicodedata.category(c) == "Cc" for c in entry.name):
                raise ConfigError(label, "the name holds a control character (a line break?)")
            if len(entry.name) > MAX_NAME:
                raise ConfigError(f"{section}[{i}]", f"name is over {MAX_NAME} characters")
            if entry.name in seen:
                raise ConfigError(label, "the name is used twice in this file")
            seen.add(entry.name)
    for i, src in enumerate(spec.sources):
        label = f"sources[{i}] ({src.name})"
        if src.write_key is not None and not _WRITE_KEY.fullmatch(src.write_key):
            raise ConfigError(
                label,
                "write_key must be 8 to 128 letters, digits or - _ . ~ + / = @ (a key that was "
                "allowed before must be rotated)",
            )
        if src.rate_limit is not None and not 0 < src.rate_limit <= MAX_RATE:
            raise ConfigError(label, f"rate_limit must be 1 to {MAX_RATE:,} events per second")
    for i, dest in enumerate(spec.destinations):
        _check_destination(f"destinations[{i}] ({dest.name})", dest)
    for i, tr in enumerate(spec.transformations):
        if not tr.code.strip():
            raise ConfigError(f"transformations[{i}] ({tr.name})", "code must not be empty")


def _check_destination(label: str, dest: DestinationSpec) -> None:
    kind = TYPES.get(dest.type)
    if kind is None:
        raise ConfigError(
            label, f"unknown type {dest.type!r}; known types: {', '.join(sorted(TYPES))}"
        )
    missing = [key for key in kind.required if dest.config.get(key) in (None, "")]
    if missing:
        raise ConfigError(label, f"{kind.title} needs config {', '.join(missing)}")
    try:
        kind.parse_settings(dest.config)
    except BadSettings as exc:
        raise ConfigError(label, str(exc)) from None
    if dest.alerts is not None:
        try:
            dest.alerts.check()
        except ConfigError as exc:
            raise ConfigError(label, f"alerts: {exc.message}") from None


def dump(spec: WorkspaceSpec, fmt: Literal["yaml", "json"]) -> str:
    plain = msgspec.to_builtins(spec)
    if fmt == "json":
        return msgspec.json.format(msgspec.json.encode(plain)).decode() + "\n"
    return yaml.safe_dump(plain, sort_keys=False, allow_unicode=True)
