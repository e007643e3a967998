"""Errors a user can cause and fix: shown as one line, never as a traceback."""

import os
from pathlib import Path


class UserError(Exception):
    """Bad input, bad params or a missing file; the message says what and where."""


class ConfigError(UserError):
    """A value in params.yaml is unknown, missing, of the wrong type or out of range."""


class DiskFullError(UserError):
    """An output could not be written for lack of space; nothing was left under its name."""

    def __init__(self, path: Path | str, code: int) -> None:
        super().__init__(
            f"{path}: cannot write it: {os.strerror(code)} (the disk is full or a file-size "
            "limit was reached); free space and run the stage again"
        )
