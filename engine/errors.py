"""The one exception root of Sluice and the errors that carry data."""


class SluiceError(Exception):
    """Root of every error Sluice raises on purpose."""


class DatabaseError(SluiceError):
    """PostgreSQL failed a statement; the work was not committed. Raised in place of psycopg's
    errors (`engine.db` translates them, in one place), its message without row data."""


class DatabaseUnavailable(DatabaseError):
    """PostgreSQL could not be reached or failed mid-operation; the work was not committed."""


class Conflict(DatabaseError):
    """A row that would break a uniqueness rule (a name or key another row has)."""


class ValueRefused(DatabaseError):
    """PostgreSQL refused a value that was sent (a data exception, SQLSTATE class 22): the same
    statement will fail again, the rest of the work need not. `reason` is PostgreSQL's."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class SandboxUnavailable(SluiceError):
    """A transformation sandbox process could not be started: not the code's fault, so the
    work that needed it is tried again rather than failed."""


class SchemaError(SluiceError):
    """The database schema does not match what this version of Sluice expects."""


class ConfigError(SluiceError):
    """A workspace config entry is invalid; `entry` names it the way the user wrote it."""

    def __init__(self, entry: str, message: str) -> None:
        super().__init__(f"{entry}: {message}")
        self.entry = entry
        self.message = message


class NoSuchEntry(SluiceError):
    """What a request names does not exist (any more): a source, a user, a token…"""


class Rejected(SluiceError):
    """A request refused for what the client sent; the message tells them what to change."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequest(Rejected):
    """Malformed or incomplete: sending it again unchanged will not help."""


class Unauthenticated(Rejected):
    """No write key, or one no source has."""


class SourceDisabled(Rejected):
    """The write key belongs to a source that is switched off."""


class NoSuchEndpoint(Rejected):
    pass


class MethodNotAllowed(Rejected):
    pass


class TooLarge(Rejected):
    """A message or request over the configured size limits."""


class RateLimited(Rejected):
    """The source is over its events-per-second limit; retrying later will work."""


class AccountError(SluiceError):
    """A request about users or passwords that cannot be done; the message says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class SignInRefused(AccountError):
    """Wrong email or password (which of the two is not said), or too many failed tries:
    then `retry_after` says how many seconds to wait."""

    def __init__(self, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
