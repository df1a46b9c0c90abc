"""Exceptions whose message is meant for the user, printed as one line by the command-line tools."""


class MMGraphError(Exception):
    """Base class: something the user can fix (the message says what and how)."""


class DataError(MMGraphError):
    """A data set is missing, corrupt, or does not follow the graph conventions."""


class ConfigError(MMGraphError):
    """A configuration value is invalid or names something that does not exist."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name when the message is empty), for
    one-line errors that quote a library's exception."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
