"""Every change to the workspace and the accounts goes through here: applied and recorded in
the audit log in the same transaction, so the log never claims a change that did not happen,
nor misses one that did. The pages, the config API and the CLI call these services; they differ
only in how they ask and how they answer. A service returns what changed; it raises
ConfigError, AccountError or NoSuchEntry (naming what is wrong) and changes nothing then.

Replays and discards of failed events (and of the archive) run batch by batch, each batch a
transaction of its own: a replay is recorded as it starts, with what it takes on; a discard
once done, with what it discarded.

Details recorded never hold secrets: names and settings keys, not values; the values before
and after a change go through `audit.difference`, which masks them.
"""

from datetime import datetime, timedelta
from typing import Any, Literal
from uuid import UUID

import msgspec

from engine.control import (
    accounts,
    alerts,
    audit,
    failures,
    sessions,
    settings,
    tokens,
    warehouses,
    workspace,
)
from engine.control.workspace import Action, ApplyReport
from engine.db import Connection
from engine.errors import AccountError, ConfigError, NoSuchEntry, SignInRefused
from engine.pipeline.topology import Target
from engine.specs import (
    ConnectionSpec,
    DeliveryPolicy,
    DestinationSpec,
    SourceSpec,
    TransformationSpec,
    WorkspaceSpec,
    new_write_key,
)
from engine.transformations.seam import Transformations

CLI = audit.CLI  # (named here too, for the command line that makes changes)
Switchable = Literal["source", "destination", "connection"]
Deletable = Literal["source", "destination", "transformation"]
FILTER_KEYS = ("eventFilteringOption", "whitelistedEvents", "blacklistedEvents")


class Changes:
    """Changes made by `actor` (a person's email, `token <name>`, `cli`) on `conn`, committed
    with the caller's transaction."""

    def __init__(self, conn: Connection, actor: str) -> None:
        self._conn = conn
        self.actor = actor

    async def record(
        self, action: str, target: str | None = None,
        change: tuple[audit.Values, audit.Values] | None = None, **detail: Any,
    ) -> None:  # fmt: skip
        """An audit entry (`change`: the values before and after, from `audit.difference`)."""
        await audit.record(self._conn, self.actor, action, target, change, **detail)

    # -- the workspace as a file (the config API, `sluice config`) ------------------------------

    async def apply(self, spec: WorkspaceSpec, *, action: str, target: str) -> ApplyReport:
        """Create or update the entries by name; the entries changed are recorded, with the
        values they had and have (secrets masked)."""
        before = await workspace.export(self._conn)
        report = await workspace.apply(self._conn, spec, self.actor)
        changed = [f"{kind} {name}: {done}" for kind, name, done in report.changes
                   if done != "unchanged"]  # fmt: skip
        if changed:
            after = await workspace.export(self._conn)
            await self.record(action, target, _difference(before, after), changes=changed)
        return report

    async def remove(self, kind: Deletable, name: str) -> None:
        """Delete an entry by name (the config API's)."""
        if not await workspace.delete(self._conn, kind, name):
            raise NoSuchEntry(f"there is no {kind} {name}")
        await self.record("api.delete", f"{kind} {name}")

    async def remove_connection(self, source: str, destination: str) -> None:
        """Delete a connection by its ends (the config API's)."""
        await self._disconnect(source, destination)
        await self.record("api.delete", f"connection {source} → {destination}")

    # -- entries one by one (the pages) ---------------------------------------------------------

    async def switch(self, kind: Switchable, entry_id: UUID, enabled: bool) -> str:
        """Switch a source, destination or connection on or off; its name."""
        name = await workspace.switch(self._conn, kind, entry_id, enabled)
        if name is None:
            raise NoSuchEntry(f"there is no such {kind} (any more)")
        change = audit.difference({"enabled": not enabled}, {"enabled": enabled})
        await self.record(f"{kind}.{'enable' if enabled else 'disable'}", name, change)
        return name

    async def delete(self, kind: Deletable, entry_id: UUID) -> str:
        """Delete a source, destination (with their connections) or transformation; its name."""
        spec = await workspace.entry(self._conn, kind, entry_id)
        if spec is None or not await workspace.delete(self._conn, kind, spec.name):
            raise NoSuchEntry(f"there is no such {kind} (any more)")
        await self.record(f"{kind}.delete", spec.name)
        return str(spec.name)

    async def disconnect(self, source: str, destination: str) -> None:
        await self._disconnect(source, destination)
        await self.record("connection.delete", f"{source} → {destination}")

    async def _disconnect(self, source: str, destination: str) -> None:
        """Delete the connection of a source to a destination; its jobs are still delivered."""
        if not await workspace.disconnect(self._conn, source, destination):
            raise NoSuchEntry(f"there is no connection {source} → {destination}")

    async def create_source(self, name: str) -> UUID:
        """A new source (a write key made for it); its id."""
        return await self._create("source", name, WorkspaceSpec(sources=[SourceSpec(name=name)]))

    async def rotate_key(self, source_id: UUID) -> None:
        """A new write key; the old one stops working at once (every gateway reloads)."""
        spec = await self._entry("source", source_id)
        new = msgspec.structs.replace(spec, write_key=new_write_key())
        await workspace.apply(self._conn, WorkspaceSpec(sources=[new]))
        await self.record("source.rotate_key", spec.name)

    async def create_destination(self, name: str, kind: str, config: dict[str, Any]) -> UUID:
        spec = WorkspaceSpec(destinations=[DestinationSpec(name=name, type=kind, config=config)])
        return await self._create("destination", name, spec, type=kind)

    async def configure(self, spec: DestinationSpec, config: dict[str, Any]) -> None:
        """A destination's settings; the keys that changed are recorded."""
        changed = msgspec.structs.replace(spec, config=config)
        await workspace.apply(self._conn, WorkspaceSpec(destinations=[changed]))
        keys = sorted(k for k in set(config) | set(spec.config)
                      if config.get(k) != spec.config.get(k))  # fmt: skip
        known = (Target.of(spec), Target.of(changed))
        change = audit.difference(
            spec.config, config, secrets=[s for t in known for s in t.secrets],
            secret_keys=known[0].plugin.secret_keys if known[0].plugin else (),
        )  # fmt: skip
        await self.record("destination.update", spec.name, change, settings=keys)

    async def set_delivery(self, spec: DestinationSpec, policy: DeliveryPolicy) -> None:
        changed = msgspec.structs.replace(spec, delivery=policy)
        await workspace.apply(self._conn, WorkspaceSpec(destinations=[changed]))
        before, after = msgspec.to_builtins(spec.delivery), msgspec.to_builtins(policy)
        await self.record("destination.delivery", spec.name, audit.difference(before, after))

    async def set_alert_rule(self, name: str, rule: alerts.Rule) -> None:
        """A destination's alert rule; its targets' URLs (which hold tokens) are masked in the
        audit log."""
        before = msgspec.to_builtins(await alerts.rule(self._conn, rule.destination_id))
        await alerts.save(self._conn, rule)
        change = audit.difference(before, msgspec.to_builtins(rule),
                                  secret_keys=("webhook_url", "slack_url"))  # fmt: skip
        await self.record("destination.alerts", name, change)

    async def set_smtp(self, server: settings.Smtp | None) -> None:
        """The SMTP server alerts are mailed through (None: none); the password masked in the
        audit log."""
        before = await settings.smtp(self._conn)
        await settings.set_smtp(self._conn, server)
        change = audit.difference(msgspec.to_builtins(before) if before else {},
                                  msgspec.to_builtins(server) if server else {},
                                  secret_keys=("password",))  # fmt: skip
        await self.record("settings.smtp", "SMTP server", change)

    async def connect(
        self, source: str, destination: str, enabled: bool, current: ConnectionSpec | None
    ) -> None:
        """Connect a source to a destination, or switch their connection (`current`) on or off;
        a connection's transformation stays."""
        link = ConnectionSpec(
            source=source, destination=destination, enabled=enabled,
            transformation=current.transformation if current else None,
        )  # fmt: skip
        await workspace.apply(self._conn, WorkspaceSpec(connections=[link]))
        action = "connection.create" if current is None else (
            "connection.enable" if enabled else "connection.disable"
        )  # fmt: skip
        await self.record(action, f"{source} → {destination}")

    async def shape(
        self,
        connection: ConnectionSpec,
        destination: DestinationSpec,
        transformation: str | None,
        event_filter: str,
        names: list[str],
    ) -> None:
        """A connection's transformation, and its destination's event filters (in RudderStack,
        filters belong to the destination: every source sending there gets them)."""
        config = {k: v for k, v in destination.config.items() if k not in FILTER_KEYS}
        config["eventFilteringOption"] = event_filter
        if event_filter != "disable":
            config[event_filter] = [{"eventName": n} for n in names]
        await workspace.apply(self._conn, WorkspaceSpec(
            destinations=[msgspec.structs.replace(destination, config=config)],
            connections=[msgspec.structs.replace(connection, transformation=transformation)],
        ))  # fmt: skip
        await self.record("connection.update", f"{connection.source} → {connection.destination}",
                          transformation=transformation, filter=event_filter,
                          events=len(names))  # fmt: skip

    async def create_transformation(self, name: str, code: str) -> UUID:
        spec = WorkspaceSpec(transformations=[TransformationSpec(name, code)])
        return await self._create("transformation", name, spec)

    async def save_code(self, transformation_id: UUID, code: str) -> Action:
        """Changed code makes a new version, which every connection using it runs next."""
        spec = await self._entry("transformation", transformation_id)
        report = await workspace.apply(
            self._conn,
            WorkspaceSpec(transformations=[TransformationSpec(spec.name, code)]),
            self.actor,
        )
        [(_, _, done)] = report.changes
        if done != "unchanged":
            await self.record("transformation.update", spec.name)
        return done

    async def _entry(self, kind: Literal["source", "transformation"], entry_id: UUID) -> Any:
        spec = await workspace.entry(self._conn, kind, entry_id)
        if spec is None:
            raise NoSuchEntry(f"there is no such {kind} (any more)")
        return spec

    async def _create(
        self, kind: Literal["source", "destination", "transformation"], name: str,
        spec: WorkspaceSpec, **detail: Any,
    ) -> UUID:  # fmt: skip
        """Apply a new entry, refused when one of that name exists; its id."""
        if not name:
            raise ConfigError(kind, "give it a name")
        if await workspace.id_of(self._conn, kind, name) is not None:
            raise ConfigError(f"{kind} {name}", f"there is a {kind} called {name!r} already")
        await workspace.apply(self._conn, spec, self.actor)
        made = await workspace.id_of(self._conn, kind, name)
        assert made is not None
        await self.record(f"{kind}.create", name, **detail)
        return made

    # -- people and API tokens ------------------------------------------------------------------

    async def create_user(
        self, email: str, role: str, password: str, *, must_change: bool = True
    ) -> accounts.User:
        made = await accounts.create(self._conn, email, role, password, must_change=must_change)
        await self.record("user.create", made.email, role=made.role)
        return made

    async def update_user(self, person: accounts.User, role: str, disabled: bool) -> None:
        """A user's role, or their account switched off (their sessions end)."""
        async with self._conn.transaction():
            changed = await accounts.update(self._conn, person, role=role, disabled=disabled)
            if changed.disabled:
                await sessions.end_others(self._conn, changed.id)
            change = audit.difference(
                {"role": person.role, "disabled": person.disabled},
                {"role": changed.role, "disabled": changed.disabled},
            )
            await self.record("user.update", changed.email, change)

    async def reset_password(self, person: accounts.User, password: str) -> None:
        """A new password chosen for someone (they choose their own at their next sign-in);
        their sessions end."""
        async with self._conn.transaction():
            await accounts.set_password(self._conn, person, password, must_change=True)
            await sessions.end_others(self._conn, person.id)
            await self.record("password.reset", person.email)

    async def change_password(
        self, user: accounts.User, current: str, password: str, client: str | None,
        keep: str | None,
    ) -> None:  # fmt: skip
        """Someone's own new password, once their `current` one is checked (SignInRefused: a
        wrong one counts towards the sign-in throttle, like any sign-in, when committed); their
        other sessions end (`keep` stays)."""
        await accounts.sign_in(self._conn, user.email, current, client)
        async with self._conn.transaction():
            await accounts.set_password(self._conn, user, password)
            await sessions.end_others(self._conn, user.id, keep=keep)
            await self.record("password.change", user.email)

    async def create_token(
        self, name: str, role: str, lifetime: timedelta | None
    ) -> tuple[str, tokens.Token]:
        """A config API token: its secret (shown once) and its record."""
        secret, made = await tokens.create(self._conn, name, role, self.actor, lifetime)
        expires = made.expires_at.isoformat() if made.expires_at else None
        await self.record("token.create", made.name, role=made.role, expires=expires)
        return secret, made

    async def revoke_token(self, token_id: UUID) -> None:
        name = await tokens.revoke(self._conn, token_id)
        if name is None:
            raise NoSuchEntry("no such token")
        await self.record("token.revoke", name)

    # -- failed events -------------------------------------------------------------------------

    async def replay(
        self, transformations: Transformations, selection: failures.Selection, **detail: Any
    ) -> failures.ReplayReport:
        """Send failed events again, batch by batch (an autocommit connection)."""
        until = await failures.now(self._conn)
        await self.replaying(selection, until, **detail)
        return await failures.replay(self._conn, transformations, selection, until)

    async def replaying(self, selection: failures.Selection, until: datetime, **detail: Any) -> int:
        """Record a replay about to start (a page runs it batch by batch); how many failed jobs
        it takes on."""
        total = await failures.count(self._conn, selection, until)
        await self.record("failed.replay", selection.destination or "all", jobs=total, **detail)
        return total

    async def replaying_archive(
        self, source: str, since: datetime, until: datetime, destination: str | None
    ) -> None:
        """Record a replay of the raw-event archive about to start."""
        await self.record("archive.replay", source, since=since.isoformat(),
                          until=until.isoformat(), destination=destination)  # fmt: skip

    async def sync_warehouse(self, name: str) -> UUID:
        """Ask for a load of what is staged for a warehouse now ("Sync now"); its id."""
        found = await warehouses.request_sync(self._conn, name)
        await self.record("warehouse.sync", name)
        return found

    async def retry_load(self, name: str, upload: int) -> None:
        """A warehouse's failed load tried again now."""
        await warehouses.retry(self._conn, name, upload)
        await self.record("warehouse.retry", name, load=upload)

    async def discard(
        self, selection: failures.Selection, until: datetime | None = None, **detail: Any
    ) -> int:
        """Give failed events up for good; how many (an autocommit connection)."""
        discarded = await failures.discard(self._conn, selection, until)
        await self.record("failed.discard", selection.destination or "all", jobs=discarded,
                          **detail)  # fmt: skip
        return discarded


def _difference(before: WorkspaceSpec, after: WorkspaceSpec) -> tuple[audit.Values, audit.Values]:
    """What an apply changed, value by value (`source web: rate_limit`, a destination's
    settings one by one), secrets masked: the values a destination keeps secret or from
    viewers, and its alert targets' URLs. (A transformation's code is not repeated here: its
    versions keep it.)"""
    (was, hidden), (now, more) = _values(before), _values(after)
    return audit.difference(was, now, secrets=hidden + more)


def _values(spec: WorkspaceSpec) -> tuple[audit.Values, list[str]]:
    """Every entry's values by `kind name: field`, and the secrets among them."""
    values: audit.Values = {}
    secrets: list[str] = []
    for d in spec.destinations:
        target, rule = Target.of(d), d.alerts
        secrets += [*target.secrets, *(text for text, _ in target.private)]
        secrets += [url for url in (rule.webhook_url, rule.slack_url) if url] if rule else []
        values |= {f"destination {d.name}: {k}": v for k, v in d.config.items()}
        values |= _fields(f"destination {d.name}", d, ("enabled", "delivery", "alerts"))
    for s in spec.sources:
        values |= _fields(f"source {s.name}", s, ("write_key", "enabled", "rate_limit"))
    for c in spec.connections:
        values |= _fields(f"connection {c.source} → {c.destination}", c,
                          ("enabled", "transformation"))  # fmt: skip
    return values, secrets


def _fields(entry: str, spec: Any, names: tuple[str, ...]) -> audit.Values:
    return {f"{entry}: {name}": msgspec.to_builtins(getattr(spec, name)) for name in names}


def actor(typed: str) -> str:
    """The audit log's name for whoever typed this email: the address, unless what was typed
    is no email address (people type their password into the wrong box)."""
    try:
        return accounts.email_address(typed)
    except AccountError:
        return "(not an email address)"


async def sign_in(
    conn: Connection, email: str, password: str, client: str | None, replacing: str | None
) -> str:
    """A new session (a token for its cookie) for whoever has this email and password; the
    session this browser had, `replacing`, ends. SignInRefused as `accounts.sign_in` says;
    the failure is counted and recorded (commit it: the throttle counts on it)."""
    try:
        user = await accounts.sign_in(conn, email, password, client)
    except SignInRefused as exc:
        if exc.retry_after is None:  # (throttled tries are not even checked: not news)
            await audit.record(conn, actor(email), "login.failed")
        raise
    if replacing:
        await sessions.end(conn, replacing)
    token = await sessions.start(conn, user)
    await audit.record(conn, user.email, "login")
    return token


async def sign_out(conn: Connection, user: accounts.User, session: str) -> None:
    await sessions.end(conn, session)
    await audit.record(conn, user.email, "logout")
