"""Exceptions whose message is meant for the user, printed as one line by the command-line tools."""


class MMGraphError(Exception):
    """Base class: something the user can fix (the message says what and how)."""


class DataError(MMGraphError):
    """A data set is missing, corrupt, or does not follow the graph conventions."""


class ConfigError(MMGraphError):
    """A configuration value is invalid or names something that does not exist."""
