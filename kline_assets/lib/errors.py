"""Errors the project raises on purpose: each names what failed and where, so a user can act on
it from the Dagster UI or the CLI without reading a traceback."""


class KlineError(Exception):
    """Base for errors the project raises on purpose (bad input, unreachable services)."""


class ServiceUnavailableError(KlineError):
    """A database or cache could not be reached; the message names which one and its address
    (never a password). `store` and `address` carry the same for callers that map it (the
    HTTP service answers 503 with them)."""

    def __init__(self, message: str, *, store: str | None = None,
                 address: str | None = None) -> None:
        super().__init__(message)
        self.store = store
        self.address = address


# The read API's name for it: one class, so every layer catches the same thing.
StoreUnavailable = ServiceUnavailableError


class MalformedDsnError(ServiceUnavailableError):
    """A store's DSN or URL that its driver must never see: it cannot be parsed, or names no
    usable address. Refused before any driver parses it, because drivers quote the offending
    text — a password with a space in it — in their own messages. The message names the
    variable and the DSN with every secret masked."""


class InvalidQueryError(KlineError, ValueError):
    """A read request names an unknown column, order or filter value, or a limit beyond the
    cap: the caller's mistake (HTTP 400), said in words."""


class NotFoundError(KlineError, LookupError):
    """A read request names a run or scope that has no data (HTTP 404)."""


class ServerVersionError(KlineError):
    """A ClickHouse server older than the features the project's SQL relies on
    (resources/clickhouse/features.py); the message names the minimum release."""


class MissingTableError(KlineError):
    """A table the pipeline reads does not exist."""


class InvalidRunIdError(KlineError):
    """A run id is malformed or not registered."""


class CalendarRangeError(KlineError):
    """A date lies outside the range the exchange calendar knows: before the package's first
    day, or in a year that neither the package nor the closures file covers. The message names
    the closures file and KLINE_XSHG_CLOSURES, where operators add a year."""


class ClosuresFileError(CalendarRangeError):
    """The closures file (KLINE_XSHG_CLOSURES) is missing or has a bad line; the message names
    the file and the line. A CalendarRangeError, because the days it should answer for cannot
    be answered: every caller that handles one (the tick consumer parks such ticks with the
    reason) handles this too."""
