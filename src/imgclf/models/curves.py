"""Training curves: one CSV file per training run, a row per epoch.

Columns `epoch` (1 for the first), `accuracy`, `loss` (train) and `val_accuracy`,
`val_loss`: train and val side by side, so one DVC plot draws both on a chart. While a run
trains, the file is rewritten whole after each epoch (it is small), atomically; a resumed run
first drops the rows of epochs it will train again.
"""

from pathlib import Path
from typing import Any

import pandas as pd

from imgclf.core.errors import UserError
from imgclf.core.fileio import read_csv, write_csv

COLUMNS = ("epoch", "accuracy", "loss", "val_accuracy", "val_loss")


def empty_curves() -> pd.DataFrame:
    return pd.DataFrame({column: pd.Series(dtype=float) for column in COLUMNS})


def read_curves(path: Path | str) -> pd.DataFrame:
    """A curves file, numbers parsed and checked; one line naming the file if it is not."""
    frame = read_csv(path, COLUMNS)
    try:
        values = frame[list(COLUMNS)].astype(float)
    except ValueError:
        raise UserError(f"{path}: curves must be numbers; rerun the training stage") from None
    return values.astype({"epoch": int})


def append_epoch(path: Path, epoch: int, logs: dict[str, Any]) -> None:
    """Add epoch `epoch` (0-based, as Keras counts) with its Keras logs."""
    frame = read_curves(path) if path.exists() else empty_curves()
    row = {"epoch": epoch + 1, **{column: float(logs[column]) for column in COLUMNS[1:]}}
    frame = pd.concat([frame, pd.DataFrame([row])], ignore_index=True)
    write_csv(path, frame.astype({"epoch": int}))


def keep_epochs(path: Path, epochs: int) -> None:
    """Keep the rows of the first `epochs` epochs (a resumed run trains the rest again)."""
    if path.exists():
        frame = read_curves(path)
        write_csv(path, frame[frame["epoch"] <= epochs])
