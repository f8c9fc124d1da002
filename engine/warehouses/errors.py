"""Why an event cannot become warehouse rows."""

from engine.errors import SluiceError


class EventRefused(SluiceError):
    """The event breaks a rule of the warehouse schema; `kind` is the class of RudderStack's
    error for the same event (`InstrumentationError`: the event is wrong; `PlatformError`: a
    cloud source sent it wrong; `TransformationError`: no name is left for a table or column)."""

    def __init__(self, message: str, kind: str = "InstrumentationError") -> None:
        super().__init__(message)
        self.kind = kind
