"""Errors the project raises on purpose: each names what failed and where, so a user can act on
it from the Dagster UI or the CLI without reading a traceback."""


class KlineError(Exception):
    """Base for errors the project raises on purpose (bad input, unreachable services)."""


class ServiceUnavailableError(KlineError):
    """A database or cache could not be reached; the message names which one and its address
    (never a password)."""


class MissingTableError(KlineError):
    """A table the pipeline reads does not exist."""


class InvalidRunIdError(KlineError):
    """A run id is malformed or not registered."""


class CalendarRangeError(KlineError):
    """A date lies outside the range the exchange calendar knows."""
