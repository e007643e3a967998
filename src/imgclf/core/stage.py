"""Shared entry point for stage scripts: logging set-up and one-line user errors."""

import logging
import os
import sys
from collections.abc import Callable

from imgclf.core.errors import DiskFullError, UserError

log = logging.getLogger("imgclf")


def run_stage(main: Callable[[], None]) -> None:
    """Run a stage's `main`, turning a `UserError` into one line on stderr and exit code 1."""
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s", stream=sys.stderr)
    try:
        main()
    except DiskFullError as error:
        # Exit at once: HDF5 may crash tidying up a file whose writes failed.
        log.error("error: %s", error)
        logging.shutdown()
        sys.stdout.flush()
        os._exit(1)
    except UserError as error:
        log.error("error: %s", error)
        sys.exit(1)
