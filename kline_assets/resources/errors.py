"""Errors that name what failed and where, so a user can act on them from the Dagster UI."""


class KlineError(Exception):
    """Base for errors the project raises on purpose (bad input, unreachable services)."""


class ServiceUnavailableError(KlineError):
    """A database or cache could not be reached; the message names which one and its address."""


class MissingTableError(KlineError):
    """A table the pipeline reads does not exist."""


class InvalidRunIdError(KlineError):
    """A run id is malformed or not registered."""
