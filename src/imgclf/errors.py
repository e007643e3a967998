"""Errors a user can cause and fix: shown as one line, never as a traceback."""


class UserError(Exception):
    """Bad input, bad params or a missing file; the message says what and where."""


class ConfigError(UserError):
    """A value in params.yaml is unknown, missing, of the wrong type or out of range."""
