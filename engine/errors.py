"""The one exception root of Sluice and the errors that carry data."""


class SluiceError(Exception):
    """Root of every error Sluice raises on purpose."""


class DatabaseUnavailable(SluiceError):
    """PostgreSQL could not be reached or failed mid-operation; the work was not committed."""


class SchemaError(SluiceError):
    """The database schema does not match what this version of Sluice expects."""


class ConfigError(SluiceError):
    """A workspace config entry is invalid; `entry` names it the way the user wrote it."""

    def __init__(self, entry: str, message: str) -> None:
        super().__init__(f"{entry}: {message}")
        self.entry = entry
        self.message = message


class Rejected(SluiceError):
    """An ingestion request refused with an HTTP status and a user-facing message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
